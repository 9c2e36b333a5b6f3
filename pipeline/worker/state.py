"""Stage 2's per-partition state and its snapshots in the compacted state topic."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kafka import ConsumerRebalanceListener, TopicPartition

from detectors.sigma import Engine, Suppressor
from pipeline import kafka_io


class RebalanceListener(ConsumerRebalanceListener):
    """Routes kafka-python's rebalance callbacks to stage 2, which owns per-partition state."""

    def __init__(self, on_assigned: Callable[[list], None], on_revoked: Callable[[list], None]):
        self._assigned, self._revoked = on_assigned, on_revoked

    def on_partitions_assigned(self, assigned):
        self._assigned(list(assigned))

    def on_partitions_revoked(self, revoked):
        self._revoked(list(revoked))


@dataclass
class PartitionState:
    """Stage 2's correlation engine and suppression of one partition, and its event-time watermark."""

    engine: Engine
    suppressor: Suppressor | None = None
    max_event_ts: float = 0.0
    last_event_wall: float = field(default_factory=time.monotonic)

    def snapshot(self, offset: int) -> bytes:
        return json.dumps(
            {
                "offset": offset,
                "max_event_ts": self.max_event_ts,
                "state": self.engine.snapshot().hex(),
                "suppress": self.suppressor.to_data() if self.suppressor else {},
            }
        ).encode()

    def restore(self, snap: dict) -> int:
        """Load a snapshot; the offset to resume from."""
        self.engine.restore(bytes.fromhex(snap["state"]))
        self.max_event_ts = snap["max_event_ts"]
        if self.suppressor is not None:
            self.suppressor.load_data(snap.get("suppress") or {})
        return int(snap["offset"])


def read_snapshots(kafka_cfg, state_topic: str, prefix: bytes) -> dict[int, dict]:
    """Read the compacted state topic to its end; the last value per key wins."""
    reader = kafka_io.consumer(kafka_cfg, group_id=None, enable_auto_commit=False)
    try:
        tp = TopicPartition(state_topic, 0)
        reader.assign([tp])
        reader.seek_to_beginning(tp)
        end = reader.end_offsets([tp])[tp]
        found: dict[int, dict] = {}
        while reader.position(tp) < end:
            for records in reader.poll(timeout_ms=1000).values():
                for rec in records:
                    if rec.key and rec.key.startswith(prefix) and rec.value:
                        found[int(rec.key[len(prefix) :])] = json.loads(rec.value)
        return found
    finally:
        reader.close()
