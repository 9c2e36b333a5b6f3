"""The detector worker's rebalance handling: which partitions each stage holds, and their restore.

kafka-python calls the rebalance callbacks inside poll(). Revocation parks the state of restored
partitions (pipeline.worker.handover); an assignment takes back those this worker held in the generation
just before, at the offset of their last snapshot, and only pauses and notes the others: their snapshots
are read right after that poll returns (`Rebalance.restore_assigned`), once for both stages, so a slow
read of the state topic never holds up the callback (the other stage's consumer waited behind it).

The runner (pipeline.worker.runner) builds one `StagePartitions` per stage (its consumer, handover, and
how the stage restores, drops and holds a partition's state) and one `Rebalance` over both; it asks
them for the consumer's rebalance listener, the sink's `Hold`, and the snapshot key of a partition.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from pipeline import kafka_io
from pipeline.worker.handover import Handover
from pipeline.worker.intake import Intake
from pipeline.worker.stages import Stage2
from pipeline.worker.state import RebalanceListener
from pipeline.worker_metrics import WorkerMetrics

log = logging.getLogger("socpipe.detector")

__all__ = ["Rebalance", "Snapshots", "StagePartitions", "snapshot_prefix", "stage_partitions"]

Restore = Callable[[int, dict[str, Any] | None], int | None]
KEEP_ALIVE_POLL_MS = 100  # the sink's keep-alive poll while Elasticsearch refuses writes (see _PauseConsumer)


def snapshot_prefix(group_id: str, topic: str) -> bytes:
    """The state-topic key prefix of a consumer group's snapshots of one topic's partitions."""
    return f"{group_id}|{topic}|".encode()


class Snapshots(Protocol):
    """What the restore needs of the state topic (pipeline.worker.state.SnapshotReader)."""

    def catch_up(self) -> int: ...

    def get(self, prefix: bytes, partition: int) -> dict[str, Any] | None: ...

    def offset_of(self, prefix: bytes, partition: int) -> int | None: ...


class _PauseConsumer:
    """The sink's `Hold` for a consumer: pause its partitions, poll to stay in the group, resume (all but
    those assigned meanwhile whose snapshots are not restored yet: `unrestored`).

    The batch being written was processed whole, so the state of each partition is at the consumer's
    position, past its last snapshot: the pause tells the handover so. A rebalance during the pause
    (the polls that keep the consumer in its group) gives a partition back with that state at that
    position; it used to be sought back to its snapshot's offset, and the batch was read, deduplicated
    and counted again (stage 2: correlation inputs without an id counted twice). A partition that went
    to another worker is not committed here (no longer assigned); its new owner reads the batch from
    the committed offset and writes the same alerts, which are idempotent (deterministic ids,
    create-only; an episode alert skips detections of records it already merged: pipeline.elastic.episodes), so what this worker
    still writes of it adds nothing twice."""

    def __init__(
        self, consumer: KafkaConsumer, unrestored: set[TopicPartition], handover: Handover, mid_batch: bool = True
    ) -> None:
        self.consumer = consumer
        self.unrestored = unrestored
        self.handover = handover
        self.mid_batch = mid_batch  # False: the other stage's consumer, between batches (nothing processed)

    def pause(self) -> None:
        assigned = self.consumer.assignment()
        self.consumer.pause(*assigned)
        if not self.mid_batch:
            return
        for tp in assigned - self.unrestored:
            if tp in self.handover.offsets:  # one without is never sought back when kept
                offset = self.consumer.position(tp)
                if offset is not None:
                    self.handover.processed(tp, offset)

    def keep_alive(self) -> None:
        """Poll to stay in the group, long enough (KEEP_ALIVE_POLL_MS) for a rebalance to complete: with
        poll(0) kafka-python 3 sent a JoinGroup and gave up on it at every call, so on a real broker a
        member joining during an outage made the group rebalance every ~3 s until the outage ended
        (tests/integration/test_worker_pause_rebalance_kafka.py; the join it sent was done by the next
        call, which threw it away: kafka_io.poll takes such a join in). Nothing comes back while paused,
        but should a kafka-python not keep a reassigned partition's paused flag (3.x does), records
        fetched meanwhile are read again after the outage, never dropped, and everything is paused."""
        polled = kafka_io.poll(self.consumer, KEEP_ALIVE_POLL_MS)
        for tp, records in polled.items():
            self.consumer.seek(tp, records[0].offset)
        if polled:
            self.consumer.pause(*self.consumer.assignment())

    def resume(self) -> None:
        kafka_io.resume(self.consumer, *(self.consumer.assignment() - self.unrestored))


class _HoldAll:
    """Several consumers held as one (`Rebalance.hold`): paused, kept alive and resumed together."""

    def __init__(self, holds: list[_PauseConsumer]) -> None:
        self.holds = holds

    def pause(self) -> None:
        for h in self.holds:
            h.pause()

    def keep_alive(self) -> None:
        for h in self.holds:
            h.keep_alive()

    def resume(self) -> None:
        for h in self.holds:
            h.resume()


class StagePartitions:
    """One stage's side of a rebalance: `restore(partition, snapshot)` loads a partition's state (None:
    fresh) and returns the offset to resume from; `drop(partition)` forgets it; `held(partition)`, when
    given, tells whether the stage holds the partition (records of one it does not hold mean the
    assignment raced the poll: it is restored first)."""

    def __init__(
        self,
        stage: str,
        consumer: KafkaConsumer,
        handover: Handover,
        prefix: bytes,
        restore: Restore,
        drop: Callable[[int], None],
        metrics: WorkerMetrics,
        held: Callable[[int], bool] | None = None,
    ) -> None:
        self.stage, self.consumer, self.handover, self.prefix = stage, consumer, handover, prefix
        self.restore, self.drop, self.held, self.metrics = restore, drop, held, metrics
        self.unrestored: set[TopicPartition] = set()  # assigned, paused until restored from their snapshots

    def listener(self) -> RebalanceListener:
        return RebalanceListener(self.assigned, self.revoked, self.lost)

    def hold(self, mid_batch: bool = True) -> _PauseConsumer:
        """Pause and keep this stage's consumer in its group; `mid_batch`: its batch is the one waiting
        (see _PauseConsumer), else it is between batches (its state is at its last snapshot)."""
        return _PauseConsumer(self.consumer, self.unrestored, self.handover, mid_batch)

    def key(self, partition: int) -> bytes:
        """The state-topic key of the partition's snapshot."""
        return self.prefix + str(partition).encode()

    def saved(self, tp: TopicPartition, offset: int) -> None:
        """A snapshot of the partition was written with the next offset `offset`."""
        self.handover.saved(tp, offset)

    def assigned(self, partitions: list[TopicPartition]) -> None:
        """Those kept from the last generation are back in the stage, at their last snapshot's offset;
        the new ones are paused (nothing of them is processed before their state is back) and noted."""
        kept = self.handover.assigned(partitions)
        for tp, offset in kept.items():
            if offset is not None:
                self.consumer.seek(tp, offset)
        new = [tp for tp in partitions if tp not in kept]
        log.info(
            "detector.stage%s.assigned partitions=%s kept=%s",
            self.stage,
            sorted(tp.partition for tp in partitions),
            sorted(tp.partition for tp in kept),
        )
        self.metrics.partitions_handed.labels(stage=self.stage, how="kept").inc(len(kept))
        self.metrics.partitions_handed.labels(stage=self.stage, how="restored").inc(len(new))
        self.metrics.partitions.labels(stage=self.stage).set(len(kept))  # the new ones count once restored
        self.consumer.pause(*new)
        self.unrestored.update(new)

    def revoked(self, partitions: list[TopicPartition], lost: bool = False) -> None:
        log.info(
            "detector.stage%s.revoked partitions=%s lost=%s",
            self.stage,
            sorted(tp.partition for tp in partitions),
            lost,
        )
        self.handover.revoked(partitions, self.unrestored, lost)
        for tp in partitions:
            self.drop(tp.partition)
        self.metrics.partitions.labels(stage=self.stage).set(len(self.consumer.assignment() - set(partitions)))

    def lost(self, partitions: list[TopicPartition]) -> None:
        self.revoked(partitions, lost=True)


def stage_partitions(
    metrics: WorkerMetrics,
    group_id: str,
    *,
    raw: KafkaConsumer,
    raw_topic: str,
    intake: Intake,
    corr: KafkaConsumer,
    correlation_topic: str,
    stage2: Stage2,
    generations: tuple[Callable[[], int] | None, Callable[[], int] | None] = (None, None),
) -> tuple[StagePartitions, StagePartitions]:
    """Both stages' sides as the worker has them: stage 1 restores its dedup state (`intake`), stage 2
    its correlation state. `generations`: each consumer's socpipe assignor generation (None: another
    assignor, nothing is kept through a rebalance)."""
    part1 = StagePartitions(
        "1",
        raw,
        Handover(intake.detach, intake.attach, generations[0]),
        snapshot_prefix(group_id, raw_topic),
        intake.restore,
        intake.drop,
        metrics,
    )
    part2 = StagePartitions(
        "2",
        corr,
        Handover(stage2.detach, stage2.attach, generations[1]),
        snapshot_prefix(group_id, correlation_topic),
        stage2.assign,
        stage2.revoke,
        metrics,
        held=lambda partition: partition in stage2.partitions,
    )
    return part1, part2


class Rebalance:
    """Both stages' partitions; restores the newly assigned ones from the state topic after a poll."""

    def __init__(
        self,
        snapshots: Snapshots,
        stages: tuple[StagePartitions, StagePartitions],
        metrics: WorkerMetrics,
        state_topic: str,
    ) -> None:
        self.snapshots, self.stages, self.metrics, self.state_topic = snapshots, stages, metrics, state_topic

    def hold(self, side: StagePartitions) -> _HoldAll:
        """The sink's `Hold` for a batch of `side`'s stage: its consumer paused mid-batch (`side.hold()`),
        and every other stage's consumer, which is between batches, paused and polled along with it.

        The worker's one thread is in the sink while Elasticsearch refuses writes; kafka-python leaves a
        group by itself when its consumer was not polled for `max_poll_interval_ms` (300 s), so an outage
        longer than that dropped the other stage's consumer from its group: its partitions went to other
        workers (or nobody) and came back after the outage, two rebalances and two restores of state for
        nothing (tests/integration/test_worker_pause_other_stage_kafka.py)."""
        return _HoldAll([side.hold(), *(s.hold(mid_batch=False) for s in self.stages if s is not side)])

    def restore_assigned(
        self, side: StagePartitions, polled: dict[TopicPartition, list[Any]]
    ) -> dict[TopicPartition, list[Any]]:
        """Restore every newly assigned partition (both stages) from its snapshot, seek it to the offset
        saved with it and resume it; `polled` (what `side`'s consumer just returned) without records of
        partitions restored only now (they are fetched again from the restored offset)."""
        if side.held is not None:  # records of a partition the stage does not hold: assignment raced the poll
            side.unrestored.update(tp for tp in polled if not side.held(tp.partition))
        if not any(s.unrestored for s in self.stages):
            return polled
        started = time.perf_counter()
        try:
            read = self.snapshots.catch_up()
        except KafkaError as exc:  # broker busy or away: keep them paused, try again after the next poll
            log.warning("detector.snapshots_unreadable error=%s action=retry", exc)
            waiting: set[TopicPartition] = set()
            for s in self.stages:
                waiting |= s.unrestored
                s.consumer.pause(*s.unrestored)
            for tp in waiting & polled.keys():
                side.consumer.seek(tp, polled[tp][0].offset)  # fetched again once restored
            return {tp: recs for tp, recs in polled.items() if tp not in waiting}
        restarted: set[TopicPartition] = set()
        for s in self.stages:
            restarts = {tp: self._restore_one(s, tp) for tp in sorted(s.unrestored)}
            for tp, offset in restarts.items():
                if offset is None and tp in polled:
                    offset = polled[tp][0].offset  # no snapshot: read again what this poll returned
                if offset is not None:
                    s.consumer.seek(tp, offset)  # offsets committed after the snapshot: resume exactly there
                    s.handover.saved(tp, offset)
                    log.info("detector.restored topic=%s partition=%d offset=%d", tp.topic, tp.partition, offset)
            restarted |= restarts.keys()
        for s in self.stages:
            if s.unrestored:
                kafka_io.resume(s.consumer, *s.unrestored)
        seconds = time.perf_counter() - started
        for s in self.stages:
            if s.unrestored:
                self.metrics.restore_seconds.labels(stage=s.stage).observe(seconds)
                self.metrics.partitions.labels(stage=s.stage).set(len(s.consumer.assignment()))
        log.info(
            "detector.snapshots_restored %s state_records_read=%d seconds=%.2f",
            " ".join(f"stage{s.stage}={sorted(tp.partition for tp in s.unrestored)}" for s in self.stages),
            read,
            seconds,
        )
        for s in self.stages:
            s.unrestored.clear()
        return {tp: recs for tp, recs in polled.items() if tp not in restarted}

    def _restore_one(self, side: StagePartitions, tp: TopicPartition) -> int | None:
        """One partition from its snapshot; the offset to resume from. A snapshot that cannot be used
        (truncated, forged by whoever can write the state topic, or another SNAPSHOT_VERSION during a
        rolling upgrade) is logged, counted and skipped: the partition starts with empty state at its
        committed offset. Raising instead would stop the worker, and every worker next given the
        partition after it, as long as the record is the latest of its key (the whole group)."""
        try:
            return side.restore(tp.partition, self.snapshots.get(side.prefix, tp.partition))
        except Exception as exc:  # the payload is untrusted: any failure to load it means "unusable"
            reason = f"{type(exc).__name__}: {exc}"[:300]
            log.error(
                "detector.snapshot_unusable topic=%s partition=%d state_topic=%s state_key=%s state_offset=%s "
                "reason=%r action=start_empty_at_committed_offset",
                tp.topic,
                tp.partition,
                self.state_topic,
                side.key(tp.partition).decode("utf-8", "replace"),
                self.snapshots.offset_of(side.prefix, tp.partition),
                reason,
            )
            self.metrics.snapshots_unusable.labels(stage=side.stage).inc()
            return side.restore(tp.partition, None)  # fresh state (nothing half-loaded is kept)
