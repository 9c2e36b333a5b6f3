"""The window accumulators of the anomaly profiles (pure, no I/O): each takes a window's events one at
a time (`add`), keeps bounded counts and distinct sets, and gives the window's feature vector
(`features(context, history)`) in the order of its `*_FEATURES` names.

Every accumulator bounds its memory: distinct-value sets stop growing at `DISTINCT_CAP` (the count
then saturates), so a flood from one address costs O(1) per event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from detectors.anomaly.event_fields import (
    AUTH_DATASETS,
    DIGIT_RE,
    SPECIAL_CHARS,
    SPECIAL_RE,
    STATIC_EXTENSIONS,
    WEB_DATASETS,
    Capped,
    char_entropy,
    event_epoch,
    network_of,
    path_depth,
    path_extension,
    request_segments,
    response_bytes,
    split_url,
    status_code,
)


@dataclass(frozen=True, slots=True)
class History:
    """What the same entity did in the windows just before this one (multi-scale context)."""

    events: float = 0.0
    errors: float = 0.0  # 4xx for web, failures for auth
    windows: int = 0


NO_HISTORY = History()


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
        self.paths: Capped = Capped()
        self.urls: Capped = Capped()
        self.seconds: Capped = Capped()
        self.post_n = 0

    def add(self, event: dict[str, Any]) -> None:
        path, query = split_url(event)
        self.n += 1
        self.paths.put(path)
        self.urls.put(hash((path, query)))
        ts = event.get("@timestamp")
        if isinstance(ts, str):
            self.seconds.put(ts[:19])  # ISO seconds: how spread out the requests are
        status = status_code(event)
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
        self.log_bytes_sum += math.log1p(response_bytes(event))
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
        path, query = split_url(self.event)
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
            len(SPECIAL_RE.findall(url)) / n,
            len(DIGIT_RE.findall(url)) / n,
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


# --------------------------------------------------------------------------- per (agency, host)
DATASET_BUCKETS = ("web", "auth", "audit", "syslog", "other")


def dataset_bucket(dataset: str) -> str:
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
        self.by_bucket = dict.fromkeys(DATASET_BUCKETS, 0)
        self.auth_fail = self.auth_total = self.s4 = self.s5 = self.http_n = 0
        self.bytes_sum = 0.0
        self.users: Capped = Capped()
        self.sources: Capped = Capped()
        self.processes: Capped = Capped()

    def add(self, event: dict[str, Any]) -> None:
        bucket = dataset_bucket(str(event.get("event.dataset") or ""))
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
            status = status_code(event)
            self.http_n += 1
            self.s4 += 400 <= status < 500
            self.s5 += status >= 500
            self.bytes_sum += response_bytes(event)

    def summary(self) -> tuple[float, float]:
        return float(sum(self.by_bucket.values())), float(self.auth_fail)

    def features(self, context: dict[str, Any], history: History) -> list[float]:
        known = context.get("known_processes", ())
        new_processes = sum(1 for p in self.processes if p not in known) if known else 0
        http_n = max(self.http_n, 1)
        return [
            *(float(self.by_bucket[b]) for b in DATASET_BUCKETS),
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
    *(f"events_{b}" for b in DATASET_BUCKETS),
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
        self.sources: Capped = Capped()
        self.networks: Capped = Capped()
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
            self.networks.put(network_of(str(ip)))
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
