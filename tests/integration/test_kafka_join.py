"""A group consumer polled with short timeouts, busy in between, gets its assignment and keeps it
(pipeline.kafka_io.poll), over a real broker.

kafka-python 3.0.12 (kafka/coordinator/base.py, join_group_async) keeps a JoinGroup/SyncGroup task in
flight when a poll's timeout ends before it, but schedules a new one when the next poll finds it done:
a join that completed while nobody was polling is thrown away and the member joins again. The worker
polls its correlation consumer for 0-50 ms between stage-1 batches, so the group rebalanced over and
over (seen under load: the survivor of tests/integration/test_sticky_assignment.py computed two
assignments as the group's leader that it never took, and so lost the partitions it held). With
poll(0) a join never completes: this test then waits 10 s for one and fails."""

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
    consumer.subscribe([topic], listener=count)

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
        # kafka-python's leader rejoins once after its first assignment (its metadata snapshot of the
        # subscription was taken before subscribe); after that the member keeps what it has
        for _ in range(10):
            joined()
        settled = count.assigned
        assert settled <= 2, f"{settled} assignments in {10 * BUSY_S:.0f} s: the group kept rebalancing"
        assert all(joined() for _ in range(5)) and count.assigned == settled, "joins thrown away: new rebalances"
    finally:
        consumer.close(autocommit=False)
