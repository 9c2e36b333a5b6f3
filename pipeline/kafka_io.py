"""Kafka at the edge: producer/consumer/admin construction, topic creation, reading a topic from a
point in time, and subscribing (`subscribe`), polling (`poll`) and resuming paused partitions
(`resume`) around three kafka-python 3.0.12 defects, in one place; metadata fetches that end
(`fetch_metadata`, `partitions_for`).

The settings themselves live in `collectors.kafka_settings` (one home for the agent and the SOC).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaTimeoutError, TopicAlreadyExistsError
from kafka.structs import MemberState

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
        subscribe(c, topics)
    return c


def subscribe(consumer: KafkaConsumer, topics: list[str], listener: Any = None, timeout_ms: int | None = None) -> None:
    """`consumer.subscribe`, then one metadata fetch of every topic (`fetch_metadata`, what
    `consumer.topics()` does, bounded by `timeout_ms`): the one way socpipe subscribes.

    kafka-python 3.0.12's coordinator keeps a snapshot of the subscribed topics' partitions, taken at
    construction (nothing subscribed yet) and refreshed only by a metadata response; the group leader
    records it with its assignment and rejoins whenever the two differ. Subscribing and polling at once,
    the leader's first assignment went out with the empty snapshot, the metadata response that came
    right after differed, and the leader joined again: one more rebalance of the whole group at every
    worker start (tests/integration/test_kafka_join.py). The fetch after subscribing refreshes the
    snapshot before the first join. No answer within the timeout: KafkaTimeoutError (`fetch_metadata`)."""
    if listener is None:
        consumer.subscribe(topics)
    else:
        consumer.subscribe(topics, listener=listener)
    fetch_metadata(consumer, timeout_ms)


# what fetch_metadata uses of kafka-python 3.0.12's consumer (absent: consumer.topics(), unbounded)
_METADATA_INTERNALS = ("_cluster", "_net", "_manager")


def _bounded_fetch_possible(consumer: KafkaConsumer) -> bool:
    if not all(hasattr(consumer, name) for name in _METADATA_INTERNALS):
        return False
    cluster = consumer._cluster
    return all(
        hasattr(cluster, name)
        for name in (
            "request_update",
            "need_all_topic_metadata",
            "metadata_refresh_in_progress",
            "partitions_for_topic",
        )
    ) and hasattr(consumer._manager, "wait_for")


def fetch_metadata(consumer: KafkaConsumer, timeout_ms: int | None = None) -> None:
    """Fetch the metadata of every topic, as `consumer.topics()` does, but give up after `timeout_ms`
    (default: the consumer's `request_timeout_ms`, the bound kafka-python puts on one request) with a
    KafkaTimeoutError naming the brokers and the wait: the one way socpipe fetches metadata.

    kafka-python 3.0.12's `topics()` / `partitions_for_topic()` wait for the metadata future without a
    timeout (`_fetch_all_topic_metadata`: `wait_for(future, None)`). The future fails when a request
    sent for it fails or times out, but not while none can be sent: a refresh loop still bootstrapping
    (no deadline there), or no broker ready (NodeNotReadyError, retried without failing the future). A
    broker that accepts connections and never answers then held a worker's start forever, without a
    word (tests/unit/test_kafka_io_metadata.py); now the start fails with a message (`detect run`: exit 1).
    """
    wait_ms = consumer.config["request_timeout_ms"] if timeout_ms is None else timeout_ms
    if not _bounded_fetch_possible(consumer):  # a kafka-python whose internals are not those read here
        consumer.topics()
        return
    cluster, net, manager = consumer._cluster, consumer._net, consumer._manager
    deadline = time.monotonic() + wait_ms / 1000

    def wait(future: Any) -> None:
        left_ms = max(1, int((deadline - time.monotonic()) * 1000))
        try:
            net.run(manager.wait_for, future, left_ms)
        except KafkaTimeoutError as exc:
            brokers = ",".join(consumer.config["bootstrap_servers"])
            raise KafkaTimeoutError(
                f"no metadata from Kafka at {brokers} within {wait_ms / 1000:g} s "
                "(the brokers accept connections but do not answer, or none is ready)"
            ) from exc

    # as consumer.topics(): a refresh under way may not ask for every topic; let it end, then ask again
    if cluster.metadata_refresh_in_progress:
        wait(cluster.request_update())
    stash = cluster.need_all_topic_metadata
    cluster.need_all_topic_metadata = True
    try:
        wait(cluster.request_update())
    finally:
        cluster.need_all_topic_metadata = stash


def partitions_for(consumer: KafkaConsumer, topic: str, timeout_ms: int | None = None) -> set[int]:
    """`consumer.partitions_for_topic(topic)` whose metadata fetch (when the topic is not in the
    consumer's metadata yet) ends after `timeout_ms` (`fetch_metadata`). Empty: no such topic yet."""
    if not _bounded_fetch_possible(consumer):
        return set(consumer.partitions_for_topic(topic) or ())
    partitions = consumer._cluster.partitions_for_topic(topic)
    if partitions is None:
        fetch_metadata(consumer, timeout_ms)
        partitions = consumer._cluster.partitions_for_topic(topic)
    return set(partitions or ())


def poll(consumer: KafkaConsumer, timeout_ms: int, max_records: int | None = None) -> dict[TopicPartition, list[Any]]:
    """`consumer.poll`, after taking in a group join that kafka-python completed since the last poll:
    the one way socpipe polls a group consumer.

    kafka-python 3.0.12 (kafka/coordinator/base.py, `join_group_async`) runs JoinGroup + SyncGroup as one
    task on its IO thread and, when a poll's timeout ends first, leaves it in flight for the next poll;
    but the next poll starts a new task `if self._join_task is None or self._join_task.is_done`, so a
    join that completed while nobody was polling is thrown away and the member joins again, which
    starts another rebalance of the whole group. The worker polls its correlation consumer for 0-50 ms
    between stage-1 batches: its group rebalanced over and over, the assignments it computed never
    taken (with timeout 0 a join never completed). `_take_finished_join` applies such a join as
    `join_group_async` does with the one it awaited (tests/integration/test_kafka_join.py). Waiting in
    the poll for the join instead (tried) held the worker's other group back: its JoinGroup went out
    a heartbeat later, and two workers waiting on each other's other group waited out the wait."""
    _take_finished_join(consumer)
    kw = {} if max_records is None else {"max_records": max_records}
    polled: dict[TopicPartition, list[Any]] = consumer.poll(timeout_ms=timeout_ms, **kw)
    return polled


# what _take_finished_join uses of kafka-python 3.0.12's coordinator (absent: it does nothing)
_JOIN_INTERNALS = (
    "_join_task",
    "rejoining",
    "rejoin_needed",
    "_lock",
    "_enable_heartbeat",
    "_generation",
    "_net",
    "_on_join_complete_async",
)


def _take_finished_join(consumer: KafkaConsumer) -> None:
    """A join task kafka-python completed with nobody polling: its assignment applied (the listener
    called) as `join_group_async` does after awaiting it, instead of the task being dropped. Nothing
    when the task is under way, failed (kafka-python retries), or the coordinator is not the one read."""
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is None or not all(hasattr(coordinator, name) for name in _JOIN_INTERNALS):
        return
    task = coordinator._join_task
    if task is None or not task.is_done or task.exception is not None or not coordinator.rejoining:
        return
    coordinator._join_task = None
    with coordinator._lock:
        coordinator.rejoining = False
        coordinator.rejoin_needed = False
        coordinator.state = MemberState.STABLE
        coordinator._enable_heartbeat()
    generation = coordinator._generation
    log.info("kafka.join_taken_after_poll group=%s generation=%s", coordinator.group_id, generation.generation_id)
    coordinator._net.run(
        coordinator._on_join_complete_async,
        generation.generation_id,
        generation.member_id,
        generation.protocol,
        task.value,
    )


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
        parts = [TopicPartition(topic, p) for p in sorted(partitions_for(c, topic))]
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


def read_records(cfg: KafkaConfig, topic: str, since_epoch: float | None = None, tail: int | None = None) -> list[Any]:
    """Kafka's records of `topic` (headers, timestamps and all) from `since_epoch` (else the start),
    at most the last `tail` of each partition, until each partition's end when reading started. No
    consumer group: nothing committed, no group of the workers touched (what an operator's listing of a
    quarantine or dead-letter topic needs). KafkaError when Kafka does not answer."""
    c = consumer(cfg, None, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(partitions_for(c, topic))]
        if not parts:
            return []
        c.assign(parts)
        ends, starts = c.end_offsets(parts), c.beginning_offsets(parts)
        found = c.offsets_for_times({tp: int(since_epoch * 1000) for tp in parts}) if since_epoch is not None else {}
        for tp in parts:
            at = starts[tp]
            if since_epoch is not None:
                hit = found.get(tp)
                at = hit.offset if hit is not None else ends[tp]
            if tail is not None:
                at = max(at, ends[tp] - tail)
            c.seek(tp, at)
        out: list[Any] = []
        while any(c.position(tp) < ends[tp] for tp in parts):
            polled = c.poll(timeout_ms=2000, max_records=2000)
            if not polled:
                break
            for tp, msgs in polled.items():
                out += [m for m in msgs if m.offset < ends[tp]]
        return out
    finally:
        c.close(autocommit=False)


def record_ends(cfg: KafkaConfig, sources: set[str]) -> dict[str, int]:
    """The end offset Kafka has now of each `topic/partition` in `sources` (absent: no such partition, or
    not of that form): what a record named by a dead letter must be before. No consumer group."""
    wanted: dict[str, TopicPartition] = {}
    for s in sources:
        topic, _, part = s.rpartition("/")
        if topic and part.isdigit():
            wanted[s] = TopicPartition(topic, int(part))
    if not wanted:
        return {}
    c = consumer(cfg, None, enable_auto_commit=False)
    try:
        have = {t: partitions_for(c, t) for t in {tp.topic for tp in wanted.values()}}
        tps = [tp for tp in set(wanted.values()) if tp.partition in have[tp.topic]]
        ends = c.end_offsets(tps) if tps else {}
        return {s: ends[tp] for s, tp in wanted.items() if tp in ends}
    finally:
        c.close(autocommit=False)


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
