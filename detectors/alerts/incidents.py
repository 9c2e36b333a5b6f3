"""Incidents: the alerts of one agency that share an entity (source address, user, host) within a
window, as one document an analyst works on (pure, no I/O).

An alert joins an open incident of its agency when it shares an entity with it and starts no later
than `window_s` after the incident's last activity; otherwise it opens a new incident whose id is
derived from its first alert (a replay makes the same incident). The incident carries a timeline of
its alerts, the highest severity, the ATT&CK tactics in kill-chain order, every entity, and its own
workflow (closing an incident closes its alerts; pipeline/elastic/incidents.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from detectors.alerts.attack import TACTICS
from detectors.common.times import iso_ms, to_epoch

ENTITY_FIELDS = ("source.ip", "user.name", "user.target.name", "host.name")
# entity values too common to link alerts by (every sshd brute force tries root)
WEAK_VALUES = frozenset({"root", "admin", "administrator", "-", "", "localhost", "unknown", "nobody"})
LEVEL_RANK = {"informational": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
# kill-chain order of the Enterprise tactics (ATT&CK's own matrix order)
KILL_CHAIN = [name for _, name in dict.fromkeys(TACTICS.values())]
DEFAULT_WINDOW_S = 3600.0
MAX_TIMELINE = 200


def _get(doc: Mapping[str, Any], dotted: str) -> Any:
    cur: Any = doc
    for part in dotted.split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


def entities(alert: Mapping[str, Any]) -> dict[str, list[str]]:
    """Linkable entity values of an alert document (nested), weak values left out."""
    out: dict[str, list[str]] = {}
    for f in ENTITY_FIELDS:
        v = _get(alert, f)
        values = v if isinstance(v, list) else [v]
        kept = sorted({str(x) for x in values if x is not None and str(x).lower() not in WEAK_VALUES})
        if kept:
            out[f] = kept
    return out


def entity_keys(alert: Mapping[str, Any]) -> set[str]:
    return {f"{f}={v}" for f, vs in entities(alert).items() for v in vs}


def incident_id(agency: str, first_alert_id: str) -> str:
    return hashlib.sha256(f"incident|{agency}|{first_alert_id}".encode()).hexdigest()[:32]


def alert_entry(alert: Mapping[str, Any], alert_id: str) -> dict[str, Any]:
    """One alert on an incident's timeline."""
    threat = alert.get("threat") or {}
    tactic = (threat.get("tactic") or {}).get("name") if isinstance(threat, Mapping) else None
    return {
        "alert_id": alert_id,
        "start": _get(alert, "event.start") or alert.get("@timestamp"),
        "end": _get(alert, "event.end") or alert.get("@timestamp"),
        "rule": _get(alert, "rule.name"),
        "level": _get(alert, "socpipe.level") or "medium",
        "tactics": [t for t in (tactic if isinstance(tactic, list) else [tactic]) if t],
        "events": _get(alert, "socpipe.episode.events") or _get(alert, "socpipe.evidence_count") or 0,
        "entities": entities(alert),
    }


def can_join(incident: Mapping[str, Any], alert: Mapping[str, Any], window_s: float = DEFAULT_WINDOW_S) -> bool:
    """Same agency, a shared entity, and starting within the window after the incident's last activity
    (or overlapping it)."""
    if _get(incident, "organization.id") != _get(alert, "organization.id"):
        return False
    inc_keys = {f"{f}={v}" for f, vs in (_get(incident, "socpipe.incident.entities") or {}).items() for v in vs}
    if not inc_keys & entity_keys(alert):
        return False
    start = to_epoch(_get(alert, "event.start"))
    end = to_epoch(_get(alert, "event.end"))
    first = to_epoch(_get(incident, "event.start"))
    last = to_epoch(_get(incident, "event.end"))
    if None in (start, end, first, last):
        return False
    assert start is not None and end is not None and first is not None and last is not None
    return start <= last + window_s and end >= first - window_s


def incident_document(
    agency: Mapping[str, Any] | None, entries: Iterable[Mapping[str, Any]], workflow: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The incident for its alerts' timeline entries (pure). `agency` is the alerts' organization
    object; `workflow` the incident's own (kept as is: analysts own it)."""
    timeline = sorted(
        {e["alert_id"]: dict(e) for e in entries}.values(), key=lambda e: (str(e["start"]), e["alert_id"])
    )
    if not timeline:
        raise ValueError("an incident needs at least one alert")
    level = max((str(e["level"]) for e in timeline), key=lambda lv: LEVEL_RANK.get(lv, 2))
    tactics_seen = {t for e in timeline for t in e["tactics"]}
    tactics = [t for t in KILL_CHAIN if t in tactics_seen]
    ents: dict[str, set[str]] = {}
    for e in timeline:
        for f, vs in e["entities"].items():
            ents.setdefault(f, set()).update(vs)
    starts = [to_epoch(e["start"]) for e in timeline]
    ends = [to_epoch(e["end"]) for e in timeline]
    first = min(t for t in starts if t is not None)
    last = max(t for t in ends if t is not None)
    org = dict(agency or {})
    first_rule = timeline[0]["rule"]
    title = f"{first_rule} and {len(timeline) - 1} more" if len(timeline) > 1 else str(first_rule)
    from detectors.common.severity import KIBANA_SEVERITY, SEVERITY

    doc: dict[str, Any] = {
        "_id": incident_id(str(org.get("id", "")), timeline[0]["alert_id"]),
        "@timestamp": iso_ms(first),
        "event": {"kind": "alert", "start": iso_ms(first), "end": iso_ms(last), "severity": SEVERITY.get(level, 47)},
        "organization": org,
        "socpipe": {
            "incident": {
                "title": title[:300],
                "level": level,
                "severity": KIBANA_SEVERITY.get(level, "medium"),
                "alerts": [e["alert_id"] for e in timeline][:MAX_TIMELINE],
                "alert_count": len(timeline),
                "events": sum(int(e.get("events") or 0) for e in timeline),
                "tactics": tactics,
                "rules": sorted({str(e["rule"]) for e in timeline}),
                "entities": {f: sorted(vs)[:50] for f, vs in sorted(ents.items())},
                "timeline": timeline[:MAX_TIMELINE],
            },
        },
    }
    if workflow is not None:
        doc["socpipe"]["workflow"] = dict(workflow)
    return doc


def group_alerts(
    alerts: Iterable[tuple[str, Mapping[str, Any]]], window_s: float = DEFAULT_WINDOW_S
) -> list[list[str]]:
    """Alert ids grouped into incidents, alerts taken in start order (what the sink does one by one)."""
    ordered = sorted(alerts, key=lambda a: (str(_get(a[1], "event.start")), a[0]))
    incidents: list[tuple[dict[str, Any], list[str]]] = []
    for alert_id, alert in ordered:
        entry = alert_entry(alert, alert_id)
        for i, (doc, ids) in enumerate(incidents):
            if can_join(doc, alert, window_s):
                ids.append(alert_id)
                entries = [*doc["socpipe"]["incident"]["timeline"], entry]
                incidents[i] = (incident_document(doc["organization"], entries), ids)
                break
        else:
            incidents.append((incident_document(alert.get("organization") or {}, [entry]), [alert_id]))
    return [ids for _, ids in incidents]
