"""A partition paused while kafka-python still holds records fetched for it, and resumed after other
partitions were read, is read again to its end (pipeline.kafka_io.resume), over a real broker.

kafka-python 3.0.12 parks such records and gives them back only into an empty in-line slot, which is
never empty again once another partition's records passed through it: the partition was left out of
every fetch from then on (seen: stuck at offset 4 of 60, forever). The worker pauses and resumes
subsets of its partitions (new ones until their snapshots are restored, everything during an
Elasticsearch outage but those assigned meanwhile, those whose restore waits for the state topic:
pipeline.worker.rebalance), so every resume of socpipe goes through `kafka_io.resume`. This is the
smallest sequence that stalls: one consumer of the worker's settings, a group, two partitions."""

from __future__ import annotations

import pytest
from kafka import TopicPartition

from collectors.configfile import KafkaConfig
from pipeline import kafka_io
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

RECORDS, PER_POLL = 60, 4


@pytest.mark.timeout(120)
def test_a_partition_paused_with_records_held_is_read_to_its_end_after_resume(kafka_bootstrap, unique) -> None:
    cfg = KafkaConfig(bootstrap=kafka_bootstrap)
    topic = group = f"resume-{unique}"
    kafka_io.ensure_topics(cfg, {topic: {"partitions": 2}})
    producer = kafka_io.producer(cfg)
    for partition in (0, 1):
        for i in range(RECORDS):
            producer.send(topic, value=b"%d" % i, partition=partition)
    producer.flush()
    producer.close()
    consumer = kafka_io.consumer(cfg, group, [topic])
    read: dict[int, int] = {0: 0, 1: 0}

    def poll(until: dict[int, int]) -> bool:
        """Poll once; whether every partition in `until` has been read up to its count."""
        for tp, records in consumer.poll(timeout_ms=200, max_records=PER_POLL).items():
            assert records[0].offset == read[tp.partition], "records lost or read twice"
            read[tp.partition] += len(records)
        return all(read[p] >= n for p, n in until.items())

    try:
        # the first batch of one partition: the rest of its fetch (all 60 came in one response) is held
        wait_for(lambda: poll({}) and any(read.values()), 30, interval_s=0, what="the first records")
        first = next(p for p, n in read.items() if n)
        paused, other = TopicPartition(topic, first), TopicPartition(topic, 1 - first)
        consumer.pause(paused)
        wait_for(lambda: poll({other.partition: RECORDS}), 30, interval_s=0, what="the other partition read")
        kafka_io.resume(consumer, paused)
        wait_for(
            lambda: poll({first: RECORDS}),
            10,
            interval_s=0,
            what=f"partition {first}, paused at {read[first]} with records held, read to {RECORDS} after resume",
        )
        assert consumer.position(paused) == RECORDS and read == {0: RECORDS, 1: RECORDS}
    finally:
        consumer.close(autocommit=False)
