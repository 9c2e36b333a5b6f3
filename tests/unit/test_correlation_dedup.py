"""Correlation inputs carry stage 1's identity of their event: a redelivered input counts once.

Stage 1 forwards its correlation inputs before the alerts, the snapshot and the offset commit; a
crash in between (or a rebalance while Elasticsearch is down) makes the next owner forward the same
events again. Without an identity stage 2 counted them twice: three failed logins became a brute
force of five.
"""

from __future__ import annotations

import json
import zlib

from detectors.sigma import CorrelationInput
from pipeline.worker.stages import InputIds
from tests.unit.test_sigma_correlation import COUNT, T0, engine, ev
from tests.unit.test_worker_stages import Rec, failures, forwarded, signed, stages

BRUTE = "SSH Brute Force From One Source"
SSHD_ANY = "44444444-4444-4444-8444-444444444444"
BOTH = f"""
title: Failure seen by both
id: 55555555-5555-4555-8555-555555555555
correlation:
    type: temporal
    rules: [failed_login, sshd_any]
    group-by: [source.ip]
    timespan: 1m
level: high
---
title: Any sshd event
id: {SSHD_ANY}
name: sshd_any
logsource: {{product: linux, service: sshd}}
detection:
    sel: {{process.name: sshd}}
    condition: sel
"""


def titles(plan) -> list[str]:
    return [n.candidate.item.rule_title for n in plan.new]


def test_three_failed_logins_correlated_twice_are_no_brute_force() -> None:
    """The reviewer's case: the same three inputs delivered twice (a second owner of the raw partition)."""
    s1, s2, metrics = stages()
    s1b, _, _ = stages()  # the partition's next owner: no dedup state, processes the record again
    rec = signed(failures(3))
    first, again = s1.process([rec]), s1b.process([rec])
    assert len(first.forwards) == len(again.forwards) == 3
    s2.assign(0)
    plan = s2.process(forwarded(first)).plan
    plan.extend(s2.process(forwarded(again)).plan)
    plan.extend(s2.process({}).plan)
    assert BRUTE not in titles(plan)
    # one refusal per correlation rule each of the three inputs feeds (brute force, slow brute force ...)
    refused = s2.partitions[0].engine.state.stats["duplicate_inputs"]
    assert refused >= 3 and refused % 3 == 0
    assert metrics.correlation_duplicate_inputs._value.get() == refused
    # without ids (inputs of an older worker) the same delivery does count twice: the test can fail
    _, s2old, _ = stages()
    s2old.assign(0)
    old = [
        Rec(json.dumps({**json.loads(r.value or b"null"), "id": ""}).encode(), r.key, topic=r.topic, offset=r.offset)
        for r in forwarded(first)[0] + forwarded(again)[0]
    ]
    plan = s2old.process({0: old}).plan
    plan.extend(s2old.process({}).plan)
    assert BRUTE in titles(plan)


def test_same_raw_record_gives_same_ids_and_identical_lines_different_ones() -> None:
    line = failures(1)[0]
    rec = signed([line, line, line])  # three identical lines in one second: three attempts
    a, _, _ = stages()
    b, _, _ = stages()
    ids_a = [json.loads(f.value)["id"] for f in a.process([rec]).forwards]
    ids_b = [json.loads(f.value)["id"] for f in b.process([rec]).forwards]
    assert ids_a == ids_b
    assert ids_a == ["agt-a|/var/log/auth.log|1", "agt-a|/var/log/auth.log|2", "agt-a|/var/log/auth.log|3"]
    s1, s2, _ = stages()
    s2.assign(0)
    out = s1.process([signed([line] * 5)])
    plan = s2.process(forwarded(out)).plan
    plan.extend(s2.process({}).plan)
    assert titles(plan).count(BRUTE) == 1  # five identical lines are five failures


def test_wire_id_round_trips_and_old_inputs_have_none() -> None:
    item = CorrelationInput("k:*", 1.0, {"a": 1}, ["r"], ["c"], "agt|/p|7")
    assert CorrelationInput.from_dict(item.to_dict()) == item
    old = {k: v for k, v in item.to_dict().items() if k != "id"}
    assert CorrelationInput.from_dict(old).id == ""
    assert CorrelationInput.from_dict({**old, "id": 5}).id == ""  # not text: no identity


def feed(eng, events_with_ids):
    out = []
    for e, ident in events_with_ids:
        r = eng.match(e, input_id=ident)
        for item in r.inputs:
            out += eng.correlate(item)
    return out


def test_a_duplicate_inside_an_episode_is_not_a_continuation(tmp_path) -> None:
    eng = engine(tmp_path, COUNT)
    fired = feed(eng, [(ev(i), f"a|s|{i}") for i in range(5)])
    assert [d.continuation for d in fired] == [False]
    assert [d.continuation for d in feed(eng, [(ev(6), "a|s|6")])] == [True]
    assert feed(eng, [(ev(6), "a|s|6"), (ev(3), "a|s|3")]) == []  # redelivered: nothing more
    assert eng.state.stats["duplicate_inputs"] == 2
    assert [d.continuation for d in feed(eng, [(ev(6), "")])] == [True]  # no id: never deduplicated


def test_ids_survive_a_snapshot_and_a_snapshot_without_ids_loads(tmp_path) -> None:
    eng = engine(tmp_path, COUNT)
    assert feed(eng, [(ev(i), f"a|s|{i}") for i in range(3)]) == []
    blob = eng.snapshot()
    back = engine(tmp_path, COUNT)
    back.restore(blob)
    assert feed(back, [(ev(i), f"a|s|{i}") for i in range(3)]) == []  # redelivered after restore
    assert back.state.stats["duplicate_inputs"] == 3
    assert len(feed(back, [(ev(i), f"a|s|{i}") for i in range(3, 5)])) == 1  # five distinct: fires
    # a snapshot of an older worker (no "ids") loads, with nothing to deduplicate
    data = json.loads(zlib.decompress(blob))
    for g in data["state"]["groups"]:
        del g["ids"]
    old = engine(tmp_path, COUNT)
    old.restore(zlib.compress(json.dumps(data).encode()))
    assert len(feed(old, [(ev(i), f"a|s|{i}") for i in range(3, 5)])) == 1


def test_an_event_matching_two_input_rules_counts_for_both(tmp_path) -> None:
    """Ids are per input rule: one event of rules A and B still satisfies a temporal A+B."""
    eng = engine(tmp_path, BOTH)
    [item] = eng.match(ev(0), input_id="x").inputs
    assert item.id == "x" and item.rules == ["11111111-1111-4111-8111-111111111111", SSHD_ANY]
    assert [d.rule_title for d in eng.correlate(item)] == ["Failure seen by both"]
    assert eng.correlate(item) == [] and eng.state.stats["duplicate_inputs"] == 2  # the redelivery: both refused


def test_ids_are_forgotten_behind_the_cutoff(tmp_path) -> None:
    eng = engine(tmp_path, COUNT, lateness=10)
    feed(eng, [(ev(i), f"a|s|{i}") for i in range(3)])
    [g] = eng.state.groups.values()
    assert len(g.ids) == 3
    eng.advance(T0 + 12.5)  # cutoff (watermark - 10 s) past the first three inputs' times
    assert not eng.state.groups or not next(iter(eng.state.groups.values())).ids
    assert feed(eng, [(ev(1), "a|s|1")]) == []  # too late anyway: refused as late, not counted
    assert eng.state.stats["late_dropped"] == 1


def test_input_ids_never_come_from_the_logs_content() -> None:
    rec = Rec(b"", topic="socpipe.raw", partition=2, offset=40)
    ids = InputIds(rec, "agt-a", "/var/log/auth.log")
    line = {"agent.id": "agt-a", "log.file.path": "/var/log/auth.log", "socpipe.seq": 7}
    assert ids.of(line) == "agt-a|/var/log/auth.log|7"
    assert ids.of(dict(line)) == "agt-a|/var/log/auth.log|7#1"  # a second event of the same line
    # a JSON line naming another file (its content), and a line without a seq: the record's place
    assert ids.of({**line, "log.file.path": "/var/log/secure"}) == "socpipe.raw/2@40:0"
    assert ids.of({"agent.id": "agt-a", "socpipe.seq": 0}) == "socpipe.raw/2@40:1"
    assert ids.of(line, anomaly=True) == "socpipe.raw/2@40:2"  # the sequence-anomaly report shares a seq
    # idle flush (auditd events completed without a record): file sources by path and seq, others none
    idle = InputIds(None, None, None)
    assert idle.of(line) == "agt-a|/var/log/auth.log|7"
    assert idle.of({"agent.id": "agt-a", "socpipe.seq": 7}) == ""


CHAIN = """
title: Many failures then a success
id: 77777777-7777-4777-8777-777777777777
correlation:
    type: temporal_ordered
    rules: [multiple_failed_login, ok_login]
    group-by: [user.name]
    timespan: 10m
level: high
---
title: Multiple failed logons
id: 88888888-8888-4888-8888-888888888888
name: multiple_failed_login
correlation:
    type: event_count
    rules: [failed_login]
    group-by: [user.name]
    timespan: 10m
    condition: {gte: 3}
"""


def test_a_chain_fed_twice_fires_once(tmp_path) -> None:
    """Redelivered failures neither count twice in the inner correlation nor reach the outer one twice."""
    eng = engine(tmp_path, CHAIN)
    bob = {"user.name": "bob"}
    fails = [(ev(i, **bob), f"a|s|{i}") for i in range(3)]
    ok = (ev(30, outcome="success", **bob), "a|s|30")
    assert [d.rule_title for d in feed(eng, fails + fails + [ok, ok])] == ["Many failures then a success"]
    # the inner fire reached the outer group as one input, named by rule, group and anchor
    [outer] = [g for (rid, _), g in eng.state.groups.items() if rid.startswith("7777")]
    inner = [k for k in outer.ids if k.startswith("corr:")]
    assert inner == [f'corr:88888888-8888-4888-8888-888888888888|["bob"]|{T0!r}']
    assert eng.advance(float("inf")) == []
