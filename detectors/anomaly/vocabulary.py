"""What the anomaly models learn in training besides their parameters: the vocabulary of normal
(an application's path segments and parameter names, each host's processes, each user's networks and
login hours), kept in the model directory as JSON and loaded for lookups (pure, no I/O)."""

from __future__ import annotations

from typing import Any

from detectors.anomaly.event_fields import DISTINCT_CAP, event_epoch, network_of, request_segments, split_url


def build_request_context(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The application's vocabulary (path segments, parameter names) seen in training.

    Payload anomalies are mostly 'this application was never asked for that'; the vocabulary keeps
    the most frequent DISTINCT_CAP entries so it stays bounded on large sites."""
    segs: dict[str, int] = {}
    names: dict[str, int] = {}
    for e in events:
        path, query = split_url(e)
        for s in request_segments(path):
            segs[s] = segs.get(s, 0) + 1
        for p in query.split("&") if query else ():
            if p:
                k = p.partition("=")[0][:64]
                names[k] = names.get(k, 0) + 1

    def top(d: dict[str, int]) -> list[str]:
        return sorted(sorted(d, key=lambda k: (-d[k], k))[:DISTINCT_CAP])

    return {"known_segments": top(segs), "known_params": top(names)}


def build_user_context(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-user known networks and login-hour histogram, learned from training events."""
    networks: dict[str, set[str]] = {}
    hours: dict[str, list[int]] = {}
    for e in events:
        user = e.get("user.name")
        if not user or e.get("event.outcome") != "success":
            continue
        user = str(user)
        if e.get("source.ip") and len(networks.setdefault(user, set())) < 256:
            networks[user].add(network_of(str(e["source.ip"])))
        t = event_epoch(e)
        if t is not None:
            hours.setdefault(user, [0] * 24)[int(t // 3600) % 24] += 1
    return {"user_networks": {u: sorted(n) for u, n in networks.items()}, "user_hours": hours}


def build_host_context(events: list[dict[str, Any]]) -> dict[str, Any]:
    names = {str(e["process.name"]) for e in events if e.get("process.name")}
    return {"known_processes": sorted(names)[:DISTINCT_CAP]}


def load_context(raw: dict[str, Any]) -> dict[str, Any]:
    """JSON context -> lookup-friendly context (sets for membership tests)."""
    ctx = dict(raw)
    for key in ("known_processes", "known_segments", "known_params"):
        if key in ctx:
            ctx[key] = frozenset(ctx[key])
    if "user_networks" in ctx:
        ctx["user_networks"] = {u: frozenset(n) for u, n in ctx["user_networks"].items()}
    return ctx
