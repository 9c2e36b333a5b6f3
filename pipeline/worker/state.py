"""Stage 2's per-partition state and its snapshots in the compacted state topic."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kafka import ConsumerRebalanceListener, TopicPartition
from kafka.errors import KafkaTimeoutError

from detectors.sigma import Engine, Suppressor
from pipeline import kafka_io
from pipeline.config import KafkaConfig


class RebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]  # kafka-python: no type information
    """Routes kafka-python's rebalance callbacks to the runner, which owns per-partition state. Lost
    (evicted from the group) is told apart from revoked: nothing of a lost partition may be kept."""

    def __init__(
        self,
        on_assigned: Callable[[list[TopicPartition]], None],
        on_revoked: Callable[[list[TopicPartition]], None],
        on_lost: Callable[[list[TopicPartition]], None] | None = None,
    ) -> None:
        self._assigned, self._revoked = on_assigned, on_revoked
        self._lost = on_lost or on_revoked

    def on_partitions_lost(self, lost: Iterable[TopicPartition]) -> None:
        self._lost(list(lost))

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self._assigned(list(assigned))

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
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

    def restore(self, snap: dict[str, Any]) -> int:
        """Load a snapshot; the offset to resume from."""
        self.engine.restore(bytes.fromhex(snap["state"]))
        self.max_event_ts = snap["max_event_ts"]
        if self.suppressor is not None:
            self.suppressor.load_data(snap.get("suppress") or {})
        return int(snap["offset"])


class SnapshotReader:
    """The compacted state topic read forward: the last snapshot of each key under the worker's prefixes.

    The runner reads it after a rebalance, outside kafka-python's callback (which only pauses the new
    partitions), once for both stages. A read continues where the previous one stopped, so a rebalance
    soon after another reads only what was written since, not the whole uncompacted tail again; values
    stay bytes until a partition's snapshot is asked for (older snapshots of a key are never parsed).
    """

    def __init__(self, kafka_cfg: KafkaConfig, state_topic: str, prefixes: tuple[bytes, ...]) -> None:
        self.kafka_cfg, self.topic, self.prefixes = kafka_cfg, state_topic, prefixes
        self.position = 0  # next offset to read
        self.latest: dict[bytes, bytes] = {}
        self.offsets: dict[bytes, int] = {}  # where each latest value sits in the state topic (for the logs)

    def catch_up(self, timeout_s: float = 60.0) -> int:
        """Read to the current end of the topic; the records read. KafkaTimeoutError when that takes
        longer than `timeout_s` (what was read is kept: the next call continues from there)."""
        reader = kafka_io.consumer(self.kafka_cfg, group_id=None, enable_auto_commit=False)
        read, deadline = 0, time.monotonic() + timeout_s
        try:
            tp = TopicPartition(self.topic, 0)
            reader.assign([tp])
            first = reader.beginning_offsets([tp])[tp]
            end = reader.end_offsets([tp])[tp]
            if end < self.position:  # the topic was recreated: start over
                self.position, self.latest, self.offsets = 0, {}, {}
            reader.seek(tp, max(self.position, first))
            prefixes, latest, offsets = self.prefixes, self.latest, self.offsets
            while reader.position(tp) < end:
                if time.monotonic() > deadline:
                    self.position = max(self.position, reader.position(tp))
                    raise KafkaTimeoutError(f"state topic {self.topic}: not read to its end in {timeout_s:.0f} s")
                for records in reader.poll(timeout_ms=1000).values():
                    read += len(records)
                    for rec in records:
                        if rec.key and rec.key.startswith(prefixes):
                            if rec.value:
                                latest[rec.key] = rec.value
                                offsets[rec.key] = rec.offset
                            else:  # a tombstone
                                latest.pop(rec.key, None)
                                offsets.pop(rec.key, None)
            self.position = max(self.position, reader.position(tp))
            return read
        finally:
            reader.close()

    def get(self, prefix: bytes, partition: int) -> dict[str, Any] | None:
        """The partition's latest snapshot, None for none. ValueError when it does not parse (truncated,
        forged, or not JSON): the caller decides what to do with that partition."""
        value = self.latest.get(prefix + str(partition).encode())
        return json.loads(value) if value else None

    def offset_of(self, prefix: bytes, partition: int) -> int | None:
        """Where the partition's latest snapshot sits in the state topic, None for none."""
        return self.offsets.get(prefix + str(partition).encode())
