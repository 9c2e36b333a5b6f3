"""A rebalance during the sink's pause loop (Elasticsearch down: the consumer is paused and polled to stay
in its group, and that poll runs the group's rebalance). The batch being written was processed whole:
a partition given back to this worker keeps its state and resumes after the batch, not at its last
snapshot (which fed the batch again into the state that already held it); one that went elsewhere is no
longer assigned here (so not committed), its state is gone, and a new one waits paused for its snapshot.
The consumer fake follows kafka-python 3's eager rebalance; over a real broker: tests/integration/
test_worker_pause_rebalance_kafka.py."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.coordinator.assignors.abstract import ConsumerProtocolAssignment

from pipeline.elastic.indexer import IndexResult
from pipeline.worker.assign import LoadAssignor, PartitionLoads
from pipeline.worker.intake import Intake
from pipeline.worker.rebalance import Rebalance, StagePartitions, stage_partitions
from pipeline.worker.sink import AlertSink
from pipeline.worker.stages import Stage2
from pipeline.worker.state import RebalanceListener
from pipeline.worker_metrics import WorkerMetrics

from .test_worker_restore import FakeSnapshots, seen_snapshot

RAW, CORR = "raw", "corr"


class GroupConsumer:
    """kafka-python 3's consumer as the pause loop drives it: a position and a paused flag per assigned
    partition. A queued rebalance runs in the next poll, as kafka-python runs it: everything revoked,
    then the new assignment, where a partition assigned again keeps its position and paused flag and a
    new one has neither (kafka.consumer.subscription_state._apply_assignment). Paused: no records."""

    def __init__(self, topic: str, assignor: LoadAssignor, keeps_paused: bool = True) -> None:
        self.topic, self.assignor, self.keeps_paused = topic, assignor, keeps_paused
        self.positions: dict[TopicPartition, int | None] = {}
        self.paused: set[TopicPartition] = set()
        self.listener: RebalanceListener | None = None
        self.queued: tuple[list[int], int] | None = None
        self.rebalances = 0

    def assignment(self) -> set[TopicPartition]:
        return set(self.positions)

    def pause(self, *tps: TopicPartition) -> None:
        self.paused.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused.difference_update(tps)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        assert tp in self.positions
        self.positions[tp] = offset

    def position(self, tp: TopicPartition) -> int | None:
        return self.positions[tp]

    def assign(self, partitions: list[int], generation: int) -> None:
        """The group's assignment of `generation` (kafka-python's on_assignment, then the listener)."""
        assert self.listener is not None
        self.assignor.on_assignment(ConsumerProtocolAssignment(0, [(self.topic, partitions)], b""), generation)
        new = [TopicPartition(self.topic, p) for p in partitions]
        self.positions = {tp: self.positions.get(tp) for tp in new}
        self.paused &= set(new) if self.keeps_paused else set()
        self.listener.on_partitions_assigned(new)

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[TopicPartition, list[Any]]:
        if self.queued is not None:
            (partitions, generation), self.queued = self.queued, None
            assert self.listener is not None
            self.listener.on_partitions_revoked(list(self.positions))
            self.assign(partitions, generation)
            self.rebalances += 1
        out: dict[TopicPartition, list[Any]] = {}
        for tp, at in self.positions.items():  # what the listener left unpaused: 5 records each
            if tp not in self.paused and at is not None:
                out[tp] = [SimpleNamespace(offset=o) for o in range(at, at + 5)]
                self.positions[tp] = at + 5
        return out


class DownThenUp:
    """An event indexer whose Elasticsearch refuses `down` bulk requests, then takes everything."""

    def __init__(self, down: int) -> None:
        self.down = down

    def index(self, events: list[dict[str, Any]]) -> IndexResult:
        if self.down > 0:
            self.down -= 1
            return IndexResult(retry=list(events))
        return IndexResult(created=[e["_id"] for e in events])


def _stage(stage: str) -> tuple[StagePartitions, GroupConsumer, Rebalance, dict[int, Any]]:
    """One stage's side as the runner wires it, its consumer, and the stage's per-partition state."""
    metrics = WorkerMetrics()
    intake = Intake(lambda agent_id: None, 1000)
    stage2 = Stage2(lambda: SimpleNamespace(restore=lambda b: None), lambda: None, None)  # type: ignore[arg-type,return-value]
    a1, a2 = LoadAssignor(PartitionLoads()), LoadAssignor(PartitionLoads())
    raw, corr = GroupConsumer(RAW, a1), GroupConsumer(CORR, a2)
    part1, part2 = stage_partitions(
        metrics,
        "g",
        raw=raw,
        raw_topic=RAW,
        intake=intake,
        corr=corr,
        correlation_topic=CORR,
        stage2=stage2,
        generations=(lambda: a1.generation, lambda: a2.generation),
    )
    raw.listener, corr.listener = part1.listener(), part2.listener()
    corr_snap = {"offset": 0, "state": "", "max_event_ts": 0.0}
    snaps = FakeSnapshots(
        {
            b"g|raw|0": seen_snapshot(40),
            b"g|raw|1": seen_snapshot(50),
            b"g|corr|0": {**corr_snap, "offset": 40},
            b"g|corr|1": {**corr_snap, "offset": 50},
        }
    )
    rebalance = Rebalance(snaps, (part1, part2), metrics, "state")
    if stage == "1":
        return part1, raw, rebalance, intake.seen
    return part2, corr, rebalance, stage2.partitions


@pytest.mark.parametrize("stage", ["1", "2"])
def test_a_rebalance_while_elasticsearch_is_down_does_not_read_the_batch_again(stage: str) -> None:
    side, consumer, rebalance, state = _stage(stage)
    t0, t1, t2 = (TopicPartition(consumer.topic, p) for p in range(3))
    consumer.assign([0, 1], 4)
    rebalance.restore_assigned(side, {})
    assert consumer.positions == {t0: 40, t1: 50} and not consumer.paused  # at their snapshots
    # a batch polled and processed: records 40-59 of partition 0, 50-54 of partition 1
    consumer.positions.update({t0: 60, t1: 55})
    held = state[0]
    # its writes find Elasticsearch down; the poll that keeps the consumer in its group rebalances:
    # 0 comes back, 1 goes to another worker, 2 is new
    consumer.queued = ([0, 2], 5)
    sink = AlertSink(SimpleNamespace(), WorkerMetrics(), lambda payload, reason: None, sleep=lambda s: None)  # type: ignore[arg-type]
    blocked = sink.deliver_events(DownThenUp(down=3), [{"_id": "e1"}], side.hold())  # type: ignore[arg-type]
    assert consumer.rebalances == 1 and blocked >= 0
    assert consumer.position(t0) == 60  # sought back to its snapshot's 40 before: the batch read again
    assert state[0] is held and side.handover.offsets[t0] == 60  # the next snapshot: this state at 60
    assert t1 not in consumer.assignment() and 1 not in state  # not committed here; its new owner reads it
    assert consumer.paused == {t2} and side.unrestored == {t2}  # waits for its snapshot, after the poll
    rebalance.restore_assigned(side, {})
    assert consumer.positions == {t0: 60, t2: None} and not consumer.paused and 2 in state


def test_an_outage_without_a_rebalance_moves_nothing() -> None:
    side, consumer, rebalance, state = _stage("1")
    t0 = TopicPartition(RAW, 0)
    consumer.assign([0], 4)
    rebalance.restore_assigned(side, {})
    consumer.positions[t0] = 60
    sink = AlertSink(SimpleNamespace(), WorkerMetrics(), lambda payload, reason: None, sleep=lambda s: None)  # type: ignore[arg-type]
    sink.deliver_events(DownThenUp(down=2), [{"_id": "e1"}], side.hold())  # type: ignore[arg-type]
    assert consumer.positions == {t0: 60} and not consumer.paused and consumer.rebalances == 0


def test_records_a_rebalance_unpauses_during_the_outage_are_read_again_not_dropped() -> None:
    """A kafka-python that gave a kept partition a fresh paused flag (2.x reset every partition's
    state) would return its records to the keep-alive poll, which dropped them: their offsets then
    committed unread. They are sought back to and everything is paused again."""
    side, consumer, rebalance, state = _stage("1")
    consumer.keeps_paused = False
    t0, t2 = TopicPartition(RAW, 0), TopicPartition(RAW, 2)
    consumer.assign([0], 4)
    rebalance.restore_assigned(side, {})
    consumer.positions[t0] = 60
    consumer.queued = ([0, 2], 5)
    sink = AlertSink(SimpleNamespace(), WorkerMetrics(), lambda payload, reason: None, sleep=lambda s: None)  # type: ignore[arg-type]
    sink.deliver_events(DownThenUp(down=3), [{"_id": "e1"}], side.hold())  # type: ignore[arg-type]
    assert (
        consumer.rebalances == 1 and consumer.position(t0) == 60
    )  # was 75: three keep-alive polls took 60-74, never processed
    assert consumer.paused == {t2}  # resumed after the outage, the new one waits for its snapshot


@pytest.mark.parametrize("down_stage", ["1", "2"])
def test_the_other_stages_consumer_is_paused_and_polled_through_the_outage(down_stage: str) -> None:
    """`Rebalance.hold` (the runner's): the stage whose batch waits and the other one, between batches,
    are both paused, polled (a rebalance of the other group completes meanwhile) and resumed after; over
    a real broker with a short max_poll_interval_ms: tests/integration/test_worker_pause_other_stage_kafka.py."""
    side, consumer, rebalance, state = _stage(down_stage)
    other = rebalance.stages[1] if side is rebalance.stages[0] else rebalance.stages[0]
    other_consumer: GroupConsumer = other.consumer
    other_consumer.assign([0, 1], 4)
    consumer.assign([0], 4)
    rebalance.restore_assigned(side, {})
    assert not other.unrestored and not other_consumer.paused
    t0, t2 = TopicPartition(other_consumer.topic, 0), TopicPartition(other_consumer.topic, 2)
    at_snapshot = dict(other_consumer.positions)
    paused_while: list[set[TopicPartition]] = []
    other_consumer.queued = ([0, 2], 5)  # the other group rebalances during the outage: 1 goes, 2 comes

    def down(events: list[dict[str, Any]]) -> IndexResult:
        paused_while.append(set(other_consumer.paused))
        return indexer.index(events)

    indexer = DownThenUp(down=3)
    sink = AlertSink(SimpleNamespace(), WorkerMetrics(), lambda payload, reason: None, sleep=lambda s: None)  # type: ignore[arg-type]
    sink.deliver_events(SimpleNamespace(index=down), [{"_id": "e1"}], rebalance.hold(side))  # type: ignore[arg-type]
    assert other_consumer.rebalances == 1  # polled during the outage: it stayed in its group
    assert paused_while[1:-1] and all(t0 in p for p in paused_while[1:-1])  # nothing of it read meanwhile
    assert other_consumer.positions == {t0: at_snapshot[t0], t2: None}  # kept at its snapshot, not moved
    assert other_consumer.paused == {t2} and other.unrestored == {t2}  # the new one waits for its snapshot
    assert not consumer.paused  # the stage whose batch waited resumed too
    rebalance.restore_assigned(side, {})
    assert not other_consumer.paused and not other.unrestored
