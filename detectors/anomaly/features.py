"""Window features per entity, computed incrementally from flat ECS events (pure, no I/O).

One `Profile` names the entity an anomaly is about (a source address, a host of an agency, a user,
or a single request), which events feed it, and the features of a window. Training, offline scoring
and streaming all go through `Profile.accumulator()` -> `add(event)` -> `features(context)`, so a
feature can never mean one thing in training and another in production.

Every accumulator bounds its memory: distinct-value sets stop growing at `DISTINCT_CAP` (the count
then saturates), so a flood from one address costs O(1) per event.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from detectors.common.times import to_epoch

DISTINCT_CAP = 4096
WEB_DATASETS = frozenset({"apache.access", "nginx.access", "http.request"})
AUTH_DATASETS = frozenset({"system.auth"})
STATIC_EXTENSIONS = frozenset(
    {"css", "js", "png", "jpg", "jpeg", "gif", "svg", "ico", "woff", "woff2", "ttf", "eot", "map", "webp"}
)
SPECIAL_CHARS = frozenset("'\"<>;()`{}|\\$*!")
_SPECIAL_RE = re.compile("[" + re.escape("".join(sorted(SPECIAL_CHARS))) + "]")
_DIGIT_RE = re.compile(r"[0-9]")


def event_epoch(event: dict[str, Any]) -> float | None:
    """Event time in unix seconds from `@timestamp`, None when absent or unreadable."""
    ts = event.get("@timestamp")
    return to_epoch(ts) if isinstance(ts, str) else None


def char_entropy(text: str) -> float:
    """Shannon entropy (bits/char): random-looking fuzzing paths score high, words low."""
    if not text:
        return 0.0
    n = len(text)
    return math.log2(n) - sum(c * math.log2(c) for c in Counter(text).values()) / n


def path_depth(path: str) -> int:
    return sum(1 for part in path.split("/") if part)


def path_extension(path: str) -> str:
    last = path.rsplit("/", 1)[-1]
    return last.rsplit(".", 1)[-1].lower() if "." in last else ""


def _status(event: dict[str, Any]) -> int:
    try:
        return int(event.get("http.response.status_code") or 0)
    except (TypeError, ValueError):
        return 0


def _bytes(event: dict[str, Any]) -> float:
    try:
        return float(event.get("http.response.body.bytes") or 0)
    except (TypeError, ValueError):
        return 0.0


def _split_url(event: dict[str, Any]) -> tuple[str, str]:
    path = event.get("url.path")
    query = event.get("url.query")
    if path is None:
        original = str(event.get("url.original") or "")
        path, _, query = original.partition("?")
    return str(path or ""), str(query or "")


def _network(ip: str) -> str:
    """/24 for IPv4, /48 for IPv6: 'new source network' rather than 'new address'."""
    if ":" in ip:
        return ":".join(ip.split(":")[:3]) + "::/48"
    parts = ip.split(".")
    return ".".join(parts[:3]) + ".0/24" if len(parts) == 4 else ip


@dataclass(frozen=True, slots=True)
class History:
    """What the same entity did in the windows just before this one (multi-scale context)."""

    events: float = 0.0
    errors: float = 0.0  # 4xx for web, failures for auth
    windows: int = 0


NO_HISTORY = History()


class _Capped(set[str]):
    """A set that stops growing at DISTINCT_CAP."""

    def put(self, value: Any) -> None:
        if len(self) < DISTINCT_CAP:
            self.add(value)


# --------------------------------------------------------------------------- web, per source address
class WebSourceWindow:
    """User-agent features were measured and left out: scanners spoof browser agents and real users
    switch browsers, so on harrison + scanners they cost PR-AUC (0.95 -> 0.89) instead of adding."""

    __slots__ = (
        "n",
        "paths",
        "s3",
        "s4",
        "s5",
        "depth_sum",
        "depth_max",
        "entropy_sum",
        "len_max",
        "query_n",
        "other_method_n",
        "log_bytes_sum",
        "static_n",
        "special_n",
        "urls",
        "seconds",
        "post_n",
    )

    def __init__(self) -> None:
        self.n = self.s3 = self.s4 = self.s5 = self.depth_max = self.len_max = 0
        self.query_n = self.other_method_n = self.static_n = self.special_n = 0
        self.depth_sum = self.entropy_sum = self.log_bytes_sum = 0.0
        self.paths: _Capped = _Capped()
        self.urls: _Capped = _Capped()
        self.seconds: _Capped = _Capped()
        self.post_n = 0

    def add(self, event: dict[str, Any]) -> None:
        path, query = _split_url(event)
        self.n += 1
        self.paths.put(path)
        self.urls.put(hash((path, query)))
        ts = event.get("@timestamp")
        if isinstance(ts, str):
            self.seconds.put(ts[:19])  # ISO seconds: how spread out the requests are
        status = _status(event)
        self.s3 += 300 <= status < 400
        self.s4 += 400 <= status < 500 and status != 408  # 408: browser preconnect never used
        self.s5 += status >= 500
        depth = path_depth(path)
        self.depth_sum += depth
        self.depth_max = max(self.depth_max, depth)
        self.entropy_sum += char_entropy(path[:256])
        self.len_max = max(self.len_max, len(path) + len(query))
        self.query_n += bool(query)
        method = event.get("http.request.method")
        self.other_method_n += method not in ("GET", "POST")
        self.post_n += method == "POST"
        self.log_bytes_sum += math.log1p(_bytes(event))
        self.static_n += path_extension(path) in STATIC_EXTENSIONS
        self.special_n += not SPECIAL_CHARS.isdisjoint(path[:512]) or not SPECIAL_CHARS.isdisjoint(query[:512])

    def summary(self) -> tuple[float, float]:
        return float(self.n), float(self.s4)

    def features(self, context: dict[str, Any], history: History) -> list[float]:
        n = max(self.n, 1)
        return [
            self.n,
            len(self.paths),
            len(self.paths) / n,
            self.s3 / n,
            self.s4 / n,
            self.s5 / n,
            self.depth_sum / n,
            self.depth_max,
            self.entropy_sum / n,
            self.len_max,
            self.query_n / n,
            self.other_method_n / n,
            self.log_bytes_sum / n,
            self.static_n / n,
            self.special_n / n,
            len(self.urls),
            len(self.seconds),
            len(self.seconds) / n,
            self.post_n / n,
            history.events,
            history.errors / max(history.events, 1.0),
            float(history.windows),
        ]


WEB_SOURCE_FEATURES = [
    "requests",
    "distinct_paths",
    "distinct_path_ratio",
    "ratio_3xx",
    "ratio_4xx",
    "ratio_5xx",
    "mean_path_depth",
    "max_path_depth",
    "mean_path_entropy",
    "max_url_length",
    "query_share",
    "other_method_share",
    "mean_log_bytes",
    "static_share",
    "special_char_share",
    "distinct_urls",
    "active_seconds",
    "active_second_ratio",
    "post_share",
    "prior_requests",
    "prior_ratio_4xx",
    "prior_active_windows",
]


# --------------------------------------------------------------------------- web, per request
class WebRequestWindow:
    """A 'window' of exactly one request. The event is kept; the feature vector (for the forest and
    baseline kinds) is computed only when asked, so the `request_profile` kind never pays for it."""

    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event: dict[str, Any] = {}

    def add(self, event: dict[str, Any]) -> None:
        self.event = event

    def summary(self) -> tuple[float, float]:
        return 1.0, 0.0

    def features(self, context: dict[str, Any], history: History) -> list[float]:
        path, query = _split_url(self.event)
        path, query = path[:2048], query[:2048]
        url = path + ("?" + query if query else "")
        params = [p for p in query.split("&") if p] if query else []
        segments = request_segments(path)
        names = [p.partition("=")[0][:64] for p in params[:64]]
        n = max(len(url), 1)
        segs, known = context.get("known_segments"), context.get("known_params")
        unknown_segs = sum(s not in segs for s in segments) / len(segments) if segs and segments else 0.0
        unknown_params = sum(p not in known for p in names) / len(names) if known and names else 0.0
        return [
            float(len(path)),
            float(path_depth(path)),
            char_entropy(path),
            float(len(query)),
            float(len(params)),
            float(max((len(p) for p in params), default=0)),
            len(_SPECIAL_RE.findall(url)) / n,
            len(_DIGIT_RE.findall(url)) / n,
            float(url.count("%")),
            float(".." in url),
            float(path_extension(path) in STATIC_EXTENSIONS),
            float(self.event.get("http.request.method") not in ("GET", "POST")),
            unknown_segs,
            unknown_params,
        ]


WEB_REQUEST_FEATURES = [
    "path_length",
    "path_depth",
    "path_entropy",
    "query_length",
    "param_count",
    "max_param_length",
    "special_char_ratio",
    "digit_ratio",
    "percent_escapes",
    "dot_dot",
    "static_asset",
    "other_method",
    "unknown_path_segments",
    "unknown_param_names",
]


def request_segments(path: str) -> list[str]:
    return [part[:64] for part in path.split("/")[:32] if part]


def build_request_context(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The application's vocabulary (path segments, parameter names) seen in training.

    Payload anomalies are mostly 'this application was never asked for that'; the vocabulary keeps
    the most frequent DISTINCT_CAP entries so it stays bounded on large sites."""
    segs: dict[str, int] = {}
    names: dict[str, int] = {}
    for e in events:
        path, query = _split_url(e)
        for s in request_segments(path):
            segs[s] = segs.get(s, 0) + 1
        for p in query.split("&") if query else ():
            if p:
                k = p.partition("=")[0][:64]
                names[k] = names.get(k, 0) + 1

    def top(d: dict[str, int]) -> list[str]:
        return sorted(sorted(d, key=lambda k: (-d[k], k))[:DISTINCT_CAP])

    return {"known_segments": top(segs), "known_params": top(names)}


# --------------------------------------------------------------------------- per (agency, host)
_DATASET_BUCKETS = ("web", "auth", "audit", "syslog", "other")


def _dataset_bucket(dataset: str) -> str:
    if dataset in WEB_DATASETS:
        return "web"
    if dataset in AUTH_DATASETS:
        return "auth"
    if dataset.startswith("auditd"):
        return "audit"
    if dataset.startswith("system."):
        return "syslog"
    return "other"


class HostWindow:
    __slots__ = (
        "by_bucket",
        "auth_fail",
        "auth_total",
        "users",
        "sources",
        "processes",
        "s4",
        "s5",
        "http_n",
        "bytes_sum",
    )

    def __init__(self) -> None:
        self.by_bucket = dict.fromkeys(_DATASET_BUCKETS, 0)
        self.auth_fail = self.auth_total = self.s4 = self.s5 = self.http_n = 0
        self.bytes_sum = 0.0
        self.users: _Capped = _Capped()
        self.sources: _Capped = _Capped()
        self.processes: _Capped = _Capped()

    def add(self, event: dict[str, Any]) -> None:
        bucket = _dataset_bucket(str(event.get("event.dataset") or ""))
        self.by_bucket[bucket] += 1
        if bucket == "auth" and event.get("event.outcome") in ("success", "failure"):
            self.auth_total += 1
            self.auth_fail += event.get("event.outcome") == "failure"
        if event.get("user.name"):
            self.users.put(str(event["user.name"]))
        if event.get("source.ip"):
            self.sources.put(str(event["source.ip"]))
        if event.get("process.name"):
            self.processes.put(str(event["process.name"]))
        if bucket == "web":
            status = _status(event)
            self.http_n += 1
            self.s4 += 400 <= status < 500
            self.s5 += status >= 500
            self.bytes_sum += _bytes(event)

    def summary(self) -> tuple[float, float]:
        return float(sum(self.by_bucket.values())), float(self.auth_fail)

    def features(self, context: dict[str, Any], history: History) -> list[float]:
        known = context.get("known_processes", ())
        new_processes = sum(1 for p in self.processes if p not in known) if known else 0
        http_n = max(self.http_n, 1)
        return [
            *(float(self.by_bucket[b]) for b in _DATASET_BUCKETS),
            self.auth_fail / max(self.auth_total, 1),
            float(self.auth_fail),
            float(len(self.users)),
            float(len(self.sources)),
            float(len(self.processes)),
            float(new_processes),
            self.s4 / http_n,
            self.s5 / http_n,
            math.log1p(self.bytes_sum),
        ]


HOST_FEATURES = [
    *(f"events_{b}" for b in _DATASET_BUCKETS),
    "auth_failure_ratio",
    "auth_failures",
    "distinct_users",
    "distinct_sources",
    "distinct_processes",
    "new_processes",
    "ratio_4xx",
    "ratio_5xx",
    "log_bytes",
]


# --------------------------------------------------------------------------- per user (auth)
class UserWindow:
    __slots__ = ("success", "failure", "sources", "networks", "hours", "user")

    def __init__(self) -> None:
        self.success = self.failure = 0
        self.sources: _Capped = _Capped()
        self.networks: _Capped = _Capped()
        self.hours: list[int] = []
        self.user = ""

    def add(self, event: dict[str, Any]) -> None:
        self.user = str(event.get("user.name") or "")
        outcome = event.get("event.outcome")
        self.success += outcome == "success"
        self.failure += outcome == "failure"
        ip = event.get("source.ip")
        if ip:
            self.sources.put(str(ip))
            self.networks.put(_network(str(ip)))
        t = event_epoch(event)
        if t is not None and len(self.hours) < 64:
            self.hours.append(int(t // 3600) % 24)

    def summary(self) -> tuple[float, float]:
        return float(self.success + self.failure), float(self.failure)

    def features(self, context: dict[str, Any], history: History) -> list[float]:
        known_nets = context.get("user_networks", {}).get(self.user)
        hour_hist = context.get("user_hours", {}).get(self.user)
        new_nets = sum(1 for n in self.networks if n not in known_nets) if known_nets else len(self.networks)
        if hour_hist and self.hours:
            total = sum(hour_hist) or 1
            rarity = sum(1.0 - hour_hist[h] / total for h in self.hours) / len(self.hours)
        else:
            rarity = 1.0 if self.hours else 0.0
        n = max(self.success + self.failure, 1)
        return [
            float(self.success),
            float(self.failure),
            self.failure / n,
            float(len(self.sources)),
            float(new_nets),
            rarity,
        ]


USER_FEATURES = [
    "logins",
    "login_failures",
    "failure_ratio",
    "distinct_sources",
    "new_source_networks",
    "login_hour_rarity",
]


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
            networks[user].add(_network(str(e["source.ip"])))
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


# --------------------------------------------------------------------------- profiles
@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    entity_fields: tuple[str, ...]
    datasets: frozenset[str] | None  # None = every dataset
    feature_names: tuple[str, ...]
    log_features: frozenset[str]  # counts: modelled as log1p(x)
    accumulator: Callable[[], Any]
    per_request: bool = False
    build_context: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None
    required_fields: tuple[str, ...] = ()

    def accepts(self, event: dict[str, Any]) -> bool:
        if self.datasets is not None and event.get("event.dataset") not in self.datasets:
            return False
        return all(event.get(f) not in (None, "") for f in self.required_fields)

    def entity(self, event: dict[str, Any]) -> tuple[str, ...]:
        return tuple(str(event.get(f) or "") for f in self.entity_fields)

    def context(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        return self.build_context(events) if self.build_context else {}


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "web.source",
            ("source.ip",),
            WEB_DATASETS,
            tuple(WEB_SOURCE_FEATURES),
            frozenset(
                {"requests", "distinct_paths", "max_url_length", "distinct_urls", "active_seconds", "prior_requests"}
            ),
            WebSourceWindow,
            required_fields=("source.ip",),
        ),
        Profile(
            "web.request",
            ("source.ip",),
            WEB_DATASETS,
            tuple(WEB_REQUEST_FEATURES),
            frozenset({"path_length", "query_length", "max_param_length", "percent_escapes"}),
            WebRequestWindow,
            per_request=True,
            build_context=build_request_context,
        ),
        Profile(
            "host.activity",
            ("organization.id", "host.name"),
            None,
            tuple(HOST_FEATURES),
            frozenset(
                {
                    *(f"events_{b}" for b in _DATASET_BUCKETS),
                    "auth_failures",
                    "distinct_users",
                    "distinct_sources",
                    "distinct_processes",
                    "new_processes",
                }
            ),
            HostWindow,
            build_context=build_host_context,
        ),
        Profile(
            "auth.user",
            ("organization.id", "user.name"),
            AUTH_DATASETS,
            tuple(USER_FEATURES),
            frozenset({"logins", "login_failures", "distinct_sources", "new_source_networks"}),
            UserWindow,
            build_context=build_user_context,
            required_fields=("user.name",),
        ),
    )
}


def model_vector(profile: Profile, raw: list[float]) -> list[float]:
    """Raw features -> model space (log1p on counts); non-finite values become 0."""
    out = []
    for name, v in zip(profile.feature_names, raw):
        v = float(v) if math.isfinite(v) else 0.0
        out.append(math.log1p(max(v, 0.0)) if name in profile.log_features else v)
    return out
