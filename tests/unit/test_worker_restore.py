"""The runner's rebalance handling (pipeline.worker.runner): callbacks only pause and note new partitions;
the snapshots are restored after the poll, once for both stages; a state topic that cannot be read
leaves them paused for the next poll. Fake consumers and snapshot reader; the real ones are exercised by
test_detector_e2e (kill -9 restore) and test_kafka_cluster (workers join and leave)."""

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
from pipeline.worker.handover import Handover
from pipeline.worker.intake import Intake
from pipeline.worker.runner import DetectorWorker, _PauseConsumer
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


class Snapshots:
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


def worker(snapshots: Snapshots) -> DetectorWorker:
    w = object.__new__(DetectorWorker)
    w.cfg = SimpleNamespace(group_id="g", raw_topic=RAW, correlation_topic=CORR, state_topic="state")  # type: ignore[assignment]
    w.metrics = WorkerMetrics()
    w.intake = Intake(lambda agent_id: None, 1000)  # type: ignore[arg-type,return-value]
    w.stage2 = Stage2(lambda: SimpleNamespace(restore=lambda b: None), lambda: None, None)  # type: ignore[arg-type,return-value]
    w.snapshots = snapshots  # type: ignore[assignment]
    w._unrestored1, w._unrestored2 = set(), set()
    w.assignor1 = w.assignor2 = None
    w.handover1 = Handover(w.intake.detach, w.intake.attach)
    w.handover2 = Handover(w.stage2.detach, w.stage2.attach)
    return w


def seen_snapshot(offset: int) -> dict[str, Any]:
    return json.loads(Intake(lambda a: None, 1000).snapshot(0, offset))  # type: ignore[arg-type,return-value]


def test_new_partitions_wait_paused_until_restored_after_the_poll() -> None:
    t0, t1, c0 = TopicPartition(RAW, 0), TopicPartition(RAW, 1), TopicPartition(CORR, 0)
    snaps = Snapshots({b"g|raw|0": seen_snapshot(40)})
    w = worker(snaps)
    w.raw, w.corr = Consumer({t0, t1}), Consumer({c0})  # type: ignore[assignment]
    w._assigned1([t0, t1])
    w._assigned2([c0])
    assert w.raw.paused == {t0, t1} and w.corr.paused == {c0} and snaps.reads == 0  # nothing read in the callback
    polled = {TopicPartition(RAW, 2): [Rec(7)]}  # a partition held before
    assert w._restore_assigned(w.raw, polled) == polled
    assert snaps.reads == 1  # once, for both stages
    assert w.raw.seeks == {t0: 40} and not w.raw.paused and not w.corr.paused  # t1: no snapshot, committed offset
    assert 0 in w.intake.seen and 1 in w.intake.seen and 0 in w.stage2.partitions
    assert w._restore_assigned(w.raw, {}) == {} and snaps.reads == 1  # nothing pending: no read


def test_an_unreadable_state_topic_keeps_them_paused_for_the_next_poll() -> None:
    c0 = TopicPartition(CORR, 0)
    w = worker(Snapshots({}, fail=1))
    w.raw, w.corr = Consumer(set()), Consumer({c0})  # type: ignore[assignment]
    # stage-2 records of a partition it does not hold (assignment raced the poll): restore first
    assert w._restore_assigned(w.corr, {c0: [Rec(5), Rec(6)]}) == {}
    assert w.corr.paused == {c0} and w.corr.seeks == {c0: 5} and w._unrestored2 == {c0}
    # the sink's resume after an outage leaves it paused too
    _PauseConsumer(w.corr, w._unrestored2).resume()  # type: ignore[arg-type]
    assert w.corr.paused == {c0}
    assert w._restore_assigned(w.corr, {}) == {}
    assert not w.corr.paused and 0 in w.stage2.partitions and not w._unrestored2


def test_revoked_before_restored_is_forgotten() -> None:
    t0 = TopicPartition(RAW, 0)
    snaps = Snapshots({})
    w = worker(snaps)
    w.raw, w.corr = Consumer({t0}), Consumer(set())  # type: ignore[assignment]
    w._assigned1([t0])
    w._revoked1([t0])
    assert w._restore_assigned(w.raw, {}) == {} and snaps.reads == 0


def handed(w: DetectorWorker) -> dict[tuple[str, str], float]:
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
    snaps = Snapshots({b"g|raw|0": seen_snapshot(40), b"g|raw|2": seen_snapshot(60)})
    w = worker(snaps)
    w.assignor1 = assignor = LoadAssignor(PartitionLoads())
    w.handover1.generation = lambda: assignor.generation
    w.raw, w.corr = Consumer({t0, t1}), Consumer(set())  # type: ignore[assignment]
    w.assignor1.on_assignment(ConsumerProtocolAssignment(0, [(RAW, [0, 1])], b""), 4)
    w._assigned1([t0, t1])
    w._restore_assigned(w.raw, {})
    assert snaps.reads == 1 and w.raw.seeks == {t0: 40}
    seen0 = w.intake.seen[0]
    w.handover1.saved(t0, 90)  # a batch processed: its snapshot saved with the next offset
    w._revoked1([t0, t1])
    assert 0 not in w.intake.seen and 1 not in w.intake.seen  # nothing processed during the rebalance
    w.assignor1.on_assignment(ConsumerProtocolAssignment(0, [(RAW, [0, 2])], b""), 5)
    w.raw.assigned = {t0, t2}
    w._assigned1([t0, t2])
    assert w.intake.seen[0] is seen0 and w.raw.seeks[t0] == 90 and t0 not in w.raw.paused
    assert w.raw.paused == {t2} and w._unrestored1 == {t2} and 1 not in w.intake.seen
    w._restore_assigned(w.raw, {})
    assert snaps.reads == 2 and w.raw.seeks[t2] == 60 and w.intake.seen[0] is seen0
    assert handed(w) == {("1", "kept"): 1.0, ("1", "restored"): 3.0}
    # membership lost (evicted): nothing is kept, even if the same partitions come back next
    w._lost1([t0, t2])
    w.assignor1.on_assignment(ConsumerProtocolAssignment(0, [(RAW, [0, 2])], b""), 6)
    w._assigned1([t0, t2])
    assert w.raw.paused == {t0, t2} and 0 not in w.intake.seen


def test_with_range_assignment_nothing_is_kept() -> None:
    c0 = TopicPartition(CORR, 0)
    w = worker(Snapshots({}))
    w.raw, w.corr = Consumer(set()), Consumer({c0})  # type: ignore[assignment]
    w._assigned2([c0])
    w._restore_assigned(w.corr, {})
    state = w.stage2.partitions[0]
    w._revoked2([c0])
    w._assigned2([c0])
    assert w.corr.paused == {c0} and w.stage2.partitions.get(0) is not state


class StateTopic(SnapshotReader):
    """The real reader's parsing over records as the state topic holds them (bytes), without a broker."""

    def __init__(self, records: dict[bytes, bytes]) -> None:
        super().__init__(None, "state", (b"g|",))
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
    good = Intake(lambda a: None, 1000)  # type: ignore[arg-type,return-value]
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
    w = worker(StateTopic(records))  # type: ignore[arg-type]
    w.stage2 = Stage2(lambda: Engine([]), lambda: None, None)  # type: ignore[arg-type]
    w.raw, w.corr = Consumer(set(raw)), Consumer(set(corr))  # type: ignore[assignment]
    w._assigned1(raw)
    w._assigned2(corr)
    polled = {TopicPartition(RAW, 9): [Rec(3)]}
    with caplog.at_level(logging.ERROR, logger="socpipe.detector"):
        assert w._restore_assigned(w.raw, polled) == polled
    # nothing left paused or pending; the good snapshots were restored and sought to
    assert not w.raw.paused and not w.corr.paused and not w._unrestored1 and not w._unrestored2
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
