"""Partitions to workers by recent load (pipeline.worker.assign): split, samples by lines, what members
claim in their subscriptions, kafka-python hook. The sticky properties: test_worker_balance."""

from __future__ import annotations

import itertools
import json
import random
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.coordinator.assignors.abstract import ConsumerProtocolAssignment, ConsumerProtocolSubscription

from collectors.wire import MAX_BATCH_LINES
from pipeline.worker.assign import (
    Claim,
    LoadAssignor,
    PartitionLoads,
    balance,
    check_claims,
    decode_claim,
    resolve,
)


def _complete(out: dict[str, list[int]], partitions: list[int]) -> None:
    got = sorted(p for ps in out.values() for p in ps)
    assert got == sorted(partitions), "every partition exactly once"


def test_the_bench_key_split_is_balanced_where_range_was_not() -> None:
    """The 64 bench sources hashed to 268/203/236/293 records on 4 partitions: range gave 471 vs 529
    (53%); by load the best 2+2 split is 504 vs 496."""
    loads = {0: 268.0, 1: 203.0, 2: 236.0, 3: 293.0}
    out = balance([0, 1, 2, 3], ["w-b", "w-a"], loads)
    _complete(out, [0, 1, 2, 3])
    shares = sorted(sum(loads[p] for p in ps) for ps in out.values())
    assert shares == [496.0, 504.0]


def test_greedy_split_is_close_to_the_best_possible() -> None:
    """Skewed partitions (a few heavy logs), two workers: the busiest carries at most 7/6 of the best
    split's (the greedy bound), mostly within 5% of it, and less than under a split by number."""
    rng = random.Random(7)
    near, vs_range = 0, []
    for _ in range(60):
        loads = {p: rng.paretovariate(1.5) * 100 for p in range(12)}
        out = balance(list(range(12)), ["w0", "w1"], loads)
        _complete(out, list(range(12)))
        busiest = max(sum(loads[p] for p in ps) for ps in out.values())
        total = sum(loads.values())
        best = min(
            max(sum(loads[p] for p in c), total - sum(loads[p] for p in c))
            for r in range(13)
            for c in itertools.combinations(range(12), r)
        )
        assert busiest <= best * 7 / 6 * 1.06  # (+ the small weight every partition carries)
        near += busiest <= best * 1.05
        by_number = max(sum(loads[p] for p in range(6)), sum(loads[p] for p in range(6, 12)))
        vs_range.append(busiest / by_number)
    assert near >= 48 and sum(vs_range) / len(vs_range) < 0.95 and max(vs_range) <= 1.06


def test_nothing_measured_splits_by_number_like_range() -> None:
    assert balance(range(5), ["b", "a"], {}) == {"a": [0, 1, 2], "b": [3, 4]}
    assert balance(range(4), ["a", "b"], {0: 0.0, 1: 0.0}) == {"a": [0, 1], "b": [2, 3]}
    assert balance(range(3), [], {0: 1.0}) == {}


def test_idle_and_unmeasured_partitions_are_spread_not_piled() -> None:
    """Idle partitions weigh a little (so they do not all land on one worker); a partition the leader has
    no figure for (added since) counts as average."""
    out = balance(range(12), ["a", "b"], {0: 1000.0, **{p: 0.0 for p in range(1, 12)}})
    assert out["a"] == [0] or out["b"] == [0]
    assert min(len(ps) for ps in out.values()) >= 1
    out = balance(range(4), ["a", "b"], {0: 100.0, 1: 100.0, 2: 100.0})  # 3 unmeasured: average
    assert sorted(len(ps) for ps in out.values()) == [2, 2]


def test_loads_are_records_received_within_the_window() -> None:
    loads = PartitionLoads(window_s=60)
    assert loads.loads("raw") == {}
    loads.sample("raw", 0.0, {0: 100, 1: 100})
    assert loads.loads("raw") == {}  # one sample measures nothing yet
    loads.sample("raw", 30.0, {0: 400, 1: 150})
    assert loads.loads("raw") == {0: 300.0, 1: 50.0}  # no lines per record known: 1 each
    loads.sample("raw", 90.0, {0: 400, 1: 950, 2: 10})  # the t=0 sample leaves the window
    assert loads.records("raw") == {0: 0.0, 1: 800.0, 2: 0.0}
    assert loads.loads("corr") == {}


def test_loads_weigh_lines_not_records() -> None:
    """A portal's access log ships batches of 1,000 lines, a commune's auth.log one line a record: by
    records the auth partition looked 10x heavier, by lines it is 10x lighter. A partition nobody
    measured takes the average lines per record of those measured."""
    loads = PartitionLoads(window_s=60)
    loads.sample("raw", 0.0, {0: 0, 1: 0, 2: 0})
    loads.sample("raw", 30.0, {0: 100, 1: 1000, 2: 50})
    loads.observe("raw", 0, records=20, lines=20_000)
    loads.observe("raw", 1, records=500, lines=500)
    assert loads.loads("raw") == {0: 100_000.0, 1: 1000.0, 2: 50 * 500.5}
    loads.observe("raw", 1, records=10, lines=30)  # a moving average: 0.8 x 1 + 0.2 x 3
    assert loads.ratios("raw", [1]) == {1: 1.4000000000000001}
    loads.observe("raw", 2, records=0, lines=0)  # nothing consumed: nothing learnt
    assert loads.ratios("raw", [2]) == {}
    loads.learn("raw", {2: 7.0})  # reported by the member that owns it
    assert loads.loads("raw")[2] == 350.0
    split = balance([0, 1, 2], ["a", "b"], loads.loads("raw"))
    assert [0] in split.values()  # the heavy one alone, the two light ones together


def test_a_claim_round_trips_and_anything_malformed_owns_nothing() -> None:
    claim = Claim(7, {"raw": (0, 3)}, {"raw": {0: 100.0, 3: 2.5}}, {"raw": {0: 2, 3: 7}})
    assert decode_claim(claim.encode()) == claim
    bad = [
        None,
        b"",
        b"\xff\xfe",
        b"[]",
        b'{"v": 2, "gen": 1, "topics": {"raw": [[0, 1, 1]]}}',  # another version
        b'{"v": 1, "gen": 1, "topics": {"raw": [[-1, 1, 1]]}}',
        b'{"v": 1, "gen": 1, "topics": {"raw": [[true, 1, 1]]}}',
        b'{"v": 1, "gen": 1, "topics": {"raw": [0, 1]}}',
        b'{"v": 1, "gen": 1, "topics": {"raw": [[0, 1]]}}',  # a row without its since
        b'{"v": 1, "gen": 1, "topics": {"raw": {"0": 1}}}',
        b'{"v": 1, "gen": 1, "topics": []}',
        json.dumps({"v": 1, "gen": 1, "topics": {"raw": [[p, 1, 1] for p in range(20_000)]}}).encode(),  # too many
        b'{"v": 1, "gen": 1, "topics": {"raw": [[0, 1, 1]]}}' + b" " * 70_000,  # too large
    ]
    for data in bad:
        assert decode_claim(data) == Claim(), data
    odd = decode_claim(b'{"v": 1, "gen": 4, "topics": {"raw": [[0, NaN, 9], [1, -3, "x"], [2, 1e300, 3]]}}')
    # what it owns counts; nonsense rates do not, nor a since after the claim's own generation
    assert odd == Claim(4, {"raw": (0, 1, 2)}, {"raw": {}}, {"raw": {0: 4, 1: 4, 2: 3}})


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.integers() | st.text(max_size=5) | st.floats(),
            lambda c: (
                st.lists(c, max_size=4) | st.dictionaries(st.sampled_from(["v", "gen", "topics", "raw"]), c, max_size=4)
            ),
        ).map(lambda d: json.dumps({"v": 1, "topics": {"raw": d}}).encode()),
    )
)
def test_no_user_data_makes_the_leader_fail(data: bytes) -> None:
    claim = decode_claim(data)
    assert isinstance(claim, Claim)
    assert all(type(p) is int and p >= 0 for ps in claim.owned.values() for p in ps)


def test_a_partition_two_members_claim_goes_to_the_later_generation_or_to_nobody() -> None:
    claims = {
        "a": Claim(5, {"raw": (0, 1)}),
        "b": Claim(6, {"raw": (1, 2)}),  # holds 1 since generation 6: a's claim is stale
        "c": Claim(6, {"raw": (2,), "other": (9,)}),  # 2 claimed by b and c in one generation: nobody's
    }
    assert resolve(claims, "raw") == {"a": [0], "b": [1]}
    assert resolve(claims, "other") == {"c": [9]}


def _member(member_id: str, user_data: bytes | None, topics: tuple[str, ...] = ("raw",)) -> SimpleNamespace:
    return SimpleNamespace(member_id=member_id, metadata=ConsumerProtocolSubscription(0, list(topics), user_data))


def _measured(figures: dict[int, float]) -> PartitionLoads:
    loads = PartitionLoads()
    loads.sample("raw", 0.0, dict.fromkeys(figures, 0))
    loads.sample("raw", 10.0, {p: int(n) for p, n in figures.items()})
    return loads


def test_kafka_python_hook_assigns_each_member_its_share() -> None:
    assignor = LoadAssignor(_measured({0: 268.0, 1: 203.0, 2: 236.0, 3: 293.0}))
    cluster = SimpleNamespace(partitions_for_topic=lambda t: {0, 1, 2, 3} if t == "raw" else None)
    got = assignor.assign(cluster, [_member("m1", b""), _member("m2", b"")])
    parts = {m: dict(a.assigned_partitions)["raw"] for m, a in got.items()}
    assert sorted(p for ps in parts.values() for p in ps) == [0, 1, 2, 3]
    loads = {0: 268.0, 1: 203.0, 2: 236.0, 3: 293.0}
    assert sorted(sum(loads[p] for p in ps) for ps in parts.values()) == [496.0, 504.0]
    assert assignor.metadata(["raw"]).topics == ["raw"]


def test_the_hook_keeps_what_members_report_and_survives_garbage() -> None:
    """Each member reports in its subscription what it got last (on_assignment -> metadata): the
    survivor of a restart keeps its partitions; a member sending garbage owns nothing, and the leader
    assigns on."""
    loads = _measured({0: 268.0, 1: 203.0, 2: 236.0, 3: 293.0})
    cluster = SimpleNamespace(partitions_for_topic=lambda t: {0, 1, 2, 3} if t == "raw" else None)
    survivor = LoadAssignor(loads)
    assert decode_claim(survivor.metadata(["raw"]).user_data) == Claim(-1, {}, {})  # owns nothing yet
    survivor.on_assignment(ConsumerProtocolAssignment(0, [("raw", [0, 2])], b""), 12)
    loads.observe("raw", 0, 10, 1000)
    report = survivor.metadata({"raw"})
    assert decode_claim(report.user_data) == Claim(12, {"raw": (0, 2)}, {"raw": {0: 100.0}}, {"raw": {0: 12, 2: 12}})
    for newcomer in (b"", b"garbage", Claim(3, {"raw": (0, 1, 2, 3)}).encode()):  # a stale claim loses
        got = LoadAssignor(PartitionLoads()).assign(
            cluster, [_member("survivor", report.user_data), _member("restarted", newcomer)]
        )
        assert dict(got["survivor"].assigned_partitions)["raw"] == [0, 2]
        assert dict(got["restarted"].assigned_partitions)["raw"] == [1, 3]
    # lines per record a member reports are learnt for the topic's partitions only
    leader = LoadAssignor(PartitionLoads())
    forged = Claim(1, {"raw": (0, 7, 9999)}, {"raw": {0: 5.0, 7: 9.0, 9999: 9.0}}).encode()
    leader.assign(cluster, [_member("m", forged)])
    assert leader.loads.ratios("raw", range(10_000)) == {0: 5.0}


def test_assignment_setting_is_checked_at_start() -> None:
    import pytest

    from pipeline.config import ConfigError, load_config
    from pipeline.detector_config import DetectorConfig

    assert load_config(DetectorConfig, "config/detector.yaml", env={}).validate().partition_assignment == "load"
    env = {"SOCPIPE_PARTITION_ASSIGNMENT": "sticky"}
    with pytest.raises(ConfigError, match="^partition_assignment: 'load' or 'range'"):
        load_config(DetectorConfig, "config/detector.yaml", env=env).validate()


def test_after_a_restart_the_survivor_keeps_its_own_partitions_not_those_it_took_meanwhile() -> None:
    """A worker restarts: it leaves (the survivor takes all four), then joins again (the survivor gives
    two back). It gives back the two it took at the leave, as it has held its own longer; each member
    learns in on_assignment since when it holds what."""
    cluster = SimpleNamespace(partitions_for_topic=lambda t: {0, 1, 2, 3} if t == "raw" else None)
    for own in ([2, 3], [0, 1], [0, 3]):
        survivor = LoadAssignor(PartitionLoads())
        survivor.on_assignment(ConsumerProtocolAssignment(0, [("raw", own)], b""), 3)
        survivor.on_assignment(ConsumerProtocolAssignment(0, [("raw", own)], b""), 4)
        survivor.on_assignment(ConsumerProtocolAssignment(0, [("raw", [0, 1, 2, 3])], b""), 5)  # the other left
        assert survivor.since == {"raw": {p: 3 if p in own else 5 for p in range(4)}}
        leader = LoadAssignor(PartitionLoads())  # the restarted one may lead: it only reads the claims
        got = leader.assign(cluster, [_member("back", b""), _member("survivor", survivor.metadata(["raw"]).user_data)])
        assert dict(got["survivor"].assigned_partitions)["raw"] == own
    # a generation skipped (evicted meanwhile, or another assignor decided): seniority starts again
    survivor.on_assignment(ConsumerProtocolAssignment(0, [("raw", [0, 3])], b""), 9)
    assert survivor.since == {"raw": {0: 9, 3: 9}}


def test_a_huge_integer_rate_owns_its_partitions_but_does_not_crash_the_leader() -> None:
    # JSON integers are unbounded: math.isfinite(10**400) raised OverflowError in the leader's assign
    data = json.dumps({"v": 1, "gen": 3, "topics": {"raw": [[0, 10**400, 2], [1, -(10**400), 3]]}}).encode()
    assert decode_claim(data) == Claim(3, {"raw": (0, 1)}, {"raw": {}}, {"raw": {0: 2, 1: 3}})


def test_a_member_reporting_tiny_rates_for_all_it_claims_does_not_keep_every_partition() -> None:
    """The bound's float slack was 1e-9 in absolute terms (max(1.0, fair)): with loads far below 1 (rates
    near 0 reported in a claim, or decayed by batches of quarantined records) it exceeded every weight,
    and the member claiming all partitions kept them all, the others getting none."""
    cluster = SimpleNamespace(partitions_for_topic=lambda t: {0, 1, 2, 3} if t == "raw" else None)
    greedy = json.dumps({"v": 1, "gen": 99, "topics": {"raw": [[p, 1e-12, 99] for p in range(4)]}}).encode()
    got = LoadAssignor(_measured({0: 268.0, 1: 203.0, 2: 236.0, 3: 293.0})).assign(
        cluster, [_member("greedy", greedy), _member("honest", b"")]
    )
    parts = {m: dict(a.assigned_partitions)["raw"] for m, a in got.items()}
    assert sorted(len(ps) for ps in parts.values()) == [2, 2], parts
    assert balance([0, 1], ["a", "b"], {0: 1e-12, 1: 1e-12}, {"a": [0, 1]}) == {"a": [0], "b": [1]}
    # subnormal loads (a rate decayed by thousands of all-quarantined batches) weigh as nothing measured
    assert balance([0, 1], ["a", "b"], {1: 5e-324}, {"a": [0, 1]}) == {"a": [0], "b": [1]}


def test_lines_per_record_are_learnt_only_from_the_partitions_owner() -> None:
    """A member's figures count for the partitions it owns, not for what it claims: a stale claim
    (older generation) or a contested one (two members, one generation: nobody owns it) teaches the
    leader nothing, and cannot overwrite what the leader measured itself or what the owner reported."""
    cluster = SimpleNamespace(partitions_for_topic=lambda t: {0, 1, 2, 3} if t == "raw" else None)
    loads = _measured({0: 100.0, 1: 100.0, 2: 100.0, 3: 100.0})
    leader = LoadAssignor(loads)
    leader.on_assignment(ConsumerProtocolAssignment(0, [("raw", [0])], b""), 8)
    loads.observe("raw", 0, 10, 100)  # the leader's own measure of its partition 0: 10 lines per record
    mine = leader.metadata(["raw"]).user_data
    honest = Claim(8, {"raw": (1, 2)}, {"raw": {1: 3.0, 2: 4.0}}).encode()
    stale = Claim(7, {"raw": (0, 1)}, {"raw": {0: 90_000.0, 1: 90_000.0}}).encode()  # held them before
    contested = Claim(8, {"raw": (2, 3)}, {"raw": {2: 0.001, 3: 50_000.0}}).encode()  # 2 is honest's too
    members = [_member("leader", mine), _member("honest", honest), _member("stale", stale), _member("liar", contested)]
    leader.assign(cluster, members)
    assert loads.ratios("raw", range(4)) == {0: 10.0, 1: 3.0, 3: 50_000.0}
    # 3 is the liar's alone (nobody else claims it): its figure counts, within the bounds below


def test_absurd_lines_per_record_and_forged_generations_are_refused() -> None:
    """No agent puts more than MAX_BATCH_LINES lines in a record: a figure above is unknown (the
    partition weighs the average), as are 0, negatives and non-finite ones. A generation past int32
    (Kafka's own type) claimed every partition from its real owners: such a claim owns nothing."""
    top = float(MAX_BATCH_LINES)
    rows = [[0, top, 5], [1, top + 1, 5], [2, 1e6, 5], [3, 0, 5], [4, -1.0, 5], [5, 0.5, 5]]
    claim = decode_claim(json.dumps({"v": 1, "gen": 5, "topics": {"raw": rows}}).encode())
    assert claim.lines_per_record == {"raw": {0: top, 5: 0.5}}
    cluster = SimpleNamespace(partitions_for_topic=lambda t: {0, 1, 2, 3} if t == "raw" else None)
    for gen in (2**31, 10**12, -2):
        forged = json.dumps({"v": 1, "gen": gen, "topics": {"raw": [[p, 1.0, 0] for p in range(4)]}}).encode()
        assert decode_claim(forged) == Claim()
        owner = Claim(40, {"raw": (0, 1)}, {}, {"raw": {0: 30, 1: 30}}).encode()
        got = LoadAssignor(PartitionLoads()).assign(cluster, [_member("owner", owner), _member("forger", forged)])
        assert dict(got["owner"].assigned_partitions)["raw"] == [0, 1]
    assert decode_claim(Claim(2**31 - 1, {"raw": (0,)}).encode()).owned == {"raw": (0,)}


def _parts(got: dict[str, Any], member: str) -> list[int]:
    return list(dict(got[member].assigned_partitions).get("raw", []))


def test_a_claim_of_a_generation_the_coordinator_never_gave_owns_nothing() -> None:
    """Forged user_data with an in-range generation above the owner's (a member may not have been given
    generation 30 while the group forms generation 9) won every partition it named. The leader reads
    the generation the coordinator gave the join (`forming`): a claim of it or later owns nothing and
    teaches nothing; the real owners keep their partitions."""
    cluster = SimpleNamespace(partitions_for_topic=lambda t: {0, 1, 2, 3} if t == "raw" else None)
    owner = Claim(8, {"raw": (0, 1)}, {"raw": {0: 10.0, 1: 10.0}}, {"raw": {0: 2, 1: 2}})
    other = Claim(8, {"raw": (2, 3)}, {"raw": {2: 10.0, 3: 10.0}}, {"raw": {2: 2, 3: 2}})
    for gen in (9, 30, 2**31 - 1):
        forged = Claim(gen, {"raw": (0, 1)}, {"raw": {0: 90_000.0, 1: 90_000.0}}, {"raw": {0: -1, 1: -1}})
        claims = {"owner": owner, "other": other, "forger": forged}
        checked, refused = check_claims(claims, 9, None)
        assert checked == {**claims, "forger": Claim()} and set(refused) == {"forger"}
        assert resolve(checked, "raw") == {"owner": [0, 1], "other": [2, 3]}
        for forming in (lambda: 9, None):  # None: the leader as it was before this check
            loads = _measured({0: 100.0, 1: 100.0, 2: 100.0, 3: 100.0})
            got = LoadAssignor(loads, forming=forming).assign(
                cluster, [_member(m, c.encode()) for m, c in claims.items()]
            )
            if forming is not None:
                assert {m: _parts(got, m) for m in claims} == {"owner": [0, 1], "other": [2, 3], "forger": []}
                assert loads.ratios("raw", [0, 1]) == {0: 10.0, 1: 10.0}  # the owner's figures
            else:  # the defect: the forger owned 0 and 1, kept what it could, and its figures weighed them
                assert _parts(got, "forger") and set(_parts(got, "forger")) <= {0, 1}
                assert loads.ratios("raw", [0, 1]) == {0: 90_000.0, 1: 90_000.0}


def test_a_claim_of_the_last_generation_keeps_only_what_this_leader_gave_the_member() -> None:
    """A forged claim of the very generation the owner holds tied with it (nobody owned the partition).
    A leader that made the last assignment itself remembers what it gave each member, and a claim of
    that generation keeps only that; an honest member's claim is unchanged."""
    cluster = SimpleNamespace(partitions_for_topic=lambda t: {0, 1, 2, 3} if t == "raw" else None)
    forming = [5]
    leader = LoadAssignor(PartitionLoads(), forming=lambda: forming[0])
    first = leader.assign(cluster, [_member("leader", b""), _member("a", b""), _member("b", b"")])
    leader.on_assignment(first["leader"], 5)  # the join synced: generation 5 as the leader assigned it
    gave = {m: _parts(first, m) for m in ("leader", "a", "b")}
    assert sorted(p for ps in gave.values() for p in ps) == [0, 1, 2, 3]
    a_claim = Claim(5, {"raw": tuple(gave["a"])}, {"raw": dict.fromkeys(gave["a"], 7.0)})
    # b claims everything (its own and a's, with heavy rates for a's), in the generation both hold
    b_claim = Claim(5, {"raw": (0, 1, 2, 3)}, {"raw": dict.fromkeys(range(4), 90_000.0)})
    forming[0] = 6
    checked, refused = check_claims(
        {"leader": decode_claim(leader.metadata(["raw"]).user_data), "a": a_claim, "b": b_claim},
        6,
        leader._made,
    )
    assert checked["a"] == a_claim and checked["b"].owned == {"raw": tuple(gave["b"])}
    assert set(checked["b"].lines_per_record["raw"]) == set(gave["b"]) and set(refused) == {"b"}
    assert resolve(checked, "raw") == {m: ps for m, ps in gave.items() if ps}  # every partition its owner's
    second = leader.assign(
        cluster,
        [
            _member("leader", leader.metadata(["raw"]).user_data),
            _member("a", a_claim.encode()),
            _member("b", b_claim.encode()),
        ],
    )
    assert {m: _parts(second, m) for m in gave} == gave  # nothing moved
    # the check needs the generation right before the one forming: one this leader did not make is
    # not checked (a forged claim can then only tie with the owner: the partition is nobody's)
    assert check_claims({"b": b_claim}, 7, leader._made) == ({"b": b_claim}, {})
    leader.on_assignment(second["leader"], 9)  # a sync of another generation than the one assigned
    assert leader._made is None
