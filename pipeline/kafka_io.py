"""Kafka at the edge: producer/consumer/admin construction, topic creation, reading a topic from a
point in time, and polling (`poll`) and resuming paused partitions (`resume`) around two kafka-python
3.0.12 defects, in one place.

The settings themselves live in `collectors.kafka_settings` (one home for the agent and the SOC).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from collectors.kafka_settings import SOC_CONSUMER, SOC_PRODUCER
from pipeline.config import KafkaConfig

log = logging.getLogger("socpipe.kafka")


def producer(cfg: KafkaConfig, **overrides: Any) -> KafkaProducer:
    kw = {**SOC_PRODUCER, **overrides}
    return KafkaProducer(**cfg.client_kwargs(), **kw)


def consumer(
    cfg: KafkaConfig, group_id: str | None, topics: list[str] | None = None, **overrides: Any
) -> KafkaConsumer:
    kw = {**SOC_CONSUMER, "group_id": group_id, **overrides}
    c = KafkaConsumer(**cfg.client_kwargs(), **kw)
    if topics:
        c.subscribe(topics)
    return c


JOIN_WAIT_MS = 10_000  # longest wait in one poll for a group join under way (the session timeout)


def poll(consumer: KafkaConsumer, timeout_ms: int, max_records: int | None = None) -> dict[TopicPartition, list[Any]]:
    """`consumer.poll`, except that a group join under way is waited for (up to JOIN_WAIT_MS) before it:
    the one way socpipe polls a group consumer.

    kafka-python 3.0.12 (kafka/coordinator/base.py, `join_group_async`) runs JoinGroup + SyncGroup as one
    task on its IO thread and, when a poll's timeout ends first, leaves it in flight for the next poll;
    but the next poll starts a new task `if self._join_task is None or self._join_task.is_done`, so a
    join that completed while nobody was polling is thrown away and the member joins again, which
    starts another rebalance of the whole group. The worker polls its correlation consumer for 0-50 ms
    between stage-1 batches: its group rebalanced over and over, the assignments it computed never
    taken (with timeout 0 a join never completes). Waiting here until the join is done takes its
    result inside one wait. A join the broker holds longer (members slow to rejoin) stays in flight and
    is waited for again at the next poll; should it complete in between, it is still lost, once: the
    rejoin it causes completes within the wait (tests/integration/test_kafka_join.py). While a join is
    under way this call takes up to JOIN_WAIT_MS whatever `timeout_ms` says."""
    coordinator = getattr(consumer, "_coordinator", None)
    if getattr(consumer, "config", {}).get("group_id") is not None and coordinator is not None:
        if coordinator.need_rejoin():
            coordinator.ensure_active_group(timeout_ms=JOIN_WAIT_MS)
    kw = {} if max_records is None else {"max_records": max_records}
    polled: dict[TopicPartition, list[Any]] = consumer.poll(timeout_ms=timeout_ms, **kw)
    return polled


def resume(consumer: KafkaConsumer, *partitions: TopicPartition) -> None:
    """Resume fetching `partitions`: the one way socpipe resumes a paused partition.

    kafka-python 3.0.x (read in 3.0.12, kafka/consumer/fetcher.py `fetched_records`) parks the parsed
    records it still holds of a partition paused mid-batch (`Fetcher._paused_partition_records`) and
    gives them back only into an empty in-line slot (`if self._next_partition_records is None`). Once
    another partition's records went through that slot it holds their drained `PartitionRecords`
    (falsy, never reset to None), and `_fetchable_partitions` leaves every parked partition out of the
    fetch requests: after `resume()` the partition was never read again, silently (its lag only grew).
    `seek()` does not clear it (it moves the position, not the parked records). Dropping the parked
    records of every partition that is not paused now costs one fetch (the position never moved past
    what poll returned) and lets the fetcher read them again (tests/integration/test_kafka_resume.py).
    """
    consumer.resume(*partitions)
    parked = getattr(getattr(consumer, "_fetcher", None), "_paused_partition_records", None)
    if not isinstance(parked, dict) or not parked:  # nothing held, or a kafka-python without the parking
        return
    paused = consumer.paused()
    released = [tp for tp in list(parked) if tp not in paused]
    for tp in released:
        parked.pop(tp).drain()
    if released:
        log.info(
            "kafka.resume released_parked=%s",
            ",".join(f"{tp.topic}:{tp.partition}" for tp in sorted(released)),
        )


def read_since(cfg: KafkaConfig, topic: str, since_epoch: float) -> Iterator[tuple[int, int, bytes]]:
    """(partition, offset, value) of every record of `topic` written since `since_epoch`, until each
    partition has reached the end it had when reading started. No consumer group (nothing committed)."""
    c = consumer(cfg, None, consumer_timeout_ms=10_000)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
        if not parts:
            raise LookupError(f"topic {topic} has no partitions (or does not exist)")
        c.assign(parts)
        offsets = c.offsets_for_times({tp: int(since_epoch * 1000) for tp in parts})
        ends = c.end_offsets(parts)
        for tp in parts:
            found = offsets.get(tp)
            c.seek(tp, found.offset if found is not None else ends[tp])
        done = {tp for tp in parts if c.position(tp) >= ends[tp]}
        while len(done) < len(parts):
            polled = c.poll(timeout_ms=2000, max_records=2000)
            if not polled:
                break
            for tp, msgs in polled.items():
                for msg in msgs:
                    yield tp.partition, msg.offset, msg.value
                if c.position(tp) >= ends[tp]:
                    done.add(tp)
    finally:
        c.close()


def ensure_topics(cfg: KafkaConfig, topics: dict[str, dict[str, Any]]) -> None:
    """Create missing topics: {name: {"partitions": n, "config": {...}}}. Existing ones are left alone.

    The replication factor is the cluster's `default.replication.factor` (and `min.insync.replicas` its
    own default) unless a spec names one: 1 on a one-broker stack, 3 on `stack up --brokers 3` or a
    production cluster, without a socpipe setting that could disagree with the brokers."""
    admin = KafkaAdminClient(**cfg.client_kwargs(), client_id="socpipe-admin")
    try:
        existing = set(admin.list_topics())
        new = [
            NewTopic(name, spec.get("partitions", 4), spec.get("replication", -1), topic_configs=spec.get("config", {}))
            for name, spec in topics.items()
            if name not in existing
        ]
        if new:
            try:
                admin.create_topics(new)
                log.info("kafka.topics.created names=%s", ",".join(t.name for t in new))
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
