"""Who really sent a record: the one home for verifying what agents put on Kafka. Pure: the registry
lookup is passed in, and state (last counters) lives in small objects the callers own.

* A heartbeat counts only if it parses, is signed with the secret of an active enrolled agent, claims
  the agency that agent was enrolled for, is fresh (`sent_at` within ~2 intervals of now) and carries a
  counter above the last one accepted from that agent (`HeartbeatGuard`): a captured heartbeat
  replayed after the agent died moves nothing.
* A raw record counts only if its key names an active enrolled agent of the key's agency and its `mac`
  header is the HMAC (agent's secret) of its key, counter, `lines`/`dataset` headers and value bytes
  (`check_raw`). The detector then decodes the value and requires it to agree with the key
  (`check_batch_matches`), and stamps agency and agent from the registry, never from the payload.

Rejection reasons are fixed strings (metric labels): HEARTBEAT_REJECTIONS, RECORD_REJECTIONS.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from collectors.wire import (
    HEADER_COUNTER,
    HEADER_DATASET,
    HEADER_LINES,
    HEADER_MAC,
    Heartbeat,
    LineBatch,
    batch_mac,
    verify_heartbeat,
)
from pipeline.enrolment.registry import AgentRecord

HEARTBEAT_REJECTIONS = (
    "malformed",
    "unsigned",
    "unknown_agent",
    "revoked_agent",
    "agency_mismatch",
    "bad_signature",
    "stale",
    "replayed",
)
RECORD_REJECTIONS = (
    "bad_key",
    "unknown_agent",
    "revoked_agent",
    "agency_mismatch",
    "unsigned",
    "bad_mac",
    "replayed",
    "undecodable",
    "key_value_mismatch",
)

AgentLookup = Callable[[str], "AgentRecord | None"]
# A Kafka record's headers as kafka-python gives them: (name, value bytes) pairs, or None.
RecordHeaders = Iterable[tuple[str, bytes | bytearray | str | None]] | None


# --- heartbeats ------------------------------------------------------------------------------------
def parse_heartbeat(value: bytes | None) -> Heartbeat | None:
    if not value:
        return None
    try:
        hb = Heartbeat.from_bytes(value)
    except (ValueError, TypeError, AttributeError, KeyError):
        return None
    # from_bytes keeps the JSON's values as they came, whatever the annotations say: checked here, not trusted.
    texts: tuple[object, ...] = (hb.agent_id, hb.agency_id, hb.signature)
    counter: object = hb.counter
    sent_at: object = hb.sent_at
    if not all(isinstance(v, str) for v in texts):
        return None
    if not isinstance(counter, int) or not isinstance(sent_at, (int, float)):
        return None
    return hb


def check_heartbeat(hb: Heartbeat, lookup: AgentLookup) -> str | None:
    """None when the heartbeat is genuine (who sent it), else the rejection reason. Freshness and
    replay are `HeartbeatGuard`'s."""
    if not hb.signature:
        return "unsigned"
    agent = lookup(hb.agent_id)
    if agent is None:
        return "unknown_agent"
    if agent.revoked:
        return "revoked_agent"
    try:
        genuine = verify_heartbeat(hb, agent.secret)
    except (TypeError, ValueError):
        return "malformed"
    if not genuine:
        return "bad_signature"
    if agent.agency_id != hb.agency_id:
        # Signed by a real agent but claiming another agency: the agent's identity wins; never count it.
        return "agency_mismatch"
    return None


class HeartbeatGuard:
    """Freshness and replay of genuine heartbeats: `sent_at` at most `max_age_s` old (and not more than
    `max_age_s` ahead: a clock far off is reported, not trusted), counter strictly above the last one
    accepted from the agent. The last counters survive a restart through `export`/`load`; without
    them a replay is still bounded by the age check."""

    MAX_AGENTS = 1_000_000

    def __init__(self, max_age_s: float):
        self.max_age_s = max_age_s
        self.last: dict[str, int] = {}

    def check(self, hb: Heartbeat, now: float) -> str | None:
        if abs(now - float(hb.sent_at)) > self.max_age_s:
            return "stale"
        if hb.counter <= self.last.get(hb.agent_id, 0):
            return "replayed"
        return None

    def accept(self, hb: Heartbeat) -> None:
        if hb.agent_id in self.last or len(self.last) < self.MAX_AGENTS:  # only verified agents get here
            self.last[hb.agent_id] = hb.counter

    def export(self) -> dict[str, int]:
        return dict(self.last)

    def load(self, data: dict[str, Any]) -> None:
        self.last = {str(k): int(v) for k, v in (data or {}).items() if isinstance(v, int)}


# --- raw records -----------------------------------------------------------------------------------
def parse_record_key(key: bytes | None) -> tuple[str, str, str] | None:
    """`agency|agent|source` -> its three parts, None when malformed."""
    if not key:
        return None
    try:
        parts = key.decode("utf-8").split("|", 2)
    except UnicodeDecodeError:
        return None
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]


def header_value(headers: RecordHeaders, name: str) -> str:
    for k, v in headers or ():
        if k == name and v is not None:
            return bytes(v).decode("ascii", "replace") if isinstance(v, (bytes, bytearray)) else str(v)
    return ""


def lines_from_headers(headers: RecordHeaders) -> int:
    """Lines in a raw record from its `lines` header; 1 when absent or not a sane number."""
    raw = header_value(headers, HEADER_LINES)
    try:
        n = int(raw)
    except ValueError:
        return 1
    return n if 0 < n < 10_000_000 else 1


@dataclass(frozen=True, slots=True)
class RawVerdict:
    """The outcome of `check_raw`: `reason` None = genuine; `agent` is the registry's record then."""

    reason: str | None
    agent: AgentRecord | None = None
    source: str = ""
    counter: int = 0


def check_raw(key: bytes | None, headers: RecordHeaders, value: bytes | None, lookup: AgentLookup) -> RawVerdict:
    """Verify a raw record's sender from its key, headers and value bytes (the value is not decoded)."""
    parts = parse_record_key(key)
    if parts is None or key is None:
        return RawVerdict("bad_key")
    agency_id, agent_id, source = parts
    agent = lookup(agent_id)
    if agent is None:
        return RawVerdict("unknown_agent")
    if agent.revoked:
        return RawVerdict("revoked_agent")
    mac = header_value(headers, HEADER_MAC)
    try:
        counter = int(header_value(headers, HEADER_COUNTER))
        lines = int(header_value(headers, HEADER_LINES) or 0)
    except ValueError:
        counter = lines = -1
    if not mac or counter <= 0 or counter >= 1 << 63 or not 0 <= lines < 1 << 63:
        return RawVerdict("unsigned")
    expected = batch_mac(agent.secret, key, counter, lines, header_value(headers, HEADER_DATASET), value or b"")
    if not hmac.compare_digest(mac, expected):
        return RawVerdict("bad_mac")
    if agent.agency_id != agency_id:
        return RawVerdict("agency_mismatch")  # a real agent's record claiming another agency
    return RawVerdict(None, agent, source, counter)


def check_batch_matches(batch: LineBatch, verdict: RawVerdict) -> str | None:
    """The decoded value must say what the verified key says (agency, agent, source)."""
    agent = verdict.agent
    if agent is None:
        return verdict.reason or "unknown_agent"
    if batch.agency_id != agent.agency_id or batch.agent_id != agent.agent_id or batch.source != verdict.source:
        return "key_value_mismatch"
    return None


def verify_batch(
    key: bytes | None, headers: RecordHeaders, value: bytes | None, lookup: AgentLookup
) -> tuple[LineBatch | None, str]:
    """A raw record -> (its batch with agency and agent stamped from the registry, "") when genuine,
    else (None, rejection reason). What the detector runs before anything reads a line."""
    verdict = check_raw(key, headers, value, lookup)
    if verdict.reason is not None or verdict.agent is None:
        return None, verdict.reason or "unknown_agent"
    try:
        batch = LineBatch.from_bytes(value or b"")
    except Exception:  # any shape of garbage: signed by a real agent, yet unreadable
        return None, "undecodable"
    reason = check_batch_matches(batch, verdict)
    if reason:
        return None, reason
    batch.agency_id, batch.agent_id = verdict.agent.agency_id, verdict.agent.agent_id  # the registry's word
    return batch, ""


class StreamCounters:
    """Last counter accepted per (agent, source) stream, so a replayed raw record is recognised: one
    stream's records share a partition, hence arrive in order. A genuine resend after an agent
    restart also lands here (same counter) and is a duplicate anyway. Memory: one int per stream of
    a verified agent; bounded by `max_streams` (the oldest-inserted are forgotten first)."""

    def __init__(self, max_streams: int = 200_000):
        self.max_streams = max_streams
        self.last: dict[tuple[str, str], int] = {}

    def fresh(self, agent_id: str, source: str, counter: int) -> bool:
        """True (and remembered) if the counter is above the stream's last; False for a replay."""
        k = (agent_id, source)
        if counter <= self.last.get(k, 0):
            return False
        if k not in self.last and len(self.last) >= self.max_streams:
            self.last.pop(next(iter(self.last)))
        self.last[k] = counter
        return True

    def export(self) -> list[list[Any]]:
        return [[a, src, c] for (a, src), c in self.last.items()]

    def load(self, data: list[list[Any]]) -> None:
        self.last = {(str(a), str(src)): int(c) for a, src, c in (data or [])[-self.max_streams :]}
