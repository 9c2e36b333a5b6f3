"""Whether a heartbeat or a raw record may move coverage. Pure: the registry lookup is passed in.

A heartbeat counts only if it parses, is signed with the secret of an active enrolled agent, and
claims the agency that agent was enrolled for. Raw records are not signed (Kafka ACLs per agent
principal protect them); their key must at least name an enrolled agent of the named agency.
"""

from __future__ import annotations

from collections.abc import Callable

from collectors.wire import Heartbeat, verify_heartbeat
from pipeline.enrolment.registry import AgentRecord

HEARTBEAT_REJECTIONS = ("malformed", "unsigned", "unknown_agent", "revoked_agent", "agency_mismatch", "bad_signature")
RECORD_REJECTIONS = ("bad_key", "unknown_agent", "agency_mismatch")

AgentLookup = Callable[[str], "AgentRecord | None"]


def parse_heartbeat(value: bytes | None) -> Heartbeat | None:
    if not value:
        return None
    try:
        hb = Heartbeat.from_bytes(value)
    except (ValueError, TypeError, AttributeError, KeyError):
        return None
    if not isinstance(hb.agent_id, str) or not isinstance(hb.agency_id, str) or not isinstance(hb.signature, str):
        return None
    return hb


def check_heartbeat(hb: Heartbeat, lookup: AgentLookup) -> str | None:
    """None when the heartbeat is genuine, else the rejection reason (one of HEARTBEAT_REJECTIONS)."""
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


def check_record(agency_id: str, agent_id: str, lookup: AgentLookup) -> str | None:
    agent = lookup(agent_id)
    if agent is None or agent.revoked:
        return "unknown_agent"
    if agent.agency_id != agency_id:
        return "agency_mismatch"
    return None


def header_value(headers, name: str) -> str:
    for k, v in headers or ():
        if k == name and v is not None:
            return bytes(v).decode("ascii", "replace") if isinstance(v, (bytes, bytearray)) else str(v)
    return ""


def lines_from_headers(headers) -> int:
    """Lines in a raw record from its `lines` header; 1 when absent or not a sane number."""
    from collectors.wire import HEADER_LINES

    raw = header_value(headers, HEADER_LINES)
    try:
        n = int(raw)
    except ValueError:
        return 1
    return n if 0 < n < 10_000_000 else 1
