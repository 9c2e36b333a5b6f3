"""A group consumer polled with short timeouts, busy in between, gets its assignment and keeps it
(pipeline.kafka_io.poll), over a real broker.

kafka-python 3.0.12 (kafka/coordinator/base.py, join_group_async) keeps a JoinGroup/SyncGroup task in
flight when a poll's timeout ends before it, but schedules a new one when the next poll finds it done:
a join that completed while nobody was polling is thrown away and the member joins again. The worker
polls its correlation consumer for 0-50 ms between stage-1 batches, so the group rebalanced over and
over (seen under load: the survivor of tests/integration/test_sticky_assignment.py computed two
assignments as the group's leader that it never took, and so lost the partitions it held). With
poll(0) a join never completes: this test then waits 10 s for one and fails. And the leader's first
assignment is its only one (`pipeline.kafka_io.subscribe`): it rejoined once right after it, with a
plain `subscribe`."""

from __future__ import annotations

import time

import pytest
from kafka import ConsumerRebalanceListener

from collectors.configfile import KafkaConfig
from pipeline import kafka_io
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

BUSY_S = 0.3  # the work between two polls of this consumer (a stage-1 batch)


class Count(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.assigned = 0

    def on_partitions_revoked(self, revoked: object) -> None:
        pass

    def on_partitions_assigned(self, assigned: object) -> None:
        self.assigned += 1


@pytest.mark.timeout(120)
def test_a_consumer_polled_with_no_wait_between_busy_spells_joins_its_group_once(kafka_bootstrap, unique) -> None:
    cfg = KafkaConfig(bootstrap=kafka_bootstrap)
    topic = group = f"join-{unique}"
    kafka_io.ensure_topics(cfg, {topic: {"partitions": 2}})
    consumer = kafka_io.consumer(cfg, group)
    # as the worker does (pipeline.worker.consumers): join once the topic's partitions are in metadata
    wait_for(lambda: consumer.partitions_for_topic(topic), 30, what="the topic's partitions")
    count = Count()
    kafka_io.subscribe(consumer, [topic], count)

    def joined() -> bool:
        kafka_io.poll(consumer, timeout_ms=0)
        time.sleep(BUSY_S)
        return len(consumer.assignment()) == 2

    try:
        wait_for(
            joined,
            10,
            interval_s=0,
            what=f"an assignment while polled with timeout 0 every {BUSY_S} s",
            progress=lambda: count.assigned,
        )
        # kafka-python's leader rejoined once after its first assignment (its metadata snapshot of the
        # subscription was taken before subscribe: kafka_io.subscribe refreshes it); one join, then the
        # member keeps what it has
        for _ in range(10):
            joined()
        settled = count.assigned
        assert settled == 1, f"{settled} assignments in {10 * BUSY_S:.0f} s: the group rebalanced again"
        assert all(joined() for _ in range(5)) and count.assigned == settled, "joins thrown away: new rebalances"
    finally:
        consumer.close(autocommit=False)


@pytest.mark.timeout(120)
def test_a_starting_worker_joins_each_group_once(kafka_bootstrap, unique) -> None:
    """The worker's consumers as it builds and subscribes them (StageConsumers), polled as its loop does:
    one assignment per group. With a plain subscribe each consumer, the leader of its group, rejoined
    right after its first assignment (two assignments, generation 2): one more rebalance at every start."""
    from pipeline.detector_config import DetectorConfig
    from pipeline.worker.consumers import StageConsumers

    cfg = DetectorConfig(
        kafka=KafkaConfig(bootstrap=kafka_bootstrap),
        group_id=f"start-{unique}",
        raw_topic=f"start-raw-{unique}",
        correlation_topic=f"start-corr-{unique}",
    )
    kafka_io.ensure_topics(cfg.kafka, {cfg.raw_topic: {"partitions": 2}, cfg.correlation_topic: {"partitions": 2}})
    consumers = StageConsumers(cfg)
    counts = Count(), Count()
    try:
        consumers.subscribe(*counts)
        both = (consumers.raw, consumers.corr)

        def assigned() -> bool:
            for c in both:
                kafka_io.poll(c, 200)
            return all(len(c.assignment()) == 2 for c in both)

        wait_for(assigned, 30, interval_s=0, what="both consumers assigned")
        settle = time.monotonic() + 5  # a rejoin came within a second of the first assignment
        while time.monotonic() < settle:
            assigned()
        assert [c.assigned for c in counts] == [1, 1]
        assert (consumers.assignor1.generation, consumers.assignor2.generation) == (1, 1)  # type: ignore[union-attr]
    finally:
        consumers.close()
