"""Correlations on event time: every type, windows, lateness, chains, snapshots, partitioning."""

import textwrap

import pytest

from detectors.common.times import iso_ms as iso
from detectors.sigma import CorrelationInput, Engine, load_rules

T0 = 1_780_000_000.0
BASE = """
title: Failed login
id: 11111111-1111-4111-8111-111111111111
name: failed_login
logsource: {product: linux, service: sshd}
detection:
    sel: {event.outcome: failure}
    condition: sel
---
title: Successful login
id: 22222222-2222-4222-8222-222222222222
name: ok_login
logsource: {product: linux, service: sshd}
detection:
    sel: {event.outcome: success}
    condition: sel
"""


def engine(tmp_path, correlation: str, lateness=60.0, **kw):
    p = tmp_path / "r.yml"
    p.write_text(textwrap.dedent(correlation) + "\n---\n" + BASE)
    res = load_rules([p])
    assert not res.errors, res.errors
    return Engine(res.rules, allowed_lateness=lateness, **kw)


def ev(t, outcome="failure", ip="203.0.113.9", **extra):
    e = {
        "@timestamp": iso(T0 + t),
        "event.dataset": "system.auth",
        "process.name": "sshd",
        "event.outcome": outcome,
        "source.ip": ip,
        "log.file.line": int(t),
    }
    e.update(extra)
    return e


def run(eng, events, final=True):
    out = []
    for e in events:
        out += eng.process(e)
    if final:
        out += eng.advance(float("inf"))
    return out


COUNT = """
title: Brute force
id: 33333333-3333-4333-8333-333333333333
correlation:
    type: event_count
    rules: [failed_login]
    group-by: [source.ip]
    timespan: 1m
    condition: {gte: 5}
level: high
"""


def test_event_count_fires_early_once_per_episode(tmp_path):
    eng = engine(tmp_path, COUNT)
    dets = []
    for i in range(5):
        dets += eng.process(ev(i * 10))
    assert len(dets) == 1  # fired on the 5th event, before any advance
    d = dets[0]
    assert d.kind == "event_count" and d.count == 5 and d.group == {"source.ip": "203.0.113.9"}
    assert d.start == iso(T0) and d.end == iso(T0 + 40) and d.level == "high"
    assert len(d.evidence) == 5 and d.evidence[0]["log.file.line"] == 0
    more = run(eng, [ev(45), ev(50)], final=False)
    # same episode: continuations of the fired window (the alert layer folds them into the open
    # alert), never a second full detection
    assert [(m.continuation, m.count, m.dedup_key, m.end_ts) for m in more] == [
        (True, 1, d.dedup_key, T0 + 45),
        (True, 1, d.dedup_key, T0 + 50),
    ]
    assert len({m.detection_id for m in more} | {d.detection_id}) == 3
    # a gap longer than the timespan ends the episode: the condition must be met again
    assert run(eng, [ev(50 + 61 + i) for i in range(4)], final=False) == []
    again = run(eng, [ev(50 + 61 + 4)])
    assert len(again) == 1 and not again[0].continuation and again[0].count == 5


def test_base_rule_referenced_by_correlation_is_not_emitted_alone(tmp_path):
    eng = engine(tmp_path, COUNT)
    assert run(eng, [ev(0)]) == []


def test_event_count_groups_apart_and_window_slides(tmp_path):
    eng = engine(tmp_path, COUNT)
    assert run(eng, [ev(i * 30) for i in range(6)]) == []  # 2 per minute
    eng = engine(tmp_path, COUNT)
    evs = [ev(i, ip=f"198.51.100.{i % 2}") for i in range(8)]  # 4 per address
    assert run(eng, evs) == []
    eng = engine(tmp_path, COUNT)
    dets = run(eng, [ev(t) for t in (0, 50, 70, 80, 90, 100)])  # 5 in [50, 110]
    assert len(dets) == 1 and dets[0].start == iso(T0 + 50)


def test_evidence_is_capped(tmp_path):
    eng = engine(tmp_path, COUNT.replace("gte: 5", "gte: 30"), evidence_cap=20)
    dets = run(eng, [ev(i) for i in range(30)])
    assert dets[0].count == 30 and len(dets[0].evidence) == 20


def test_late_event_within_lateness_counts_and_too_late_is_dropped(tmp_path):
    eng = engine(tmp_path, COUNT, lateness=30)
    dets = []
    for t in (10, 20, 30, 40):
        dets += eng.process(ev(t))
        dets += eng.advance(T0 + t)
    dets += eng.process(ev(5))  # 35 s late, lateness 30: refused
    assert dets == [] and eng.state.stats["late_dropped"] == 1
    eng = engine(tmp_path, COUNT, lateness=60)
    for t in (10, 20, 30, 40):
        eng.process(ev(t))
        eng.advance(T0 + t)
    assert len(eng.process(ev(5))) == 1  # accepted: completes the window


def test_lt_condition_is_evaluated_once_when_window_closes(tmp_path):
    eng = engine(tmp_path, COUNT.replace("gte: 5", "lt: 3"))
    dets = [d for e in (ev(0), ev(10)) for d in eng.process(e)]
    assert dets == []
    assert eng.advance(T0 + 30) == []  # window [0,60] not closed (lateness 60)
    closed = eng.advance(T0 + 121)
    assert len(closed) == 1 and closed[0].count == 2
    assert eng.advance(T0 + 500) == []  # never evaluated twice


def test_value_count_across_agencies(tmp_path):
    eng = engine(
        tmp_path,
        """
        title: One source, many agencies
        id: 44444444-4444-4444-8444-444444444444
        correlation:
            type: value_count
            rules: [failed_login]
            group-by: [source.ip]
            timespan: 10m
            condition: {field: organization.id, gte: 3}
        level: critical
        """,
    )
    evs = [ev(i, **{"organization.id": a}) for i, a in enumerate(["a", "a", "b", "b", "c"])]
    dets = run(eng, evs)
    assert len(dets) == 1 and dets[0].agencies == ["a", "b", "c"]
    assert dets[0].metric["value_count"] == 3
    # keyed by the attacker, not by the agency
    keys = {k for e in evs for k in eng.correlation_keys(e)}
    assert keys == {'k:[["source.ip","203.0.113.9"]]'}


@pytest.mark.parametrize(
    "ctype,cond,values,fires",
    [
        ("value_sum", "gt: 100", [60, 50], True),
        ("value_sum", "gt: 100", [60, 40], False),
        ("value_avg", "gt: 50", [60, 50], True),
        ("value_avg", "gt: 50", [40, 50], False),
        ("value_percentile", "lte: 10", ["a"] * 19 + ["rare"], True),
        ("value_percentile", "lte: 10", ["a"] * 5 + ["b"] * 5, False),
    ],
)
def test_value_aggregates(tmp_path, ctype, cond, values, fires):
    eng = engine(
        tmp_path,
        f"""
        title: agg
        id: 55555555-5555-4555-8555-555555555555
        correlation:
            type: {ctype}
            rules: [failed_login]
            group-by: [source.ip]
            timespan: 1h
            condition: {{field: bytes, {cond}}}
        """,
    )
    dets = run(eng, [ev(i, bytes=v) for i, v in enumerate(values)])
    assert (len(dets) == 1) is fires


TEMPORAL = """
title: fail and success
id: 66666666-6666-4666-8666-666666666666
correlation:
    type: {ctype}
    rules: [failed_login, ok_login]
    group-by: [source.ip]
    timespan: 5m
"""


@pytest.mark.parametrize(
    "ctype,order,fires",
    [
        ("temporal", ["failure", "success"], True),
        ("temporal", ["success", "failure"], True),
        ("temporal_ordered", ["failure", "success"], True),
        ("temporal_ordered", ["success", "failure"], False),
        ("temporal", ["failure", "failure"], False),
    ],
)
def test_temporal(tmp_path, ctype, order, fires):
    eng = engine(tmp_path, TEMPORAL.format(ctype=ctype))
    dets = run(eng, [ev(i * 10, outcome=o) for i, o in enumerate(order)])
    assert (len(dets) == 1) is fires


def test_temporal_outside_timespan(tmp_path):
    eng = engine(tmp_path, TEMPORAL.format(ctype="temporal"))
    assert run(eng, [ev(0), ev(400, outcome="success")]) == []


def test_chained_correlation_spec_example(tmp_path):
    """Spec example: many failed logins followed by a success of the same user (chain + names)."""
    eng = engine(
        tmp_path,
        """
        title: Correlation - Multiple Failed Logins Followed by Successful Login
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
            condition: {gte: 10}
        """,
    )
    fails = [ev(i * 5, **{"user.name": "bob"}) for i in range(10)]
    dets = run(eng, fails + [ev(100, outcome="success", **{"user.name": "bob"})])
    assert [d.rule_title for d in dets] == ["Correlation - Multiple Failed Logins Followed by Successful Login"]
    assert dets[0].group == {"user.name": "bob"} and dets[0].level == "high"
    eng = engine(tmp_path, (tmp_path / "r.yml").read_text().split("\n---\n" + BASE)[0])
    assert run(eng, fails[:9] + [ev(100, outcome="success", **{"user.name": "bob"})]) == []


def test_aliases(tmp_path):
    eng = engine(
        tmp_path,
        """
        title: aliased
        id: 99999999-9999-4999-8999-999999999999
        correlation:
            type: temporal
            rules: [failed_login, ok_login]
            group-by: [peer]
            timespan: 1m
            aliases:
                peer:
                    failed_login: source.ip
                    ok_login: destination.ip
        """,
    )
    dets = run(eng, [ev(0, ip="1.1.1.1"), ev(5, outcome="success", ip="9.9.9.9", **{"destination.ip": "1.1.1.1"})])
    assert len(dets) == 1 and dets[0].group == {"peer": "1.1.1.1"}


def test_generate_true_emits_referenced_rules(tmp_path):
    eng = engine(tmp_path, COUNT + "generate: true\n")
    assert [d.kind for d in run(eng, [ev(0)])] == ["single"]


def test_replay_gives_same_ids_and_snapshot_restore_mid_stream(tmp_path):
    events = [ev(t) for t in (0, 5, 10, 15, 20, 100, 105, 110, 115, 120)]
    whole = run(engine(tmp_path, COUNT), events)
    again = run(engine(tmp_path, COUNT), events)
    assert [d.detection_id for d in whole] == [d.detection_id for d in again]
    assert len(whole) == 2
    for cut in range(1, len(events)):
        first = engine(tmp_path, COUNT)
        part1 = run(first, events[:cut], final=False)
        blob = first.snapshot()
        second = engine(tmp_path, COUNT)  # a restarted worker
        second.restore(blob)
        part2 = run(second, events[cut:])
        assert [d.detection_id for d in part1 + part2] == [d.detection_id for d in whole], cut


def test_two_stage_partitioned_workers_equal_single_worker(tmp_path):
    events = [ev(i * 3, ip=f"10.0.0.{i % 3}") for i in range(30)]
    single = run(engine(tmp_path, COUNT), events)
    front = engine(tmp_path, COUNT)
    workers: dict[int, Engine] = {}
    out = []
    for e in events:
        res = front.match(e)
        out += res.detections
        for item in res.inputs:
            wire = CorrelationInput.from_dict(item.to_dict())
            w = workers.setdefault(hash(wire.partition_key) % 2, engine(tmp_path, COUNT))
            out += w.correlate(wire)
    for w in workers.values():
        out += w.advance(float("inf"))
    assert sorted(d.detection_id for d in out) == sorted(d.detection_id for d in single)
    assert len([d for d in single if not d.continuation]) == 3  # one per address, the rest continue it


def test_event_without_group_field_is_skipped(tmp_path):
    eng = engine(tmp_path, COUNT)
    evs = [ev(i) for i in range(5)]
    for e in evs:
        del e["source.ip"]
    assert run(eng, evs) == [] and eng.stats["missing_group"] == 5
