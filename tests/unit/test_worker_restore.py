"""The worker's rebalance handling (pipeline.worker.rebalance, wired by pipeline.worker.runner): callbacks
only pause and note new partitions; the snapshots are restored after the poll, once for both stages; a
state topic that cannot be read leaves them paused for the next poll. Fake consumers and snapshot reader;
the real ones are exercised by test_detector_e2e (kill -9 restore) and test_kafka_cluster (workers join
and leave)."""

from __future__ import annotations

import json
import logging
import zlib
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from kafka import TopicPartition
from kafka.coordinator.assignors.abstract import ConsumerProtocolAssignment
from kafka.errors import KafkaTimeoutError

from detectors.sigma import Engine
from detectors.sigma.engine import SNAPSHOT_VERSION
from pipeline.worker.assign import LoadAssignor, PartitionLoads
from pipeline.worker.intake import Intake
from pipeline.worker.rebalance import Rebalance, Snapshots, stage_partitions
from pipeline.worker.stages import Stage2
from pipeline.worker.state import SnapshotReader
from pipeline.worker_metrics import WorkerMetrics

RAW, CORR = "raw", "corr"


class Consumer:
    def __init__(self, assigned: set[TopicPartition]) -> None:
        self.assigned = set(assigned)
        self.paused: set[TopicPartition] = set()
        self.seeks: dict[TopicPartition, int] = {}

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def pause(self, *tps: TopicPartition) -> None:
        self.paused.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused.difference_update(tps)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks[tp] = offset


class FakeSnapshots:
    def __init__(self, values: dict[bytes, dict[str, Any]], fail: int = 0) -> None:
        self.values, self.fail, self.reads = values, fail, 0

    def catch_up(self) -> int:
        self.reads += 1
        if self.reads <= self.fail:
            raise KafkaTimeoutError("state topic not read to its end")
        return len(self.values)

    def get(self, prefix: bytes, partition: int) -> dict[str, Any] | None:
        return self.values.get(prefix + str(partition).encode())

    def offset_of(self, prefix: bytes, partition: int) -> int | None:
        return None


@dataclass
class Rec:
    offset: int


class Worker:
    """The parts as the runner wires them (`stage_partitions`, group "g"): stage 1's intake, stage 2, a fake
    consumer each, one Rebalance over both with fake snapshots."""

    def __init__(
        self,
        snapshots: Snapshots,
        raw: set[TopicPartition],
        corr: set[TopicPartition],
        stage2: Stage2 | None = None,
    ) -> None:
        self.metrics = WorkerMetrics()
        self.intake = Intake(lambda agent_id: None, 1000)
        self.stage2 = stage2 or Stage2(lambda: SimpleNamespace(restore=lambda b: None), lambda: None, None)  # type: ignore[arg-type,return-value]
        self.raw, self.corr = Consumer(raw), Consumer(corr)
        self.part1, self.part2 = stage_partitions(
            self.metrics,
            "g",
            raw=self.raw,
            raw_topic=RAW,
            intake=self.intake,
            corr=self.corr,
            correlation_topic=CORR,
            stage2=self.stage2,
        )
        self.rebalance = Rebalance(snapshots, (self.part1, self.part2), self.metrics, "state")

    def restore1(self, polled: dict[TopicPartition, list[Any]]) -> dict[TopicPartition, list[Any]]:
        return self.rebalance.restore_assigned(self.part1, polled)

    def restore2(self, polled: dict[TopicPartition, list[Any]]) -> dict[TopicPartition, list[Any]]:
        return self.rebalance.restore_assigned(self.part2, polled)


def seen_snapshot(offset: int) -> dict[str, Any]:
    return json.loads(Intake(lambda a: None, 1000).snapshot(0, offset))


def test_new_partitions_wait_paused_until_restored_after_the_poll() -> None:
    t0, t1, c0 = TopicPartition(RAW, 0), TopicPartition(RAW, 1), TopicPartition(CORR, 0)
    snaps = FakeSnapshots({b"g|raw|0": seen_snapshot(40)})
    w = Worker(snaps, {t0, t1}, {c0})
    w.part1.assigned([t0, t1])
    w.part2.assigned([c0])
    assert w.raw.paused == {t0, t1} and w.corr.paused == {c0} and snaps.reads == 0  # nothing read in the callback
    polled = {TopicPartition(RAW, 2): [Rec(7)]}  # a partition held before
    assert w.restore1(polled) == polled
    assert snaps.reads == 1  # once, for both stages
    assert w.raw.seeks == {t0: 40} and not w.raw.paused and not w.corr.paused  # t1: no snapshot, committed offset
    assert 0 in w.intake.seen and 1 in w.intake.seen and 0 in w.stage2.partitions
    assert w.restore1({}) == {} and snaps.reads == 1  # nothing pending: no read


def test_an_unreadable_state_topic_keeps_them_paused_for_the_next_poll() -> None:
    c0 = TopicPartition(CORR, 0)
    w = Worker(FakeSnapshots({}, fail=1), set(), {c0})
    # stage-2 records of a partition it does not hold (assignment raced the poll): restore first
    assert w.restore2({c0: [Rec(5), Rec(6)]}) == {}
    assert w.corr.paused == {c0} and w.corr.seeks == {c0: 5} and w.part2.unrestored == {c0}
    # the sink's resume after an outage leaves it paused too
    w.part2.hold().resume()
    assert w.corr.paused == {c0}
    assert w.restore2({}) == {}
    assert not w.corr.paused and 0 in w.stage2.partitions and not w.part2.unrestored


def test_revoked_before_restored_is_forgotten() -> None:
    t0 = TopicPartition(RAW, 0)
    snaps = FakeSnapshots({})
    w = Worker(snaps, {t0}, set())
    w.part1.assigned([t0])
    w.part1.revoked([t0])
    assert w.restore1({}) == {} and snaps.reads == 0


def handed(w: Worker) -> dict[tuple[str, str], float]:
    return {
        (s.labels["stage"], s.labels["how"]): s.value
        for m in w.metrics.registry.collect()
        if m.name == "socpipe_detector_partitions_assigned"
        for s in m.samples
        if s.name.endswith("_total")
    }


def test_partitions_given_back_keep_their_state_and_are_neither_paused_nor_restored() -> None:
    """Eager rebalance: everything is revoked, then the sticky assignor gives most back. Those back in
    the very next generation keep their in-memory state and resume at their last snapshot's offset
    at once; only the new ones wait paused for their snapshots; state of one that left is dropped."""
    t0, t1, t2 = (TopicPartition(RAW, p) for p in range(3))
    snaps = FakeSnapshots({b"g|raw|0": seen_snapshot(40), b"g|raw|2": seen_snapshot(60)})
    w = Worker(snaps, {t0, t1}, set())
    assignor = LoadAssignor(PartitionLoads())
    w.part1.handover.generation = lambda: assignor.generation
    assignor.on_assignment(ConsumerProtocolAssignment(0, [(RAW, [0, 1])], b""), 4)
    w.part1.assigned([t0, t1])
    w.restore1({})
    assert snaps.reads == 1 and w.raw.seeks == {t0: 40}
    seen0 = w.intake.seen[0]
    w.part1.saved(t0, 90)  # a batch processed: its snapshot saved with the next offset
    w.part1.revoked([t0, t1])
    assert 0 not in w.intake.seen and 1 not in w.intake.seen  # nothing processed during the rebalance
    assignor.on_assignment(ConsumerProtocolAssignment(0, [(RAW, [0, 2])], b""), 5)
    w.raw.assigned = {t0, t2}
    w.part1.assigned([t0, t2])
    assert w.intake.seen[0] is seen0 and w.raw.seeks[t0] == 90 and t0 not in w.raw.paused
    assert w.raw.paused == {t2} and w.part1.unrestored == {t2} and 1 not in w.intake.seen
    w.restore1({})
    assert snaps.reads == 2 and w.raw.seeks[t2] == 60 and w.intake.seen[0] is seen0
    assert handed(w) == {("1", "kept"): 1.0, ("1", "restored"): 3.0}
    # membership lost (evicted): nothing is kept, even if the same partitions come back next
    w.part1.lost([t0, t2])
    assignor.on_assignment(ConsumerProtocolAssignment(0, [(RAW, [0, 2])], b""), 6)
    w.part1.assigned([t0, t2])
    assert w.raw.paused == {t0, t2} and 0 not in w.intake.seen


def test_with_range_assignment_nothing_is_kept() -> None:
    c0 = TopicPartition(CORR, 0)
    w = Worker(FakeSnapshots({}), set(), {c0})
    w.part2.assigned([c0])
    w.restore2({})
    state = w.stage2.partitions[0]
    w.part2.revoked([c0])
    w.part2.assigned([c0])
    assert w.corr.paused == {c0} and w.stage2.partitions.get(0) is not state


class StateTopic(SnapshotReader):
    """The real reader's parsing over records as the state topic holds them (bytes), without a broker."""

    def __init__(self, records: dict[bytes, bytes]) -> None:
        super().__init__(None, "state", (b"g|",))  # type: ignore[arg-type]  # no broker: a use of it fails loudly
        self.latest = dict(records)
        self.offsets = {key: 100 + i for i, key in enumerate(records)}

    def catch_up(self, timeout_s: float = 60.0) -> int:
        return len(self.latest)


def engine_state(version: int) -> str:
    return zlib.compress(json.dumps({"version": version, "state": {}}).encode()).hex()


def corr_snapshot(offset: int, version: int = SNAPSHOT_VERSION) -> bytes:
    return json.dumps({"offset": offset, "max_event_ts": 5.0, "state": engine_state(version), "suppress": {}}).encode()


def test_an_unusable_snapshot_starts_its_partition_empty_and_the_others_restored(caplog) -> None:
    """A truncated/forged/other-version state record must not stop the worker (nor every worker next given
    the partition): that partition starts empty at its committed offset, the others restore as usual,
    and the SOC sees it in the logs and the metric."""
    good = Intake(lambda a: None, 1000)
    good._seen(1).add("agent-1", "/var/log/auth.log", 7)
    records = {
        b"g|raw|0": b'{"offset": 40, "seen": [[',  # truncated
        b"g|raw|1": good.snapshot(1, 55),
        b"g|raw|2": b'{"seen": []}',  # forged: no offset
        b"g|raw|3": b'"not an object"',
        b"g|corr|0": corr_snapshot(70, SNAPSHOT_VERSION + 1),  # a newer worker's snapshot (rolling upgrade)
        b"g|corr|1": corr_snapshot(80),
        b"g|corr|2": b"\xff\xfe",
    }
    raw = [TopicPartition(RAW, p) for p in range(4)]
    corr = [TopicPartition(CORR, p) for p in range(3)]
    w = Worker(StateTopic(records), set(raw), set(corr), Stage2(lambda: Engine([]), lambda: None, None))  # type: ignore[arg-type]
    w.part1.assigned(raw)
    w.part2.assigned(corr)
    polled = {TopicPartition(RAW, 9): [Rec(3)]}
    with caplog.at_level(logging.ERROR, logger="socpipe.detector"):
        assert w.restore1(polled) == polled
    # nothing left paused or pending; the good snapshots were restored and sought to
    assert not w.raw.paused and not w.corr.paused and not w.part1.unrestored and not w.part2.unrestored
    assert w.raw.seeks == {raw[1]: 55} and w.corr.seeks == {corr[1]: 80}
    assert not w.intake._seen(1).add("agent-1", "/var/log/auth.log", 7)  # its dedup state is back
    assert w.stage2.partitions[1].max_event_ts == 5.0
    # the unusable ones start empty (no seek: the consumer resumes at the committed offset)
    for p in (0, 2, 3):
        assert w.intake._seen(p).add("agent-1", "/var/log/auth.log", 7)
    assert w.stage2.partitions[0].max_event_ts == 0.0 and 2 in w.stage2.partitions
    unusable = [r.getMessage() for r in caplog.records if "detector.snapshot_unusable" in r.getMessage()]
    assert len(unusable) == 5
    assert any(
        "topic=raw partition=0 state_topic=state state_key=g|raw|0 state_offset=100" in m and "JSONDecodeError" in m
        for m in unusable
    )
    assert any("topic=corr partition=0" in m and "snapshot version" in m for m in unusable)
    got = {
        s.labels["stage"]: s.value
        for m in w.metrics.registry.collect()
        if m.name == "socpipe_detector_state_snapshots_unusable"
        for s in m.samples
        if s.name.endswith("_total")
    }
    assert got == {"1": 3.0, "2": 2.0}
