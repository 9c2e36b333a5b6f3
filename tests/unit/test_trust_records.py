"""Issue #17 items 2-3, pure logic: signed raw batches, verification against the registry, replayed
heartbeats, and dedup that a poisoned sequence cannot blind. Each attack of the issue is one test."""

from __future__ import annotations

import time

from collectors.wire import (
    Heartbeat,
    LineBatch,
    LogLine,
    MessageCounter,
    SourceStatus,
    batch_headers,
    sign_heartbeat,
    signed_record,
)
from pipeline.dedup import SeenSequences
from pipeline.enrolment.registry import AgentRecord
from pipeline.verify import HeartbeatGuard, StreamCounters, check_heartbeat, check_raw, verify_batch
from pipeline.worker.intake import Intake, sequence_anomaly_event

AGENTS = {
    "agt-a": AgentRecord("agt-a", "xa-a", "srv-a", "secret-a", "1", 0.0, False),
    "agt-b": AgentRecord("agt-b", "xa-b", "srv-b", "secret-b", "1", 0.0, False),
    "agt-old": AgentRecord("agt-old", "xa-a", "srv-old", "secret-old", "1", 0.0, True),
}
lookup = AGENTS.get
AUTH = "/var/log/auth.log"


def batch(agency="xa-a", agent="agt-a", seqs=(1, 2, 3), source=AUTH) -> LineBatch:
    lines = [LogLine(f"sshd[1]: Failed password for root from 10.0.0.{q % 250} port 22 ssh2", seq=q) for q in seqs]
    return LineBatch(agency, agent, "srv", source, lines, dataset="system.auth")


def record(
    b: LineBatch, secret="secret-a", counter=1, key: bytes | None = None
) -> tuple[bytes, list[tuple[str, bytes]], bytes]:
    """(key, headers, value) exactly as the agent ships it."""
    own_key, headers, value = signed_record(b, secret, counter)
    if key is None:
        return own_key, headers, value
    return key, batch_headers(secret, key, counter, len(b.lines), b.dataset or "", value), value  # a lying key


def test_genuine_batch_passes_and_is_stamped_from_the_registry():
    got, reason = verify_batch(*record(batch()), lookup)
    assert reason == "" and got is not None
    assert (got.agency_id, got.agent_id) == ("xa-a", "agt-a")


def test_forged_batches_are_rejected_with_their_reason():
    b_claims_a = batch(agency="xa-a", agent="agt-b")  # agent B's real secret, agency A in key and value
    cases = {
        "unknown_agent": record(batch(agent="agt-nobody"), secret="guess"),
        "revoked_agent": record(batch(agent="agt-old"), secret="secret-old"),
        "bad_mac": record(batch(), secret="guess"),
        "agency_mismatch": record(b_claims_a, secret="secret-b"),
        # key says B's stream, value claims agency A: the MAC is B's and right, the value lies
        "key_value_mismatch": record(
            batch(agency="xa-a", agent="agt-b"), "secret-b", key=b"xa-b|agt-b|" + AUTH.encode()
        ),
        "bad_key": (b"garbage", [], b"{}"),
    }
    for reason, rec in cases.items():
        assert verify_batch(*rec, lookup) == (None, reason), reason
    key, headers, value = record(batch())
    assert verify_batch(key, headers[:2], value, lookup) == (None, "unsigned")  # no ctr/mac headers
    assert verify_batch(key, headers, value.replace(b"10.0.0.1", b"10.0.0.9"), lookup) == (None, "bad_mac")
    bumped = [(k, b"999" if k == "lines" else v) for k, v in headers]  # inflate coverage's line count
    assert verify_batch(key, bumped, value, lookup) == (None, "bad_mac")


def test_signed_garbage_is_undecodable_not_a_crash():
    key = b"xa-a|agt-a|" + AUTH.encode()
    for value in (b"\xff", b"[]", b'{"lines": 5}', b'{"agency_id": "xa-a", "extra": 1}'):
        headers = batch_headers("secret-a", key, 7, 1, "", value)
        assert verify_batch(key, headers, value, lookup) == (None, "undecodable")


def test_replayed_raw_record_is_not_fresh_for_coverage():
    counters = StreamCounters()
    v = check_raw(*record(batch(), counter=10), lookup)
    assert v.reason is None and v.agent is not None and counters.fresh(v.agent.agent_id, v.source, v.counter)
    assert not counters.fresh("agt-a", AUTH, 10)  # the same record again
    assert not counters.fresh("agt-a", AUTH, 9)
    assert counters.fresh("agt-a", AUTH, 11) and counters.fresh("agt-a", "/other", 1)
    restarted = StreamCounters()  # coverage saves them with its state: a restart forgets no stream
    restarted.load(counters.export())
    assert not restarted.fresh("agt-a", AUTH, 11) and restarted.fresh("agt-a", AUTH, 12)


def heartbeat(counter: int, sent_at: float, secret="secret-a") -> Heartbeat:
    hb = Heartbeat("xa-a", "agt-a", "srv-a", "1", sent_at, 1.0, {AUTH: SourceStatus(1.0, 0, 5, 5)}, counter=counter)
    hb.signature = sign_heartbeat(hb, secret)
    return hb


def test_replayed_heartbeat_is_rejected_after_the_agent_died():
    now = time.time()
    guard = HeartbeatGuard(max_age_s=30)
    captured = heartbeat(counter=100, sent_at=now)
    assert check_heartbeat(captured, lookup) is None and guard.check(captured, now) is None
    guard.accept(captured)
    # kill -9 of the agent; the attacker replays the captured heartbeat every few seconds
    for t in (5, 10, 20):
        assert guard.check(captured, now + t) == "replayed"
    assert guard.check(captured, now + 40) == "stale"
    # a coverage restart forgets nothing (state saved), and without it the age check still holds
    fresh = HeartbeatGuard(max_age_s=30)
    fresh.load(guard.export())
    assert fresh.check(captured, now + 5) == "replayed"
    assert HeartbeatGuard(max_age_s=30).check(captured, now + 40) == "stale"
    # the counter is signed: bumping it breaks the signature
    bumped = heartbeat(counter=100, sent_at=now)
    bumped.counter = 101
    assert check_heartbeat(bumped, lookup) == "bad_signature"
    assert guard.check(heartbeat(counter=101, sent_at=now + 15), now + 15) is None


def test_message_counter_is_monotonic_across_restarts_even_with_the_clock_set_back(tmp_path, monkeypatch):
    path = tmp_path / "counter"
    first = MessageCounter(path, reserve=1000)
    values = [first.next() for _ in range(5)]
    assert values == sorted(set(values))
    monkeypatch.setattr(time, "time", lambda: 1.0)  # clock set back to 1970 before the restart
    again = MessageCounter(path, reserve=1000)
    assert again.next() > values[-1]
    assert (path.stat().st_mode & 0o777) == 0o600


def test_poisoned_sequence_after_a_restart_does_not_blind_the_stream():
    seen = SeenSequences(max_pending=1000, max_ahead=1000)
    for q in range(1, 51):
        assert seen.add("agt-a", AUTH, q)
    assert seen.add("agt-a", AUTH, 10**12)  # processed, but an anomaly, not state
    assert seen.far_ahead == 1
    assert all(seen.add("agt-a", AUTH, q) for q in range(51, 101)), "real lines dropped as duplicates"
    assert not seen.add("agt-a", AUTH, 60)  # real duplicates are still dropped


def test_flood_of_far_ahead_seqs_cannot_overflow_the_pending_set():
    seen = SeenSequences(max_pending=1000, max_ahead=1000)
    seen.add("agt-a", AUTH, 1)
    for q in range(10_000, 110_000, 2):  # ~50k sparse far-ahead seqs
        seen.add("agt-a", AUTH, q)
    assert seen.missing == 0 and seen.rebased == 0
    assert all(seen.add("agt-a", AUTH, q) for q in range(2, 500))


def test_a_stream_that_really_jumped_continues_from_there():
    seen = SeenSequences(max_pending=1000, max_ahead=1000, rebase_after=100)
    seen.add("agt-a", AUTH, 1)
    for q in range(50_000, 50_200):
        assert seen.add("agt-a", AUTH, q)
    assert seen.rebased == 1
    assert not seen.add("agt-a", AUTH, 50_150)  # now remembered: a resend is a duplicate


def test_dedup_state_round_trips_with_the_offset():
    intake = Intake(lookup, max_seq_ahead=1000)
    got = intake.accept(3, *record(batch(seqs=(1, 2, 5))))
    assert not isinstance(got, str) and got.duplicates == 0
    snap = intake.snapshot(3, offset=42)
    restarted = Intake(lookup, max_seq_ahead=1000)
    import json

    assert restarted.restore(3, json.loads(snap)) == 42
    again = restarted.accept(3, *record(batch(seqs=(1, 2, 3, 5)), counter=2))
    assert not isinstance(again, str)
    assert [ln.seq for ln in again.batch.lines] == [3] and again.duplicates == 3


def test_dedup_state_is_per_verified_agent():
    """A forged record naming agent A's stream never reaches dedup: A's next lines are all kept."""
    intake = Intake(lookup, max_seq_ahead=1000)
    forged = record(batch(seqs=range(1, 1000)), secret="guess")
    assert intake.accept(0, *forged) == "bad_mac"
    got = intake.accept(0, *record(batch(seqs=(1, 2, 3))))
    assert not isinstance(got, str) and len(got.batch.lines) == 3


def test_intake_reports_far_ahead_lines():
    intake = Intake(lookup, max_seq_ahead=1000)
    intake.accept(0, *record(batch(seqs=(1, 2))))
    got = intake.accept(0, *record(batch(seqs=(3, 10**9)), counter=2))
    assert not isinstance(got, str) and got.far_ahead == 1 and len(got.batch.lines) == 2
    event = sequence_anomaly_event(got, 1.7e9)
    assert event["event.action"] == "sequence-anomaly" and event["socpipe.seq"] == 10**9
    assert (event["organization.id"], event["agent.id"], event["log.file.path"]) == ("xa-a", "agt-a", AUTH)


def test_the_province_rule_turns_a_sequence_anomaly_into_an_alert():
    from pathlib import Path

    from detectors.sigma import Engine, load_rules

    rules = load_rules([Path(__file__).resolve().parents[2] / "rules" / "socpipe"]).rules
    intake = Intake(lookup, max_seq_ahead=1000)
    intake.accept(0, *record(batch(seqs=(1, 2))))
    got = intake.accept(0, *record(batch(seqs=(10**9,)), counter=2))
    assert not isinstance(got, str)
    [det] = Engine(rules).process(sequence_anomaly_event(got, 1.7e9))
    assert det.rule_id == "5f78ce0e-39be-47d7-bbe8-0cc429188870"


def test_quarantine_rows_show_what_was_claimed_and_why():
    from pipeline.worker.intake import quarantine_row

    key, headers, value = record(batch(agency="xa-b"), secret="guess")
    row = quarantine_row(
        1_700_000_000_000,
        key,
        headers + [("quarantine_reason", b"bad_mac"), ("quarantine_from", b"socpipe.raw/2@17")],
        value,
    )
    assert row["reason"] == "bad_mac" and row["from"] == "socpipe.raw/2@17"
    assert (row["claimed_agency"], row["claimed_agent"], row["source"]) == ("xa-b", "agt-a", AUTH)
    assert row["lines"] == "3" and row["bytes"] == len(value) and row["time"].startswith("2023-11-14T22:13:20")
    assert quarantine_row(0, b"\xff garbage", None, None)["claimed_agency"] == ""


def test_heartbeat_max_age_defaults_to_two_intervals():
    from pipeline.coverage.config import CoverageConfig

    assert CoverageConfig().heartbeat_max_age() == 30.0
    assert CoverageConfig(heartbeat_interval_s=1.0).heartbeat_max_age() == 5.0
    assert CoverageConfig(heartbeat_max_age_s=120.0).heartbeat_max_age() == 120.0
