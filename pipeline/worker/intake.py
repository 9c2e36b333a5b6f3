"""Stage 1's intake: what a raw record must pass before any line of it is read, and the per-partition
dedup state saved with the offsets. No Kafka here: the worker hands in records and gets back batches,
rejections and snapshot bytes, so this plugs into any shape of worker loop.

1. `verify`: the record's MAC and key against the enrolment registry (`pipeline.verify`); agency and
   agent are stamped from the registry. A failure is a rejection reason (-> quarantine topic).
2. `new_lines`: lines re-sent by the (verified) agent are dropped; a seq far ahead of its stream is
   processed and counted as a sequence anomaly, never made dedup state (`pipeline.dedup`).
3. `snapshot`/`restore`: one partition's dedup state with the offset it is valid at.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from collectors.wire import LineBatch
from pipeline.dedup import SeenSequences
from pipeline.verify import AgentLookup, verify_batch


@dataclass(slots=True)
class Accepted:
    batch: LineBatch
    lines_in: int  # lines in the record before dedup
    duplicates: int
    far_ahead: int  # lines processed despite a seq far ahead of the stream (an anomaly)
    stream_high: int  # the stream's highest seq remembered, for the anomaly's log line


class Intake:
    def __init__(self, lookup: AgentLookup, max_seq_ahead: int):
        self.lookup = lookup
        self.max_seq_ahead = max_seq_ahead
        self.seen: dict[int, SeenSequences] = {}

    def _seen(self, partition: int) -> SeenSequences:
        seen = self.seen.get(partition)
        if seen is None:
            seen = self.seen[partition] = SeenSequences(self.max_seq_ahead, self.max_seq_ahead)
        return seen

    def accept(self, partition: int, key: bytes | None, headers, value: bytes | None) -> Accepted | str:
        """The verified batch with its new lines only, or the rejection reason."""
        batch, reason = verify_batch(key, headers, value, self.lookup)
        if batch is None:
            return reason
        seen = self._seen(partition)
        n, far = len(batch.lines), seen.far_ahead
        batch.lines = [ln for ln in batch.lines if not ln.seq or seen.add(batch.agent_id, batch.source, ln.seq)]
        far = seen.far_ahead - far
        return Accepted(batch, n, n - len(batch.lines), far, seen.high(batch.agent_id, batch.source) if far else 0)

    # --- persistence with the stage-1 offsets -------------------------------------------------------
    def snapshot(self, partition: int, offset: int) -> bytes:
        return json.dumps({"offset": offset, "seen": self._seen(partition).to_data()}, separators=(",", ":")).encode()

    def restore(self, partition: int, snap: dict | None) -> int | None:
        """Start a partition (from its snapshot if any); the offset to resume from, None for none."""
        seen = self.seen[partition] = SeenSequences(self.max_seq_ahead, self.max_seq_ahead)
        if not snap:
            return None
        seen.load_data(snap.get("seen") or [])
        return int(snap["offset"])

    def drop(self, partition: int) -> None:
        self.seen.pop(partition, None)
