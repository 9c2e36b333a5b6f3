"""The sticky split by load (pipeline.worker.balance): properties over generated groups and loads."""

from __future__ import annotations

import itertools
import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.worker.balance import TOLERANCE, balance, bound, moved, weights

NAMES = [f"w{i}" for i in range(6)]


@st.composite
def groups(draw, equal: bool = False):
    """Partitions, members, loads (skewed: a few heavy logs; or all the same) and a previous split."""
    n = draw(st.integers(1, 16))
    m = draw(st.integers(1, 5))
    parts = list(range(n))
    members = NAMES[:m]
    if equal:
        loads = dict.fromkeys(parts, 100.0)
    else:
        loads = {p: draw(st.floats(0, 10_000, allow_nan=False)) for p in parts}
        if draw(st.booleans()):  # partitions the leader has no figure for (added since)
            for p in draw(st.sets(st.sampled_from(parts), max_size=n)):
                loads.pop(p, None)
    prev = balance(parts, members, loads)
    return parts, members, loads, prev


def _load(split: dict[str, list[int]], parts, loads) -> dict[str, float]:
    w = weights(parts, loads)
    return {m: sum(w[p] for p in ps) for m, ps in split.items()}


def _exactly_once(split: dict[str, list[int]], parts) -> None:
    got = sorted(p for ps in split.values() for p in ps)
    assert got == sorted(parts), "every partition exactly once"


@settings(max_examples=300, deadline=None)
@given(groups(), st.data())
def test_every_partition_exactly_once_whatever_the_members_claim(group, data) -> None:
    """Claims may be stale or forged: partitions of no topic here, two members claiming one, members
    that left. Still every partition exactly once, and within the bound."""
    parts, members, loads, _ = group
    owned = {
        m: data.draw(st.lists(st.integers(-3, 20), max_size=20)) for m in [*members, "gone"] if data.draw(st.booleans())
    }
    out = balance(parts, members, loads, owned)
    _exactly_once(out, parts)
    assert set(out) == set(members)
    assert max(_load(out, parts, loads).values()) <= bound(parts, members, loads) * (1 + 1e-9)


@settings(max_examples=300, deadline=None)
@given(groups())
def test_the_stated_bound_holds_and_is_close_to_the_greedy_split(group) -> None:
    """Nobody carries more than B = max((1 + 5%) x fair share, the busiest of the greedy split from
    scratch); and B is never above the greedy bound fair + the heaviest partition."""
    parts, members, loads, prev = group
    w = weights(parts, loads)
    fair = sum(w.values()) / len(members)
    b = bound(parts, members, loads)
    assert b >= (1 + TOLERANCE) * fair * (1 - 1e-12)
    assert b <= max((1 + TOLERANCE) * fair, fair + max(w.values())) * (1 + 1e-9)
    for out in (prev, balance(parts, members, loads, prev)):
        assert max(_load(out, parts, loads).values()) <= b * (1 + 1e-9)


@settings(max_examples=300, deadline=None)
@given(groups())
def test_a_second_balance_with_the_same_members_and_loads_moves_nothing(group) -> None:
    parts, members, loads, prev = group
    assert balance(parts, members, loads, prev) == prev


@settings(max_examples=300, deadline=None)
@given(groups(equal=True), st.data())
def test_when_a_member_leaves_only_its_partitions_move(group, data) -> None:
    """Equal loads (or nothing measured): always. Skewed loads: below."""
    parts, members, loads, prev = group
    if len(members) < 2:
        return
    gone = data.draw(st.sampled_from(members))
    rest = [m for m in members if m != gone]
    measured: dict[int, float]
    for measured in (loads, {}):
        before = balance(parts, members, measured, prev)
        after = balance(parts, rest, measured, before)
        _exactly_once(after, parts)
        for m in rest:
            assert set(before[m]) <= set(after[m]), "a survivor lost a partition"


def test_when_a_member_leaves_skewed_loads_move_only_its_partitions_whenever_that_fits() -> None:
    """With skewed loads, handing only the leaver's partitions out often cannot stay within the bound
    (the survivors are full and a heavy partition is left; Pareto loads, a few very heavy logs: about
    3 in 10 cases here): then survivors give up some too. Whenever some placement of the leaver's
    partitions alone fits (brute force), the split finds one in almost every case."""
    rng = random.Random(11)
    fits, found = 0, 0
    for _ in range(800):
        n, m = rng.randint(2, 12), rng.randint(2, 4)
        parts, members = list(range(n)), NAMES[:m]
        loads = {p: rng.paretovariate(1.2) * 100 for p in parts}
        before = balance(parts, members, loads)
        gone = rng.choice(members)
        rest = [x for x in members if x != gone]
        after = balance(parts, rest, loads, before)
        _exactly_once(after, parts)
        only_its = all(set(before[x]) <= set(after[x]) for x in rest)
        w, limit = weights(parts, loads), bound(parts, rest, loads) * (1 + 1e-9)
        held = {x: sum(w[p] for p in before[x]) for x in rest}
        orphans = before[gone]
        possible = any(
            all(held[x] + sum(w[p] for p, k in zip(orphans, pick, strict=True) if rest[k] == x) <= limit for x in rest)
            for pick in itertools.product(range(len(rest)), repeat=len(orphans))
        )
        assert possible or not only_its
        fits += possible
        found += only_its
    assert fits >= 400 and found >= 0.97 * fits, (fits, found)


@settings(max_examples=300, deadline=None)
@given(groups(equal=True), st.data())
def test_when_a_member_joins_equal_loads_move_exactly_the_minimum(group, data) -> None:
    """All partitions weigh the same: a member may hold floor(B) of them; each one above gives up only
    its surplus, and all of it goes to members below (here: the newcomer, or a member with room).
    Which ones it keeps (those held longest) does not change how many move."""
    parts, members, loads, prev = group
    joined = [*members, "new"]
    since = {p: data.draw(st.integers(0, 5)) for p in parts}
    measured: dict[int, float]
    for measured in (loads, {}):
        before = balance(parts, members, measured, prev)
        after = balance(parts, joined, measured, before, held_since=since)
        for m, ps in before.items():  # each member kept those it held longest
            gave = set(ps) - set(after[m])
            assert not gave or max(since[p] for p in set(ps) - gave) <= min(since[p] for p in gave)
        _exactly_once(after, parts)
        per = bound(parts, joined, measured) / weights(parts, measured)[parts[0]]
        cap = math.floor(per + 1e-9)
        minimum = sum(max(0, len(ps) - cap) for ps in before.values())
        assert len(moved(before, after)) == minimum
        assert max(len(ps) for ps in after.values()) <= cap


def _fewest_moves(parts, members, loads, before) -> int | None:
    """Brute force: the fewest partitions that must change owner for every member to be within B."""
    w, limit = weights(parts, loads), bound(parts, members, loads) * (1 + 1e-9)
    owner = {p: m for m, ps in before.items() for p in ps}
    best = None
    for pick in itertools.product(range(len(members)), repeat=len(parts)):
        load = [0.0] * len(members)
        for p, k in zip(parts, pick, strict=True):
            load[k] += w[p]
        if max(load) <= limit:
            n = sum(owner.get(p) != members[k] for p, k in zip(parts, pick, strict=True))
            best = n if best is None else min(best, n)
    return best


def test_when_a_member_joins_skewed_loads_move_close_to_the_fewest() -> None:
    """Skewed loads: the fewest moves is a search over all splits; the sticky split reaches it in
    almost every case and is never far off (brute force, up to 7 partitions and 4 members: 595 of
    600 exact, at most 3 more). Members
    already within the new bound give nothing up."""
    rng = random.Random(5)
    exact, worst, trials = 0, 0, 600
    for _ in range(trials):
        n, m = rng.randint(1, 7), rng.randint(1, 3)
        parts, members = list(range(n)), NAMES[:m]
        loads = {p: rng.paretovariate(1.2) * 100 for p in parts}
        before = balance(parts, members, loads)
        joined = [*members, "new"]
        after = balance(parts, joined, loads, before)
        got = len(moved(before, after))
        fewest = _fewest_moves(parts, joined, loads, before)
        assert fewest is not None and got >= fewest
        exact += got == fewest
        worst = max(worst, got - fewest)
        limit = bound(parts, joined, loads)
        load = _load(before, parts, loads)
        if not any(load[x] > limit for x in members):
            assert got == 0  # nobody above the bound: the newcomer waits for new load or a leaver
    assert exact >= 0.97 * trials and worst <= 3, (exact, worst)


def test_the_two_worker_scale_out_of_the_bench_keeps_its_even_split() -> None:
    """bench_pipeline: one worker holds the 4 partitions (268/203/236/293 lines per 1,000), a second
    joins: the first keeps two and the split is the best 2+2 (496/504), as without stickiness; the
    second leaves: the first takes its two back, nothing else moves."""
    loads = {0: 268.0, 1: 203.0, 2: 236.0, 3: 293.0}
    one = balance(range(4), ["a"], loads)
    two = balance(range(4), ["a", "b"], loads, one)
    assert sorted(sum(loads[p] for p in ps) for ps in two.values()) == [496.0, 504.0]
    assert len(moved(one, two)) == 2
    assert balance(range(4), ["a"], loads, two) == {"a": [0, 1, 2, 3]}
    # a split 56/44 (within greedy's reach from some other start) is beyond the 5% and is evened out
    lopsided = {"a": [0, 3], "b": [1, 2]}
    out = balance(range(4), ["a", "b"], loads, lopsided)
    assert sorted(sum(loads[p] for p in ps) for ps in out.values()) == [496.0, 504.0]
    assert len(moved(lopsided, out)) == 2


def test_a_drift_within_the_tolerance_moves_nothing_and_beyond_it_moves_the_least() -> None:
    """Twelve partitions, two workers 6/6 by number with equal loads; partition 0 grows 8% of a
    worker's share: nothing moves; grows to 40%: one light partition moves, not the grown one."""
    parts = list(range(12))
    before = balance(parts, ["a", "b"], dict.fromkeys(parts, 100.0))
    grown = before["a"][0]
    drift = {**dict.fromkeys(parts, 100.0), grown: 100.0 + 0.08 * 600}
    assert balance(parts, ["a", "b"], drift, before) == before
    heavy = {**dict.fromkeys(parts, 100.0), grown: 100.0 + 0.4 * 600}
    after = balance(parts, ["a", "b"], heavy, before)
    assert len(moved(before, after)) == 1 and grown in after["a"]


def test_after_a_restart_the_survivor_gives_back_what_it_took_not_its_own() -> None:
    """One heavy partition and three light ones, two workers: {2} and {0, 1, 3}. The second restarts:
    the survivor holds all four (2 since generation 3, the others since 5), then the second is back.
    Giving the heavy partition away would move one partition instead of three, but it is the
    survivor's own (state, warm caches): it keeps it and gives back exactly what it took."""
    loads = {0: 100.0, 1: 100.0, 2: 400.0, 3: 100.0}
    first = balance(range(4), ["a", "b"], loads)
    assert sorted(first.values()) == [[0, 1, 3], [2]]
    survivor = "a" if first["a"] == [2] else "b"
    alone = balance(range(4), [survivor], loads, {survivor: [2]})
    since = {0: 5, 1: 5, 2: 3, 3: 5}
    back = balance(range(4), [survivor, "new"], loads, alone, held_since=since)
    assert back == {survivor: [2], "new": [0, 1, 3]}
    # had it held them all equally long, the fewest would move: the heavy one
    same = balance(range(4), [survivor, "new"], loads, alone, held_since=dict.fromkeys(range(4), 3))
    assert same == {survivor: [0, 1, 3], "new": [2]}
