"""Which worker takes which partitions: by the load each partition carried lately, not by its number.

Raw records are keyed by agency|agent|source, and a hash spreads keys over partitions unevenly: the
64 equal sources of `bench_pipeline` land 268/203/236/293 records per 1,000 on 4 partitions, so
kafka-python's range assignor gave two workers 47% and 53% of the lines (1.89x at best). Real sources
differ far more (a portal's access log against a commune's auth.log). This assignor hands partitions,
heaviest first, to the worker with the least load so far (ties: fewer partitions), from the records
each partition received in the last couple of minutes as seen by the group leader; with nothing
measured yet (a new group) it splits by number like the range assignor.

The split is a pure function (`balance`); `PartitionLoads` keeps the samples the runner takes (end
offsets, a few times a minute); `LoadAssignor` is what kafka-python calls on the group leader. Which
worker gets which partition changes nothing about correctness: the handover (snapshots with offsets)
is the same whoever gets them. Workers without it in a group fall back to range (listed second).
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from typing import Any

from kafka.coordinator.assignors.abstract import (
    AbstractPartitionAssignor,
    ConsumerProtocolAssignment,
    ConsumerProtocolSubscription,
)

IDLE_FLOOR = 0.05  # an idle partition weighs this share of the average, so idle ones spread too


def balance(partitions: Sequence[int], members: Sequence[str], loads: dict[int, float]) -> dict[str, list[int]]:
    """Partitions per member, every partition exactly once. `loads`: records per partition lately (a
    partition missing from it counts as average); nothing measured: contiguous ranges, like `range`."""
    names = sorted(members)
    parts = sorted(partitions)
    out: dict[str, list[int]] = {m: [] for m in names}
    if not names:
        return out
    total = sum(max(0.0, loads.get(p, 0.0)) for p in parts)
    if total <= 0:
        per, extra = divmod(len(parts), len(names))
        start = 0
        for i, m in enumerate(names):
            n = per + (1 if i < extra else 0)
            out[m] = parts[start : start + n]
            start += n
        return out
    mean = total / len(parts)
    weight = {p: max(0.0, loads[p]) if p in loads else mean for p in parts}
    weight = {p: w + IDLE_FLOOR * mean for p, w in weight.items()}
    carried = dict.fromkeys(names, 0.0)
    for p in sorted(parts, key=lambda p: (-weight[p], p)):
        m = min(names, key=lambda m: (carried[m], len(out[m]), m))
        out[m].append(p)
        carried[m] += weight[p]
    return {m: sorted(ps) for m, ps in out.items()}


class PartitionLoads:
    """Records per partition over the last `window_s`, from end offsets sampled by the worker's loop.

    Written by the worker's thread, read by kafka-python's while it assigns: each sample replaces the
    published figures in one assignment."""

    def __init__(self, window_s: float = 120.0) -> None:
        self.window_s = window_s
        self._samples: dict[str, deque[tuple[float, dict[int, int]]]] = defaultdict(deque)
        self._loads: dict[str, dict[int, float]] = {}
        self._lock = threading.Lock()

    def sample(self, topic: str, now: float, end_offsets: dict[int, int]) -> None:
        with self._lock:
            samples = self._samples[topic]
            samples.append((now, dict(end_offsets)))
            while len(samples) > 2 and samples[1][0] <= now - self.window_s:
                samples.popleft()  # keep one sample at or before the window's start
            first, last = samples[0][1], samples[-1][1]
            loads = {p: float(off - first.get(p, off)) for p, off in last.items()} if len(samples) > 1 else {}
            self._loads = {**self._loads, topic: loads}

    def loads(self, topic: str) -> dict[int, float]:
        return self._loads.get(topic, {})


class LoadAssignor(AbstractPartitionAssignor):  # type: ignore[misc]
    """kafka-python's hook: the group leader assigns every topic of the group with `balance`."""

    name = "socpipe-load"
    version = 0

    def __init__(self, loads: Callable[[str], dict[int, float]]) -> None:
        self.loads = loads

    def assign(self, cluster: Any, members: Any) -> dict[str, Any]:
        by_topic: dict[str, list[str]] = defaultdict(list)
        for member in members:
            for topic in member.metadata.topics:
                by_topic[topic].append(member.member_id)
        assignment: dict[str, dict[str, list[int]]] = defaultdict(dict)
        for topic, member_ids in by_topic.items():
            partitions = cluster.partitions_for_topic(topic)
            if not partitions:
                continue
            for member_id, parts in balance(sorted(partitions), member_ids, self.loads(topic)).items():
                assignment[member_id][topic] = parts
        return {
            m.member_id: ConsumerProtocolAssignment(self.version, sorted(assignment[m.member_id].items()), b"")
            for m in members
        }

    def metadata(self, topics: Any) -> Any:
        return ConsumerProtocolSubscription(self.version, list(topics), b"")

    def on_assignment(self, assignment: Any, generation: Any) -> None:
        pass
