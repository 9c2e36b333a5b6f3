"""CSIC 2010 raw HTTP requests -> flat ECS-like events (pure).

The data set is a stream of HTTP/1.1 requests (request line, headers, blank line, body of
Content-Length bytes for POSTs), not log lines. Each request becomes an event shaped like a parsed
access-log line so the same web profiles score both; it has no status, size, client address or
time, so `@timestamp` is synthetic (base + one second per request).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

from detectors.common.times import iso_ms

CSIC_DATASET = "http.request"
METHODS = ("GET ", "POST ", "PUT ", "DELETE ", "HEAD ", "OPTIONS ", "PATCH ", "TRACE ")
_BASE = datetime(2010, 1, 1, tzinfo=UTC)


def looks_like_raw_http(first_line: str) -> bool:
    parts = first_line.split(" ")
    return first_line.startswith(METHODS) and len(parts) == 3 and parts[2].startswith("HTTP/")


def split_requests(lines: Iterable[str]) -> Iterator[tuple[str, dict[str, str], str]]:
    """(request line, headers, body) per request; tolerant of stray blank lines."""
    it = iter(line.rstrip("\r\n") for line in lines)
    for line in it:
        if not looks_like_raw_http(line):
            continue
        headers: dict[str, str] = {}
        for h in it:
            if not h:
                break
            name, _, value = h.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = ""
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            length = 0
        if length > 0:
            body = next(it, "")[:length]
        yield line, headers, body


def request_to_event(
    request_line: str, headers: dict[str, str], body: str, index: int = 0, base: datetime = _BASE
) -> dict[str, object]:
    method, target, version = request_line.split(" ", 2)
    parts = urlsplit(target)
    path = parts.path or "/"
    original = path + ("?" + parts.query if parts.query else "")
    event: dict[str, object] = {
        "@timestamp": iso_ms(base.timestamp() + index),
        "event.dataset": CSIC_DATASET,
        "http.request.method": method,
        "http.version": version.removeprefix("HTTP/"),
        "url.original": original,
        "url.path": path,
        "url.full": target,
    }
    if parts.query:
        event["url.query"] = parts.query
    if "user-agent" in headers:
        event["user_agent.original"] = headers["user-agent"]
    if parts.hostname:
        event["url.domain"] = parts.hostname
    if body:
        event["http.request.body.content"] = body
    return event


def csic_events(lines: Iterable[str]) -> Iterator[dict[str, object]]:
    for i, (line, headers, body) in enumerate(split_requests(lines)):
        yield request_to_event(line, headers, body, i)
