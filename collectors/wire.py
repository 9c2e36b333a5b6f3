"""The wire contract: what travels on Kafka between the agent and the SOC.

It lives on the agent side (the agent distribution carries no SOC code); the SOC side imports it from
here. Change it only together with its readers (`detectors.normalise`, `pipeline.coverage`).

Agents ship raw lines (parsing is central, so a parser fix never needs an agent roll-out) in batches:
one Kafka record carries many lines of one source, each line keeping its own metadata. Heartbeats
travel on their own topic so that coverage never depends on log traffic.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from collectors.timezone import DEFAULT_TIMEZONE as DEFAULT_TIMEZONE  # re-exported: part of the contract

RAW_TOPIC = "socpipe.raw"
HEARTBEAT_TOPIC = "socpipe.heartbeats"

WIRE_VERSION = 1


def encode(obj: Any, *, sort_keys: bool = False) -> bytes:
    """The wire's JSON encoding (compact UTF-8; values JSON cannot carry become strings), for every
    record the pipeline writes to Kafka; `sort_keys` where the bytes are signed."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys, default=str).encode()


def decode(data: bytes | str) -> Any:
    return json.loads(data)


@dataclass(slots=True)
class LogLine:
    text: str
    offset: int = 0  # byte offset of the line's start within its source (0 for listeners)
    line_no: int = 0  # 1-based line number within the file; 0 when the input is not a file
    seq: int = 0  # per (agent, source) sequence number: gaps and duplicates are detectable
    read_at: float = 0.0  # unix time the agent read it
    flags: list[str] = field(default_factory=list)  # e.g. "truncated", "invalid_utf8"


@dataclass(slots=True)
class LineBatch:
    agency_id: str
    agent_id: str
    host: str
    source: str  # file path or listener name, e.g. "/var/log/auth.log", "syslog-udp:5514"
    lines: list[LogLine]
    dataset: str | None = None  # configured dataset hint; detected per line when None
    timezone: str = DEFAULT_TIMEZONE

    def key(self) -> bytes:
        """Kafka key: one source's lines stay in one partition, in order."""
        return f"{self.agency_id}|{self.agent_id}|{self.source}".encode()

    def to_bytes(self) -> bytes:
        d = asdict(self)
        d["v"] = WIRE_VERSION
        return encode(d)

    @classmethod
    def from_bytes(cls, data: bytes) -> LineBatch:
        d = decode(data)
        d.pop("v", None)
        d["lines"] = [LogLine(**ln) for ln in d["lines"]]
        return cls(**d)


@dataclass(slots=True)
class SourceStatus:
    last_read_at: float = 0.0  # unix time a line was last read from the source
    lag_bytes: int = 0  # bytes written but not yet read
    lines_read: int = 0
    lines_shipped: int = 0
    state: str = "ok"  # collectors.health.INPUT_STATES: ok, missing, permission_denied, rotated_away ...
    reason: str = ""  # when not ok, for people: "permission denied: user socpipe-agent may not read it ..."


@dataclass(slots=True)
class Heartbeat:
    agency_id: str
    agent_id: str
    host: str
    version: str
    sent_at: float
    started_at: float
    sources: dict[str, SourceStatus] = field(default_factory=dict)
    spool_bytes: int = 0
    dropped: int = 0
    corrupt: int = 0
    config_hash: str = ""
    counter: int = 0  # the agent's monotonic counter (MessageCounter): a replayed heartbeat is not above the last
    signature: str = ""  # HMAC over the other fields with the agent's enrolment secret
    # When Kafka refuses part of what the agent sends (e.g. not allowed to write the raw topic) but this
    # heartbeat still gets through: collectors.health kafka state and reason. Left out of the bytes when
    # empty, so heartbeats of agents that predate them still verify.
    kafka_state: str = ""
    kafka_reason: str = ""

    def to_bytes(self) -> bytes:
        d = asdict(self)
        for optional in ("kafka_state", "kafka_reason"):
            if not d[optional]:
                del d[optional]
        d["v"] = WIRE_VERSION
        return encode(d, sort_keys=True)

    @classmethod
    def from_bytes(cls, data: bytes) -> Heartbeat:
        d = decode(data)
        d.pop("v", None)
        d["sources"] = {k: SourceStatus(**v) for k, v in d.get("sources", {}).items()}
        return cls(**d)


# Kafka record headers on RAW_TOPIC, so SOC-side consumers that only count traffic (coverage) never
# decode the value: "lines" = number of lines in the batch (ASCII int), "dataset" = configured hint,
# "ctr" = the agent's counter when it spooled the record (ASCII int), "mac" = batch_mac (hex).
HEADER_LINES = "lines"
MAX_BATCH_LINES = 100_000  # lines per raw record at most: the agent's batch.max_lines cannot be set higher
HEADER_DATASET = "dataset"
HEADER_COUNTER = "ctr"
HEADER_MAC = "mac"

_BATCH_MAC_CONTEXT = b"socpipe.raw.v1\x00"


def batch_mac(secret: str, key: bytes, counter: int, lines: int, dataset: str, value: bytes) -> str:
    """HMAC-SHA256 over a raw record as it travels: its key, counter, `lines`/`dataset` headers and value
    bytes (no re-encoding: the SOC verifies exactly what Kafka hands it). Fields are length-prefixed so
    no two different records share a MAC input."""
    mac = hmac.new(secret.encode(), _BATCH_MAC_CONTEXT, hashlib.sha256)
    ds = dataset.encode()
    mac.update(len(key).to_bytes(4, "big") + key + counter.to_bytes(8, "big") + lines.to_bytes(8, "big"))
    mac.update(len(ds).to_bytes(4, "big") + ds)
    mac.update(value)
    return mac.hexdigest()


def batch_headers(
    secret: str, key: bytes, counter: int, lines: int, dataset: str, value: bytes
) -> list[tuple[str, bytes]]:
    """The Kafka headers of a signed raw record."""
    return record_headers(lines, dataset, counter, batch_mac(secret, key, counter, lines, dataset, value))


def record_headers(lines: int | str, dataset: str, counter: int | str = 0, mac: str = "") -> list[tuple[str, bytes]]:
    """The Kafka headers of a raw record (the shipper sends these with the counter and MAC the agent put
    in the spool); without a MAC the record is unsigned (counter and MAC headers left out)."""
    headers = [(HEADER_LINES, str(lines).encode()), (HEADER_DATASET, dataset.encode())]
    if mac:
        headers += [(HEADER_COUNTER, str(counter).encode()), (HEADER_MAC, mac.encode())]
    return headers


def signed_record(batch: LineBatch, secret: str, counter: int) -> tuple[bytes, list[tuple[str, bytes]], bytes]:
    """(key, headers, value) of a batch as an agent ships it to RAW_TOPIC, signed with its secret.

    The agent itself signs at spool time (collectors.agent: batch_mac into the spool's metadata, headers
    added by the shipper); this is the same record in one step, for simulators and tests."""
    key, value = batch.key(), batch.to_bytes()
    return key, batch_headers(secret, key, counter, len(batch.lines), batch.dataset or "", value), value


class MessageCounter:
    """The agent's monotonic message counter, shared by its raw records and heartbeats.

    Never repeats across restarts: a value is at least the wall clock in microseconds and above every
    value handed out before, whose high-water mark is reserved ahead in a state file (one write per
    `reserve` values, not one per message). A clock set back is covered by the reservation; a lost
    state file by the clock. Thread-safe (the main loop and the heartbeat thread both draw)."""

    def __init__(
        self, path: str | os.PathLike[str] | None = None, reserve: int = 1_000_000_000
    ) -> None:  # reserve: ~17 min of microseconds
        self._path = path
        self._reserve = reserve
        self._lock = threading.Lock()
        self._last = 0
        self._reserved = 0
        if path is not None:
            try:
                self._last = self._reserved = int(open(path).read().strip() or 0)
            except (OSError, ValueError):
                self._last = self._reserved = 0

    def next(self) -> int:
        with self._lock:
            value = max(self._last + 1, int(time.time() * 1_000_000))
            if value >= self._reserved and self._path is not None:
                self._reserved = value + self._reserve
                _write_atomic(self._path, str(self._reserved))
            self._last = value
            return value


def _write_atomic(path: str | os.PathLike[str], text: str) -> None:

    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def sign_heartbeat(hb: Heartbeat, secret: str) -> str:
    """HMAC-SHA256 over the heartbeat (its counter and sent_at included) with an empty signature, keyed by
    the agent's enrolment secret."""
    unsigned = Heartbeat.from_bytes(hb.to_bytes())
    unsigned.signature = ""
    return hmac.new(secret.encode(), unsigned.to_bytes(), hashlib.sha256).hexdigest()


def verify_heartbeat(hb: Heartbeat, secret: str) -> bool:
    return bool(hb.signature) and hmac.compare_digest(hb.signature, sign_heartbeat(hb, secret))
