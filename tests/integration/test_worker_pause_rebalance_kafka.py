"""A rebalance while Elasticsearch refuses writes, over a real broker and kafka-python: worker A holds the
four partitions and has processed a batch of each (no snapshot yet: its writes are held up), then B
joins. A's keep-alive polls complete the rebalance within the pause (with poll(0) they never did: the
group rebalanced every ~3 s until the outage ended); the partitions A keeps resume after the batch (they
were sought back to their last snapshot and read again) and are committed there; the others are B's.
The unit tests with a fake consumer: tests/unit/test_worker_pause_rebalance.py."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
from kafka import TopicPartition

from collectors.configfile import KafkaConfig
from pipeline import kafka_io
from pipeline.elastic.indexer import IndexResult
from pipeline.worker.assign import LoadAssignor, PartitionLoads
from pipeline.worker.intake import Intake
from pipeline.worker.rebalance import Rebalance, stage_partitions
from pipeline.worker.sink import AlertSink
from pipeline.worker.stages import Stage2
from pipeline.worker_metrics import WorkerMetrics
from tests.unit.test_worker_restore import FakeSnapshots

pytestmark = pytest.mark.integration

PARTITIONS, SNAPSHOT_AT, BATCH = 4, 10, 20


class DownWhile:
    """An event indexer whose Elasticsearch refuses writes while `down()` (at most `limit_s`)."""

    def __init__(self, down: Any, limit_s: float) -> None:
        self.down, self.until = down, time.monotonic() + limit_s

    def index(self, events: list[dict[str, Any]]) -> IndexResult:
        if self.down() and time.monotonic() < self.until:
            return IndexResult(retry=list(events))
        return IndexResult(created=[e["_id"] for e in events])


@pytest.mark.timeout(120)
def test_a_rebalance_during_an_outage_completes_and_kept_partitions_resume_after_their_batch(kafka_bootstrap, unique):
    cfg = KafkaConfig(bootstrap=kafka_bootstrap)
    topic = group = f"pause-rebalance-{unique}"
    kafka_io.ensure_topics(cfg, {topic: {"partitions": PARTITIONS}})
    producer = kafka_io.producer(cfg)

    def produce(n: int) -> None:
        for p in range(PARTITIONS):
            for _ in range(n):
                producer.send(topic, value=b"x", partition=p)
        producer.flush()

    metrics, assignor = WorkerMetrics(), LoadAssignor(PartitionLoads())
    a = kafka_io.consumer(cfg, group, partition_assignment_strategy=(assignor,))
    part1, part2 = stage_partitions(
        metrics,
        group,
        raw=a,
        raw_topic=topic,
        intake=Intake(lambda agent_id: None, 1000),
        corr=SimpleNamespace(),  # no stage 2 here
        correlation_topic="unused",
        stage2=Stage2(lambda: None, lambda: None, None),  # type: ignore[arg-type,return-value]
        generations=(lambda: assignor.generation, None),
    )
    a.subscribe([topic], listener=part1.listener())
    rebalance = Rebalance(FakeSnapshots({}), (part1, part2), metrics, "state")
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    stop, b_holds = threading.Event(), list[int]()
    b_thread = None

    def read_to(offset: int) -> None:
        """Poll (restoring what is assigned) until every partition is read up to `offset`."""
        deadline = time.monotonic() + 60
        while len(a.assignment()) < PARTITIONS or any(a.position(tp) < offset for tp in tps):
            assert time.monotonic() < deadline, f"not read to {offset}: {a.assignment()}"
            polled = rebalance.restore_assigned(part1, a.poll(timeout_ms=500))
            if offset == SNAPSHOT_AT and polled:  # snapshots saved and offsets committed, as the runner does
                for tp, records in polled.items():
                    part1.saved(tp, records[-1].offset + 1)
                a.commit()

    try:
        produce(SNAPSHOT_AT)
        read_to(SNAPSHOT_AT)
        assert part1.handover.offsets == dict.fromkeys(tps, SNAPSHOT_AT)
        # a batch of every partition, processed; its writes find Elasticsearch down
        produce(BATCH)
        read_to(SNAPSHOT_AT + BATCH)
        batch_end = {tp: a.position(tp) for tp in tps}
        generation = assignor.generation

        def b_runs() -> None:
            b = kafka_io.consumer(cfg, group, partition_assignment_strategy=(LoadAssignor(PartitionLoads()),))
            b.subscribe([topic])
            while not stop.is_set():
                b.poll(timeout_ms=200)
                b_holds[:] = sorted(tp.partition for tp in b.assignment())
            b.close(autocommit=False)

        b_thread = threading.Thread(target=b_runs, daemon=True)
        b_thread.start()
        sink = AlertSink(SimpleNamespace(), metrics, lambda payload, reason: None, retry_backoff_max_s=0.5)  # type: ignore[arg-type]
        started = time.monotonic()
        sink.deliver_events(DownWhile(lambda: assignor.generation == generation, 40), [{"_id": "e"}], part1.hold())  # type: ignore[arg-type]
        rebalanced = f"the rebalance did not complete during the pause ({time.monotonic() - started:.0f} s)"
        assert assignor.generation == generation + 1, rebalanced  # one rebalance, not one every few seconds
        kept = a.assignment()
        assert 0 < len(kept) < PARTITIONS and part1.handover.offsets.keys() == kept
        positions = {tp: a.position(tp) for tp in kept}
        assert positions == {tp: batch_end[tp] for tp in kept}, "kept partitions sought back to their snapshots"
        a.commit()
        assert {tp: a.committed(tp) for tp in kept} == positions
        deadline = time.monotonic() + 30
        while b_holds != sorted(set(range(PARTITIONS)) - {tp.partition for tp in kept}):
            assert time.monotonic() < deadline, f"B holds {b_holds}"
            a.poll(timeout_ms=200)
    finally:
        stop.set()
        if b_thread is not None:
            b_thread.join(timeout=10)
        a.close(autocommit=False)
