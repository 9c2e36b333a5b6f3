"""Correlation state on event time: sliding windows, watermark, allowed lateness, snapshots.

Per (correlation rule, group key) a buffer of entries sorted by event time. A window is
anchored at an entry: [anchor, anchor + timespan].

* Monotonic conditions (event_count / value_count / value_sum / temporal / temporal_ordered with
  only gt/gte, or temporal without condition) fire as soon as a window containing the new entry
  satisfies them (no waiting for the window to close).
* Other conditions (lt/lte/eq/neq, value_avg, value_percentile) are evaluated once, when the
  watermark minus the allowed lateness passes the window end; the anchor then slides.

After a window fires, its events are consumed (`consumed_until` = window end) and the group is in
an episode: for monotonic conditions every later entry that arrives within one timespan of the
episode's latest entry is reported at once as a *continuation* (a Fired with one entry,
`continuation=True`) instead of silently counting towards nothing, so the alert layer can keep the
open alert growing (detectors/alerts/episodes.py). A gap longer than the timespan ends the episode;
the condition must then be met again. Entries older
than `watermark - lateness` are refused (counted as `late_dropped`), so a window that was
evaluated is never evaluated again. All state is plain data and round-trips through JSON.

value_percentile is read as "a value of `field` makes up a share (percent) of the group's
events that satisfies the condition" (e.g. lte 1: a process name seen in <= 1% of the events).

A group's entries and the metric of a window of them: detectors/sigma/correlation_window.py.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from itertools import islice
from typing import Any

from detectors.sigma.correlation_window import (
    INCREMENTAL,
    Entry,
    Group,
    check,
    evaluate,
    is_monotonic,
    ordered_reachable,
    running,
)
from detectors.sigma.model import CorrelationRule

MAX_ENTRIES_PER_GROUP = 5000
MAX_IDS_PER_GROUP = 2 * MAX_ENTRIES_PER_GROUP  # input ids remembered per group (absorbed ones too)


@dataclass
class Fired:
    """A window that satisfied its correlation (the engine turns it into a Detection)."""

    rule: CorrelationRule
    group: tuple[Any, ...]
    anchor: float
    entries: list[Any]
    metric: dict[str, Any]
    continuation: bool = False  # one more entry of an episode that already fired


class CorrelationState:
    """All windows of all correlation rules held by one worker."""

    def __init__(self, rules: list[Any], allowed_lateness: float = 60.0):
        self.rules = {r.id: r for r in rules}
        self._monotonic = {r.id: is_monotonic(r) for r in rules}  # per input: a dict probe, not a walk
        self.lateness = float(allowed_lateness)
        self.groups: dict[Any, Any] = {}  # (rule id, group tuple) -> Group
        self.watermark = float("-inf")
        self.seq = 0
        self.stats = {"late_dropped": 0, "absorbed": 0, "evicted": 0, "continued": 0, "duplicate_inputs": 0}

    @property
    def cutoff(self) -> float:
        return self.watermark - self.lateness

    def add(
        self,
        rule: CorrelationRule,
        group: tuple[Any, ...],
        ts: float,
        input_rule: str,
        value: Any,
        agency: Any,
        evidence: list[Any],
        input_id: str = "",
    ) -> list[Any]:
        """Feed one input; `input_id` ("" = none) is its identity: an id this group has taken is
        refused (a redelivery after a crash or rebalance), before it could count or continue."""
        if ts < self.watermark - self.lateness:  # self.cutoff, without the property call
            self.stats["late_dropped"] += 1
            return []
        key = (rule.id, group)
        g = self.groups.get(key)
        if g is None:
            g = self.groups[key] = Group()
        if input_id:
            ids = g.ids
            if input_id in ids:
                self.stats["duplicate_inputs"] += 1
                return []
            ids[input_id] = ts
            if len(ids) > MAX_IDS_PER_GROUP:
                for old in list(islice(ids, MAX_IDS_PER_GROUP // 10)):  # oldest taken first, in chunks
                    del ids[old]
        monotonic = self._monotonic.get(rule.id)
        if monotonic is None:  # a rule this state was not built with
            monotonic = is_monotonic(rule)
        if monotonic and g.episode_last is not None and ts - g.episode_last <= rule.timespan:
            self.seq += 1
            self.stats["continued"] += 1
            g.episode_last = max(g.episode_last, ts)
            g.consumed_until = max(g.consumed_until, ts)
            return [Fired(rule, group, ts, [Entry(ts, self.seq, input_rule, value, agency, evidence)], {}, True)]
        if ts <= g.consumed_until:
            self.stats["absorbed"] += 1
            return []
        g.episode_last = None
        self.seq += 1
        entry = Entry(ts, self.seq, input_rule, value, agency, evidence)
        pos = bisect.bisect_right(g.times, ts)  # equal times keep arrival (seq) order
        g.entries.insert(pos, entry)
        g.times.insert(pos, ts)
        g.inputs.add(input_rule)
        if pos != len(g.entries) - 1:
            g.inserted(pos, input_rule if rule.type == "temporal" else value, value)
        if len(g.entries) > MAX_ENTRIES_PER_GROUP:
            drop = MAX_ENTRIES_PER_GROUP // 10  # in chunks: eviction stays O(1) amortised
            g.drop_prefix(drop)
            self.stats["evicted"] += drop
            pos -= drop
            if pos < 0:
                return []
        if not monotonic:
            return []
        return self._fire_containing(rule, group, g, ts, in_order=pos == len(g.entries) - 1)

    def _fire_containing(self, rule: Any, group: Any, g: Group, ts: float, in_order: bool) -> list[Any]:
        if rule.type == "temporal_ordered" and not ordered_reachable(rule, g.inputs):
            return []  # no window can: without this, every input scans its window (O(window) each)
        times = g.times
        span = rule.timespan
        lo = bisect.bisect_left(times, ts - span)
        if in_order:
            # the earliest anchor's window holds every later anchor's entries, and the metrics of
            # monotonic conditions only grow with more entries - one check suffices
            if rule.type == "event_count":
                n = len(times) - lo
                return (
                    [self._consume(rule, group, g, times[lo], g.entries[lo:], {"count": n})] if check(rule, n) else []
                )
            if rule.type in INCREMENTAL:
                metric = running(rule, g, lo, len(times))
                return [self._consume(rule, group, g, times[lo], g.entries[lo:], metric)] if metric is not None else []
        # Out of order: the windows holding the new entry are anchored in [ts - span, ts]. Only those
        # reaching further than the one before can newly satisfy a monotonic condition (the others
        # are nested in it), so the anchors visited jump from one entry after `ts` to the next: a
        # late entry costs the entries that arrived after it, not the window's square.
        hi = bisect.bisect_right(times, ts)
        i = lo
        while i < hi:
            j = bisect.bisect_right(times, times[i] + span)
            if rule.type == "event_count":
                metric = {"count": j - i} if check(rule, j - i) else None
            elif rule.type in INCREMENTAL:
                metric = running(rule, g, i, j)
            else:
                metric = evaluate(rule, g.entries[i:j])
            if metric is not None:
                return [self._consume(rule, group, g, times[i], g.entries[i:j], metric)]
            if j >= len(times):
                break
            i = max(i + 1, bisect.bisect_left(times, times[j] - span))
        return []

    def _consume(self, rule: Any, group: Any, g: Group, anchor: float, window: list[Any], metric: Any) -> Fired:
        g.consumed_until = anchor + rule.timespan
        g.episode_last = max(e.ts for e in window)
        g.drop_prefix(bisect.bisect_right(g.times, g.consumed_until))
        return Fired(rule, group, anchor, window, metric)

    def advance(self, watermark: float) -> list[Any]:
        """Close windows up to `watermark - lateness`; returns fired windows in time order."""
        if watermark <= self.watermark:
            return []
        self.watermark = watermark
        cutoff = self.cutoff
        fired: list[Any] = []
        for key in sorted(self.groups, key=lambda k: (k[0], [str(x) for x in k[1]])):
            rule = self.rules.get(key[0])
            g = self.groups[key]
            if rule is None:
                del self.groups[key]
                continue
            if is_monotonic(rule):
                g.drop_prefix(bisect.bisect_left(g.times, cutoff - rule.timespan))
            else:
                while g.entries and g.times[0] + rule.timespan <= cutoff:
                    anchor = g.times[0]
                    end = bisect.bisect_right(g.times, anchor + rule.timespan)
                    window = g.entries[:end]
                    metric = evaluate(rule, window)
                    if metric is not None:
                        fired.append(self._consume(rule, key[1], g, anchor, window, metric))
                    else:
                        g.entries.pop(0)
                        g.times.pop(0)
            if g.ids:
                _prune_ids(g.ids, cutoff)
            episode_end = float("-inf") if g.episode_last is None else g.episode_last + rule.timespan
            if not g.entries and not g.ids and max(g.consumed_until, episode_end) < cutoff:
                del self.groups[key]
        fired.sort(key=lambda f: (f.anchor, f.rule.id))
        return fired

    # --- snapshot / restore (JSON-safe plain data) ---
    def to_data(self) -> dict[str, Any]:
        return {
            "watermark": None if self.watermark == float("-inf") else self.watermark,
            "seq": self.seq,
            "stats": self.stats,
            "groups": [
                {
                    "rule": rid,
                    "group": list(group),
                    "consumed_until": None if g.consumed_until == float("-inf") else g.consumed_until,
                    "episode_last": g.episode_last,
                    "entries": [[e.ts, e.seq, e.rule, e.value, e.agency, e.evidence] for e in g.entries],
                    "ids": g.ids,  # older workers ignore the key; a snapshot without it loads with none
                }
                for (rid, group), g in self.groups.items()
            ],
        }

    def load_data(self, data: dict[str, Any]) -> None:
        wm = data.get("watermark")
        self.watermark = float("-inf") if wm is None else float(wm)
        self.seq = int(data.get("seq", 0))
        self.stats.update(data.get("stats") or {})
        self.groups = {}
        for item in data.get("groups", []):
            if item["rule"] not in self.rules:
                continue  # rule removed since the snapshot: its state is dropped
            g = Group(consumed_until=float("-inf") if item["consumed_until"] is None else float(item["consumed_until"]))
            g.episode_last = None if item.get("episode_last") is None else float(item["episode_last"])
            g.keep([Entry(float(ts), int(seq), r, _thaw(v), a, ev) for ts, seq, r, v, a, ev in item["entries"]])
            ids = item.get("ids")
            if isinstance(ids, dict):
                g.ids = {str(k): float(t) for k, t in ids.items()}
            self.groups[(item["rule"], tuple(_thaw(x) for x in item["group"]))] = g


def _prune_ids(ids: dict[str, float], cutoff: float) -> None:
    """Forget ids of inputs older than the cutoff (a redelivery of them is refused as late), from the
    oldest taken until the first still needed: O(pruned) per advance; a late straggler stays until
    the cap drops it."""
    old = []
    for k, t in ids.items():
        if t >= cutoff:
            break
        old.append(k)
    for k in old:
        del ids[k]


def _thaw(v: Any) -> Any:
    """JSON turns tuples into lists; group and distinct values must stay hashable."""
    return tuple(_thaw(x) for x in v) if isinstance(v, list) else v
