"""The pure split of a topic's partitions over a group's workers: by load, keeping what each one holds.

A worker's partitions carry state in memory (dedup sequences, correlation windows, suppression, open
episodes); moving one costs a snapshot restore and a pause. So `balance` is sticky, like Kafka's
cooperative-sticky assignor but by load instead of by count:

1. the *bound* `B = max((1 + TOLERANCE) * fair, busiest)`: `fair` is the total load over the members,
   `busiest` what the busiest member carries in the greedy split from scratch (heaviest partition
   first to the least-loaded member; within 4/3 of the best possible split). No member ever carries
   more than `B`: the tolerance lets a member keep a split a little off even (a load that drifted,
   one light partition too many) without churn, and is small enough that two workers still get
   <= 52.5% each when one partition is not heavier than that;
2. each member keeps of the partitions it owned those it has held longest first (after a restart the
   survivor gives back what it took over meanwhile, not its own), and of each such group as many as
   fit under `B` (the fewest move), heavy ones first (the least load moves);
3. the rest (a leaver's, new ones, a member's surplus) go heaviest first to the least-loaded member;
4. should that put anyone above `B` (one heavy orphan where the survivors are full), the same with
   each member keeping only up to `fair`, and failing that the greedy split from scratch.

Hence: every partition exactly once; nothing moves while members and loads stay (a split within `B`
keeps everything); a member that leaves moves only its partitions whenever they fit under `B`; when
one joins, only members above the new `B` give partitions up, and the fewest each can (with equal
loads exactly the minimum; with skewed ones the minimum in ~99% of random cases, tests/unit/
test_worker_balance.py). With nothing measured (a new group)
every partition weighs the same (and with no ownership either: contiguous ranges, like `range`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

IDLE_FLOOR = 0.05  # an idle partition weighs this share of the average, so idle ones spread too
TOLERANCE = 0.05  # a member may keep up to 5% above its fair share before anything moves
# loads (lines in the window) summing to less count as nothing measured: rates decayed towards 0 by
# batches of quarantined records, or reported near 0 in a claim, made subnormal weights that compare as
# 0, and an owner of all partitions kept them all
NOTHING_MEASURED = 1e-6

__all__ = ["IDLE_FLOOR", "TOLERANCE", "balance", "bound", "moved", "weights"]


def weights(partitions: Sequence[int], loads: Mapping[int, float]) -> dict[int, float]:
    """What each partition weighs: its load plus a small floor; one missing from `loads` (added since
    the leader measured) counts as average; nothing measured at all: 1.0 each."""
    total = sum(max(0.0, loads.get(p, 0.0)) for p in partitions)
    if total < NOTHING_MEASURED:
        return dict.fromkeys(partitions, 1.0)
    mean = total / len(partitions)
    return {p: (max(0.0, loads[p]) if p in loads else mean) + IDLE_FLOOR * mean for p in partitions}


def _fill(
    out: dict[str, list[int]], carried: dict[str, float], rest: Iterable[int], weight: Mapping[int, float]
) -> None:
    """Heaviest first, each to the member carrying least so far (ties: fewer partitions, then name)."""
    for p in sorted(rest, key=lambda p: (-weight[p], p)):
        m = min(out, key=lambda m: (carried[m], len(out[m]), m))
        out[m].append(p)
        carried[m] += weight[p]


def _greedy(parts: Sequence[int], names: Sequence[str], weight: Mapping[int, float]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {m: [] for m in names}
    _fill(out, dict.fromkeys(names, 0.0), parts, weight)
    return out


def _busiest(split: Mapping[str, Sequence[int]], weight: Mapping[int, float]) -> float:
    return max((sum(weight[p] for p in ps) for ps in split.values()), default=0.0)


def bound(
    partitions: Sequence[int], members: Sequence[str], loads: Mapping[int, float], tolerance: float = TOLERANCE
) -> float:
    """The most any member may carry (in `weights` units): see the module's docstring."""
    names, parts = sorted(set(members)), sorted(set(partitions))
    if not names or not parts:
        return 0.0
    weight = weights(parts, loads)
    fair = sum(weight.values()) / len(names)
    return max((1 + tolerance) * fair, _busiest(_greedy(parts, names, weight), weight))


def _most(owned: Sequence[int], weight: Mapping[int, float], cap: float) -> list[int]:
    """As many of `owned` as fit under `cap` (the lightest first tells how many: the fewest move), and
    of such sets a heavy one (the least load moves): taken heaviest first whenever the set can still
    be completed to that count with the lightest of the others."""
    light = sorted(owned, key=lambda p: (weight[p], p))
    count, carried = 0, 0.0
    for p in light:
        if carried + weight[p] > cap:
            break
        count, carried = count + 1, carried + weight[p]
    kept: list[int] = []
    carried = 0.0
    for p in sorted(owned, key=lambda p: (-weight[p], p)):
        if len(kept) == count:
            break
        need = count - len(kept) - 1  # still to take after p, from those not taken yet (lightest)
        rest = [weight[q] for q in light if q != p and q not in kept][:need]
        if carried + weight[p] + sum(rest) <= cap:
            kept.append(p)
            carried += weight[p]
    return kept


def _keep(owned: Sequence[int], weight: Mapping[int, float], cap: float, since: Mapping[int, int]) -> list[int]:
    """Of one member's partitions, those it keeps under `cap`: those it has held longest first (by
    `since`, the generation it has held each one since: after a restart the survivor gives back what
    it took over meanwhile, not its own), within each such group as many as fit, heavy ones first."""
    tiers: dict[int, list[int]] = {}
    for p in owned:
        tiers.setdefault(since.get(p, 0), []).append(p)
    kept: list[int] = []
    room = cap
    for _, ps in sorted(tiers.items()):
        got = _most(ps, weight, room)
        kept += got
        room -= sum(weight[p] for p in got)
    return kept


def _sticky(
    parts: Sequence[int],
    names: Sequence[str],
    weight: Mapping[int, float],
    owner: Mapping[int, str],
    keep_up_to: float,
    since: Mapping[int, int],
) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {m: [] for m in names}
    carried = dict.fromkeys(names, 0.0)
    by_member: dict[str, list[int]] = {}
    for p, m in owner.items():
        by_member.setdefault(m, []).append(p)
    kept: set[int] = set()
    for m, ps in by_member.items():
        for p in _keep(ps, weight, keep_up_to, since):
            out[m].append(p)
            carried[m] += weight[p]
            kept.add(p)
    _fill(out, carried, [p for p in parts if p not in kept], weight)
    return out


def balance(
    partitions: Sequence[int],
    members: Sequence[str],
    loads: Mapping[int, float],
    owned: Mapping[str, Iterable[int]] | None = None,
    tolerance: float = TOLERANCE,
    held_since: Mapping[int, int] | None = None,
) -> dict[str, list[int]]:
    """Partitions per member, every partition exactly once. `loads`: lines per partition lately (a
    partition missing from it counts as average). `owned`: what each member holds now (from its
    subscription); partitions of another topic, of no member here, or claimed by two members are
    nobody's. `held_since`: the generation since which its owner holds each partition (a member keeps
    those it has held longest: after a restart, the survivor gives back what it took meanwhile).
    Nothing owned and nothing measured: contiguous ranges, like `range`."""
    names, parts = sorted(set(members)), sorted(set(partitions))
    if not names:
        return {}
    claims: dict[int, set[str]] = {}
    for m, ps in (owned or {}).items():
        if m in names:
            for p in set(ps):
                claims.setdefault(p, set()).add(m)
    known = set(parts)
    owner = {p: next(iter(ms)) for p, ms in claims.items() if len(ms) == 1 and p in known}
    measured = sum(max(0.0, loads.get(p, 0.0)) for p in parts) >= NOTHING_MEASURED
    if not owner and not measured:
        per, extra = divmod(len(parts), len(names))
        out, start = {}, 0
        for i, m in enumerate(names):
            n = per + (1 if i < extra else 0)
            out[m], start = parts[start : start + n], start + n
        return out
    weight = weights(parts, loads)
    fresh = _greedy(parts, names, weight)
    fair = sum(weight.values()) / len(names)
    limit = max((1 + tolerance) * fair, _busiest(fresh, weight))
    # float sums in another order must not read as over the bound: relative, since loads far below 1
    # (tiny rates) made an absolute 1e-9 exceed every weight, and an owner kept all it claimed
    slack = 1e-9 * fair
    for keep_up_to in (limit, fair):
        split = _sticky(parts, names, weight, owner, keep_up_to + slack, held_since or {})
        if _busiest(split, weight) <= limit + slack:
            return {m: sorted(ps) for m, ps in split.items()}
    return {m: sorted(ps) for m, ps in fresh.items()}


def moved(before: Mapping[str, Iterable[int]], after: Mapping[str, Iterable[int]]) -> set[int]:
    """Partitions whose owner changed (one nobody owned before does not count)."""
    was = {p: m for m, ps in before.items() for p in ps}
    return {p for m, ps in after.items() for p in ps if p in was and was[p] != m}
