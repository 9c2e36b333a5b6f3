"""Duplicate removal for at-least-once delivery, used SOC-side (pure, no I/O).

Where duplicates come from: the agent resends spooled records Kafka may already hold when it restarts
(or rewinds after a failed send) before it recorded their ack. Every line carries a per-(agent, source)
`seq` that never changes on resend, so the first consumer of RAW_TOPIC (the detector worker) drops a
line whose (agent_id, source, seq) it has already seen. Lines of one source share a Kafka key, hence
a partition, hence one worker: this state never needs sharing between workers. The worker keeps one
`SeenSequences` per raw partition and saves it with that partition's offset (`to_data`/`load_data`),
so a restart does not forget what was seen.

Only verified records reach it (the agent id is the registry's), and a seq can never blind a stream:
a seq more than `max_ahead` past the stream's floor is processed and counted (`far_ahead`), but kept
out of the state, so one poisoned record cannot make the next real lines look like duplicates, and a
flood of far-ahead seqs cannot fill the pending set (it holds at most `max_ahead` seqs). A stream
that really jumped (`rebase_after` contiguous far-ahead seqs) continues from there (`rebased`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Stream:
    floor: int = 0  # every seq <= floor has been seen
    above: set[int] = field(default_factory=set)  # seen seqs > floor (out of order or after a gap)
    far_next: int = 0  # the seq that would continue the current run of far-ahead seqs
    far_run: int = 0  # length of that run


class SeenSequences:
    """Remembers which seqs were seen per stream with O(gap) memory: a contiguous floor plus the
    sparse seqs above it. A gap older than `max_pending` seqs is given up on (counted as missing)."""

    def __init__(self, max_pending: int = 100_000, max_ahead: int | None = None, rebase_after: int = 1000):
        self.max_pending = max_pending
        self.max_ahead = max_pending if max_ahead is None else max_ahead
        self.rebase_after = rebase_after
        self._streams: dict[tuple[str, str], _Stream] = {}
        self.duplicates = 0
        self.missing = 0  # seqs skipped over when a gap was given up
        self.far_ahead = 0  # seqs too far ahead of their stream: processed, not remembered
        self.rebased = 0  # streams that continued from a far-ahead run
        self.last_far = 0  # the latest far-ahead seq (for the anomaly's report)

    def add(self, agent_id: str, source: str, seq: int) -> bool:
        """True if (agent_id, source, seq) is new (process the line), False for a duplicate."""
        s = self._streams.get((agent_id, source))
        if s is None:
            s = self._streams[(agent_id, source)] = _Stream(floor=seq - 1)  # start where we join
        if seq <= s.floor or seq in s.above:
            self.duplicates += 1
            return False
        if seq - s.floor > self.max_ahead:
            return self._far(s, seq)
        s.far_run = 0
        if seq == s.floor + 1:
            s.floor = seq
            above = s.above
            while above and s.floor + 1 in above:
                s.floor += 1
                above.discard(s.floor)
        else:
            s.above.add(seq)
            if len(s.above) > self.max_pending:
                nxt = min(s.above)
                self.missing += nxt - s.floor - 1
                s.floor = nxt
                s.above.discard(nxt)
                while s.floor + 1 in s.above:
                    s.floor += 1
                    s.above.discard(s.floor)
        return True

    def _far(self, s: _Stream, seq: int) -> bool:
        self.far_ahead += 1
        self.last_far = seq
        s.far_run = s.far_run + 1 if seq == s.far_next else 1
        s.far_next = seq + 1
        if s.far_run >= self.rebase_after:  # a long contiguous run: the agent's numbering really jumped
            self.rebased += 1
            s.floor, s.above, s.far_run = seq, set(), 0
        return True

    def gaps(self, agent_id: str, source: str) -> list[tuple[int, int]]:
        """Missing seq ranges (inclusive) below the highest seq seen: lines lost or not yet arrived."""
        s = self._streams.get((agent_id, source))
        if s is None or not s.above:
            return []
        out, prev = [], s.floor
        for q in sorted(s.above):
            if q > prev + 1:
                out.append((prev + 1, q - 1))
            prev = q
        return out

    def high(self, agent_id: str, source: str) -> int:
        s = self._streams.get((agent_id, source))
        if s is None:
            return 0
        return max(s.above) if s.above else s.floor

    def to_data(self) -> list[list[Any]]:
        """JSON-able state: [[agent, source, floor, [above...]], ...]."""
        return [[a, src, s.floor, sorted(s.above)] for (a, src), s in self._streams.items()]

    def load_data(self, data: list[list[Any]]) -> None:
        self._streams = {
            (str(a), str(src)): _Stream(floor=int(floor), above={int(q) for q in above})
            for a, src, floor, above in data or ()
        }
