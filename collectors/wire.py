"""The wire contract: what travels on Kafka between the agent and the SOC.

It lives on the agent side (the agent distribution carries no SOC code); the SOC side imports it from
here. Change it only together with its readers (`detectors.normalise`, `pipeline.coverage`).

Agents ship raw lines (parsing is central, so a parser fix never needs an agent roll-out) in batches:
one Kafka record carries many lines of one source, each line keeping its own metadata. Heartbeats
travel on their own topic so that coverage never depends on log traffic.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

RAW_TOPIC = "socpipe.raw"
HEARTBEAT_TOPIC = "socpipe.heartbeats"

WIRE_VERSION = 1


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
    timezone: str = "Asia/Ho_Chi_Minh"

    def key(self) -> bytes:
        """Kafka key: one source's lines stay in one partition, in order."""
        return f"{self.agency_id}|{self.agent_id}|{self.source}".encode()

    def to_bytes(self) -> bytes:
        d = asdict(self)
        d["v"] = WIRE_VERSION
        return json.dumps(d, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> LineBatch:
        d = json.loads(data)
        d.pop("v", None)
        d["lines"] = [LogLine(**ln) for ln in d["lines"]]
        return cls(**d)


@dataclass(slots=True)
class SourceStatus:
    last_read_at: float = 0.0  # unix time a line was last read from the source
    lag_bytes: int = 0  # bytes written but not yet read
    lines_read: int = 0
    lines_shipped: int = 0


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
    signature: str = ""  # HMAC over the other fields with the agent's enrolment secret

    def to_bytes(self) -> bytes:
        d = asdict(self)
        d["v"] = WIRE_VERSION
        return json.dumps(d, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Heartbeat:
        d = json.loads(data)
        d.pop("v", None)
        d["sources"] = {k: SourceStatus(**v) for k, v in d.get("sources", {}).items()}
        return cls(**d)


# Kafka record headers on RAW_TOPIC, so SOC-side consumers that only count traffic (coverage) never
# decode the value: "lines" = number of lines in the batch (ASCII int), "dataset" = configured hint.
HEADER_LINES = "lines"
HEADER_DATASET = "dataset"


def sign_heartbeat(hb: Heartbeat, secret: str) -> str:
    """HMAC-SHA256 over the heartbeat with an empty signature, keyed by the agent's enrolment secret."""
    import hashlib
    import hmac

    unsigned = Heartbeat.from_bytes(hb.to_bytes())
    unsigned.signature = ""
    return hmac.new(secret.encode(), unsigned.to_bytes(), hashlib.sha256).hexdigest()


def verify_heartbeat(hb: Heartbeat, secret: str) -> bool:
    import hmac

    return bool(hb.signature) and hmac.compare_digest(hb.signature, sign_heartbeat(hb, secret))
