"""What one flat ECS event says, for the anomaly features (pure, no I/O): its time, URL parts,
status and size, text measures of a path, an address's network, and a set bounded at DISTINCT_CAP.

Shared by the window accumulators (detectors.anomaly.accumulators) and the vocabularies learned in
training (detectors.anomaly.vocabulary), so both read an event the same way.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

from detectors.common.times import to_epoch

DISTINCT_CAP = 4096
WEB_DATASETS = frozenset({"apache.access", "nginx.access", "http.request"})
AUTH_DATASETS = frozenset({"system.auth"})
STATIC_EXTENSIONS = frozenset(
    {"css", "js", "png", "jpg", "jpeg", "gif", "svg", "ico", "woff", "woff2", "ttf", "eot", "map", "webp"}
)
SPECIAL_CHARS = frozenset("'\"<>;()`{}|\\$*!")
SPECIAL_RE = re.compile("[" + re.escape("".join(sorted(SPECIAL_CHARS))) + "]")
DIGIT_RE = re.compile(r"[0-9]")


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


def status_code(event: dict[str, Any]) -> int:
    try:
        return int(event.get("http.response.status_code") or 0)
    except (TypeError, ValueError):
        return 0


def response_bytes(event: dict[str, Any]) -> float:
    try:
        return float(event.get("http.response.body.bytes") or 0)
    except (TypeError, ValueError):
        return 0.0


def split_url(event: dict[str, Any]) -> tuple[str, str]:
    path = event.get("url.path")
    query = event.get("url.query")
    if path is None:
        original = str(event.get("url.original") or "")
        path, _, query = original.partition("?")
    return str(path or ""), str(query or "")


def network_of(ip: str) -> str:
    """/24 for IPv4, /48 for IPv6: 'new source network' rather than 'new address'."""
    if ":" in ip:
        return ":".join(ip.split(":")[:3]) + "::/48"
    parts = ip.split(".")
    return ".".join(parts[:3]) + ".0/24" if len(parts) == 4 else ip


class Capped(set[str]):
    """A set that stops growing at DISTINCT_CAP."""

    def put(self, value: Any) -> None:
        if len(self) < DISTINCT_CAP:
            self.add(value)


def request_segments(path: str) -> list[str]:
    return [part[:64] for part in path.split("/")[:32] if part]
