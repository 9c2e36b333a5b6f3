"""A correlation group's window: the entries it holds and the metric of a window of them.

`Group` keeps one (correlation rule, group key)'s entries sorted by event time, with a running
aggregate for value_count / value_sum / temporal windows (`running`: O(1) per entry entering or
leaving); `evaluate` computes any window's metric from scratch. Each returns the metric only when the
rule's condition holds (`check`). Which windows are evaluated, and when, is `CorrelationState`'s
(detectors/sigma/correlation.py). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from detectors.sigma.model import CorrelationRule

_CMP = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
}
# types whose metric `running` keeps up to date as entries enter and leave a window
INCREMENTAL = ("value_count", "value_sum", "temporal")


@dataclass
class Entry:
    ts: float
    seq: int
    rule: str  # id of the matched input rule
    value: object  # field value(s) for value_* types
    agency: str | None
    evidence: list[Any]  # events (base rule) or evidence of an inner correlation


@dataclass
class Group:
    entries: list[Any] = field(default_factory=list)  # sorted by (ts, seq)
    times: list[Any] = field(default_factory=list)  # entries' ts, kept in step for bisect
    consumed_until: float = float("-inf")
    episode_last: float | None = None  # latest entry time of the group's current episode (after a fire)
    # running aggregate over entries[agg_lo:agg_hi] for in-order arrivals (None = rebuild)
    agg: dict[Any, int] | None = None
    agg_sum: float = 0.0
    agg_lo: int = 0
    agg_hi: int = 0
    # identities of the inputs taken (id -> event time), kept past a fire: a redelivered input is
    # counted once. Pruned behind the cutoff (older inputs are refused as late anyway), bounded.
    ids: dict[str, float] = field(default_factory=dict)
    # the input rules this group has taken entries of while it lives (never shrinks): a superset of
    # those in its windows, so a temporal_ordered rule whose sequence it cannot complete skips the scan
    inputs: set[str] = field(default_factory=set)

    def keep(self, entries: list[Any]) -> None:
        self.entries = entries
        self.times = [e.ts for e in entries]
        self.agg = None
        self.inputs.update(e.rule for e in entries)

    def drop_prefix(self, n: int) -> None:
        """Forget the first `n` entries; the running aggregate survives when it does not cover them."""
        if n <= 0:
            return
        del self.entries[:n]
        del self.times[:n]
        if self.agg is not None and self.agg_lo >= n:
            self.agg_lo -= n
            self.agg_hi -= n
        else:
            self.agg = None

    def inserted(self, pos: int, key: Any, value: Any) -> None:
        """Keep the running aggregate's indices right after an entry was inserted at `pos`."""
        if self.agg is None:
            return
        if pos < self.agg_lo:
            self.agg_lo += 1
            self.agg_hi += 1
        elif pos < self.agg_hi:
            if key is not None:
                self.agg[key] = self.agg.get(key, 0) + 1
            if isinstance(value, (int, float)):
                self.agg_sum += value
            self.agg_hi += 1


def is_monotonic(rule: CorrelationRule) -> bool:
    if rule.type in ("value_avg", "value_percentile"):
        return False
    return all(op in ("gt", "gte") for op in rule.condition)


def check(rule: CorrelationRule, metric: float) -> bool:
    return all(_CMP[op](metric, float(v)) for op, v in rule.condition.items())


def evaluate(rule: CorrelationRule, entries: list[Any]) -> dict[str, Any] | None:
    """Metric of a window if it satisfies the rule, else None."""
    t = rule.type
    if t == "event_count":
        n = len(entries)
        return {"count": n} if check(rule, n) else None
    if t == "value_count":
        distinct = {e.value for e in entries if e.value is not None}
        return (
            {"value_count": len(distinct), "values": sorted(map(str, distinct))[:50]}
            if check(rule, len(distinct))
            else None
        )
    if t in ("value_sum", "value_avg"):
        nums = [e.value for e in entries if isinstance(e.value, (int, float))]
        if not nums:
            return None
        total = sum(nums)
        metric = total if t == "value_sum" else total / len(nums)
        return {t.split("_")[1]: metric} if check(rule, metric) else None
    if t == "value_percentile":
        counts: dict[Any, Any] = {}
        for e in entries:
            if e.value is not None:
                counts[e.value] = counts.get(e.value, 0) + 1
        total = sum(counts.values())
        hits = sorted(str(v) for v, c in counts.items() if check(rule, 100.0 * c / total)) if total else []
        return {"percentile_values": hits[:50], "events": total} if hits else None
    if t == "temporal":
        seen = {e.rule for e in entries}
        n = sum(1 for r in rule.rules if r in seen)
        ok = check(rule, n) if rule.condition else n == len(rule.rules)
        return {"rules_matched": n} if ok else None
    if t == "temporal_ordered":
        step = 0
        for e in entries:  # greedy earliest subsequence in rule order
            if step < len(rule.rules) and e.rule == rule.rules[step]:
                step += 1
        ok = check(rule, step) if rule.condition else step == len(rule.rules)
        return {"rules_in_order": step} if ok else None
    return None


def ordered_reachable(rule: CorrelationRule, inputs: set[str]) -> bool:
    """Whether a window of entries of `inputs` only can satisfy a monotonic temporal_ordered rule:
    `evaluate`'s greedy walk stops at the first rule of the sequence with no entry, so its step is at
    most that rule's position (gt/gte conditions hold at no lower step when they fail at it)."""
    step = 0
    for r in rule.rules:
        if r not in inputs:
            break
        step += 1
    return check(rule, step) if rule.condition else step == len(rule.rules)


def _metric(rule: CorrelationRule, counts: dict[str, Any], total: float, nonempty: bool) -> dict[str, Any] | None:
    """value_count / value_sum / temporal metric from a window's running aggregate, if it satisfies."""
    if rule.type == "value_count":
        n = len(counts)
        return {"value_count": n, "values": sorted(map(str, counts))[:50]} if check(rule, n) else None
    if rule.type == "value_sum":
        return {"sum": total} if nonempty and check(rule, total) else None
    n = sum(1 for r in rule.rules if r in counts)
    ok = check(rule, n) if rule.condition else n == len(rule.rules)
    return {"rules_matched": n} if ok else None


def running(rule: CorrelationRule, g: Group, lo: int, hi: int) -> dict[str, Any] | None:
    """Metric of entries[lo:hi], from the group's running aggregate moved to that window: each
    entry entering or leaving costs O(1), so in-order arrivals cost O(1) amortised and a late one
    the entries between the aggregate's window and its own."""
    by_rule = rule.type == "temporal"
    entries = g.entries
    if g.agg is None or g.agg_hi <= lo or g.agg_lo >= hi:  # nothing to reuse: start empty at lo
        g.agg, g.agg_sum, g.agg_lo, g.agg_hi = {}, 0.0, lo, lo
    agg = g.agg

    def enter(e: Entry) -> None:
        k = e.rule if by_rule else e.value
        if k is not None:
            agg[k] = agg.get(k, 0) + 1
        if isinstance(e.value, (int, float)):
            g.agg_sum += e.value

    def leave(e: Entry) -> None:
        k = e.rule if by_rule else e.value
        if k is not None:
            agg[k] -= 1
            if not agg[k]:
                del agg[k]
        if isinstance(e.value, (int, float)):
            g.agg_sum -= e.value

    while g.agg_lo > lo:
        g.agg_lo -= 1
        enter(entries[g.agg_lo])
    while g.agg_lo < lo:
        leave(entries[g.agg_lo])
        g.agg_lo += 1
    while g.agg_hi < hi:
        enter(entries[g.agg_hi])
        g.agg_hi += 1
    while g.agg_hi > hi:
        g.agg_hi -= 1
        leave(entries[g.agg_hi])
    return _metric(rule, agg, g.agg_sum, hi > lo)
