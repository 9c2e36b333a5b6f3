"""While one stage's batch waits for Elasticsearch, the worker's other consumer stays in its group.

kafka-python leaves a group by itself when its consumer is not polled for `max_poll_interval_ms` (300 s
in socpipe): the worker's loop is blocked in the sink while Elasticsearch refuses writes, and only the
consumer whose batch is waiting was polled (paused) to keep its membership, so an outage longer than
that dropped the other stage's consumer from its group (its partitions moved away, and back after the
outage: two rebalances and two restores of the whole group's state for nothing). The sink's hold
(`Rebalance.hold`) now pauses and polls both. Real broker and kafka-python, with max_poll_interval_ms
at 6 s and an outage of 14 s: the other consumer keeps its member id and generation, returns nothing
while paused, and afterwards every record produced to it before and during the outage exactly once."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
from kafka import KafkaAdminClient, TopicPartition

from collectors.configfile import KafkaConfig
from pipeline import kafka_io
from pipeline.worker.assign import LoadAssignor, PartitionLoads
from pipeline.worker.intake import Intake
from pipeline.worker.rebalance import Rebalance, stage_partitions
from pipeline.worker.sink import AlertSink
from pipeline.worker.stages import Stage2
from pipeline.worker_metrics import WorkerMetrics
from tests.integration.test_worker_pause_rebalance_kafka import DownWhile
from tests.unit.test_worker_restore import FakeSnapshots

pytestmark = pytest.mark.integration

PARTITIONS = 2
MAX_POLL_MS = 6000  # the broker's smallest session timeout (group.min.session.timeout.ms) is 6 s
OUTAGE_S = 14.0  # > 2 x max_poll_interval_ms: kafka-python left the group after 6 s without a poll


@pytest.mark.timeout(120)
@pytest.mark.parametrize("down_stage", ["1", "2"])
def test_the_other_stages_consumer_stays_in_its_group_through_an_outage(kafka_bootstrap, unique, down_stage):
    cfg = KafkaConfig(bootstrap=kafka_bootstrap)
    raw_topic, corr_topic, group = f"other-raw-{unique}", f"other-corr-{unique}", f"other-{unique}"
    kafka_io.ensure_topics(cfg, {raw_topic: {"partitions": PARTITIONS}, corr_topic: {"partitions": PARTITIONS}})
    producer = kafka_io.producer(cfg)

    def produce(topic: str, n: int, tag: str) -> list[bytes]:
        values = [f"{tag}-{p}-{i}".encode() for p in range(PARTITIONS) for i in range(n)]
        for v in values:
            producer.send(topic, value=v, partition=int(v.split(b"-")[1]))
        producer.flush()
        return values

    timing: dict[str, Any] = {
        "max_poll_interval_ms": MAX_POLL_MS,
        "session_timeout_ms": 6000,
        "heartbeat_interval_ms": 1000,
    }
    metrics = WorkerMetrics()
    assignors = LoadAssignor(PartitionLoads()), LoadAssignor(PartitionLoads())
    raw = kafka_io.consumer(cfg, group, partition_assignment_strategy=(assignors[0],), **timing)
    corr = kafka_io.consumer(cfg, group + ".correlation", partition_assignment_strategy=(assignors[1],), **timing)
    stage2 = Stage2(lambda: SimpleNamespace(), lambda: None, None)  # type: ignore[arg-type,return-value]
    part1, part2 = stage_partitions(
        metrics,
        group,
        raw=raw,
        raw_topic=raw_topic,
        intake=Intake(lambda agent_id: None, 1000),
        corr=corr,
        correlation_topic=corr_topic,
        stage2=stage2,
        generations=(lambda: assignors[0].generation, lambda: assignors[1].generation),
    )
    raw.subscribe([raw_topic], listener=part1.listener())
    corr.subscribe([corr_topic], listener=part2.listener())
    rebalance = Rebalance(FakeSnapshots({}), (part1, part2), metrics, "state")
    down, other = (part1, part2) if down_stage == "1" else (part2, part1)
    other_topic = corr_topic if other is part2 else raw_topic
    other_group = group + (".correlation" if other is part2 else "")
    other_assignor = assignors[1] if other is part2 else assignors[0]
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap.split(","), request_timeout_ms=5000)
    got: list[bytes] = []

    def poll_both() -> None:
        for side in (part1, part2):
            polled = rebalance.restore_assigned(side, kafka_io.poll(side.consumer, 200))
            if side is other:
                got.extend(r.value for records in polled.values() for r in records)
            if polled:
                side.consumer.commit()

    def members() -> list[str]:
        described = admin.describe_groups([other_group]).get(other_group) or {}
        return sorted(m["member_id"] for m in described.get("members") or [])

    try:
        first = produce(other_topic, 5, "before")
        deadline = time.monotonic() + 45
        while len(raw.assignment()) < PARTITIONS or len(corr.assignment()) < PARTITIONS or len(got) < len(first):
            assert time.monotonic() < deadline, f"not assigned and read: {raw.assignment()} {corr.assignment()}"
            poll_both()
        assert sorted(got) == sorted(first)
        generation, member = other_assignor.generation, members()
        assert len(member) == 1
        queued = produce(other_topic, 5, "queued")  # fetched or not, none may come back while paused
        sink = AlertSink(SimpleNamespace(), metrics, lambda payload, reason: None, retry_backoff_max_s=1.0)  # type: ignore[arg-type]
        during: list[bytes] = []

        def produce_during() -> None:
            time.sleep(OUTAGE_S / 2)
            during.extend(produce(other_topic, 5, "during"))

        producing = threading.Thread(target=produce_during, daemon=True)
        producing.start()
        started = time.monotonic()
        sink.deliver_events(DownWhile(lambda: True, OUTAGE_S), [{"_id": "e"}], rebalance.hold(down))  # type: ignore[arg-type]
        assert time.monotonic() - started >= OUTAGE_S - 1
        producing.join(10)
        still = members()
        assert still == member, f"the other stage's consumer left its group during the outage: {member} -> {still}"
        got.clear()
        deadline = time.monotonic() + 30
        while len(got) < len(queued) + len(during):
            assert time.monotonic() < deadline, f"read {len(got)} of {len(queued) + len(during)} after the outage"
            poll_both()
        for _ in range(5):
            poll_both()  # anything read twice would show now
        assert sorted(got) == sorted(queued + during), "records lost or read twice"
        assert other_assignor.generation == generation, "the other stage's group rebalanced during the outage"
        tps = [TopicPartition(other_topic, p) for p in range(PARTITIONS)]
        assert sum(other.consumer.committed(tp) or 0 for tp in tps) == len(first) + len(queued) + len(during)
    finally:
        admin.close()
        producer.close()
        raw.close(autocommit=False)
        corr.close(autocommit=False)
