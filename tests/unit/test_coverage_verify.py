from collectors.wire import Heartbeat, SourceStatus, sign_heartbeat
from pipeline.enrolment.registry import AgentRecord
from pipeline.verify import (
    check_heartbeat,
    lines_from_headers,
    parse_heartbeat,
    parse_record_key,
)

AGENTS = {
    "agt-1": AgentRecord("agt-1", "xa-a", "h", "s3cret", "1", 0.0, False),
    "agt-old": AgentRecord("agt-old", "xa-a", "h", "old", "1", 0.0, True),
}


def signed(agency="xa-a", agent="agt-1", secret="s3cret"):
    hb = Heartbeat(agency, agent, "h", "1", 10.0, 1.0, sources={"/var/log/auth.log": SourceStatus(1.0, 0, 5, 5)})
    hb.signature = sign_heartbeat(hb, secret)
    return hb


def test_genuine_heartbeat_passes_after_a_wire_round_trip():
    hb = parse_heartbeat(signed().to_bytes())
    assert hb is not None and check_heartbeat(hb, AGENTS.get) is None


def test_forgeries():
    assert check_heartbeat(signed(agency="so-other"), AGENTS.get) == "agency_mismatch"
    assert check_heartbeat(signed(secret="guess"), AGENTS.get) == "bad_signature"
    assert check_heartbeat(signed(agent="agt-zzz"), AGENTS.get) == "unknown_agent"
    assert check_heartbeat(signed(agent="agt-old", secret="old"), AGENTS.get) == "revoked_agent"
    hb = signed()
    hb.spool_bytes = 999  # tampered after signing
    assert check_heartbeat(hb, AGENTS.get) == "bad_signature"
    hb.signature = ""
    assert check_heartbeat(hb, AGENTS.get) == "unsigned"


def test_malformed_heartbeats_do_not_raise():
    for value in (None, b"", b"\xff\xfe", b"[]", b"{}", b'{"agency_id": 1}', b'{"sources": 5}'):
        assert parse_heartbeat(value) is None


def test_record_keys_and_headers():
    assert parse_record_key(b"xa-a|agt-1|/var/log/a|b.log") == ("xa-a", "agt-1", "/var/log/a|b.log")
    for bad in (None, b"", b"xa-a|agt-1", b"||x", b"\xff|a|b"):
        assert parse_record_key(bad) is None
    assert lines_from_headers([("lines", b"250"), ("dataset", b"x")]) == 250
    assert lines_from_headers([("lines", b"abc")]) == 1 and lines_from_headers(None) == 1
    assert lines_from_headers([("lines", b"-4")]) == 1
