"""The detector worker's two Kafka consumers, and how partitions are shared among workers.

Stage 1 consumes the raw topic in group `group_id`, stage 2 the correlation topic in group
`group_id.correlation`, so adding workers scales both (pipeline.worker.runner wires them).

Partitions go to workers by the lines each received lately, keeping what each holds
(pipeline.worker.assign): records from the end offsets of both topics, sampled every LOAD_SAMPLE_S
(`sample_loads_if_due`), lines per record from what stage 1 consumes (the runner's `loads.observe`).
One assignor per consumer (each remembers its own assignment); range is the fallback all socpipe
versions share. State of partitions given back to this worker is kept through the rebalance
(pipeline.worker.handover), not restored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from kafka.errors import KafkaError

from pipeline import kafka_io
from pipeline.detector_config import DetectorConfig
from pipeline.worker.assign import LoadAssignor, PartitionLoads

log = logging.getLogger("socpipe.detector")

LOAD_SAMPLE_S = 5.0  # how often the end offsets of both topics are read, for the load-balancing assignor


def _await_partitions(consumer: KafkaConsumer, topic: str, timeout_s: float = 30.0) -> None:
    """Join only once the topic's partitions are in metadata: a group that joins while a just-created
    topic has none gets no assignment, and kafka-python did not rebalance onto it later."""
    deadline = time.monotonic() + timeout_s
    while not kafka_io.partitions_for(consumer, topic):  # KafkaTimeoutError: the brokers do not answer
        if time.monotonic() > deadline:
            log.warning(
                "detector.topic_without_partitions topic=%s waited_s=%.0f action=subscribe_anyway", topic, timeout_s
            )
            return
        time.sleep(0.2)


def _forming_generation(consumer: KafkaConsumer) -> Callable[[], int | None]:
    """The consumer's generation as its coordinator has it now: while the leader assigns, the one the
    JoinGroup response just gave (kafka-python sets it before calling the assignor)."""
    return lambda: consumer.group_metadata().generation_id


class StageConsumers:
    """`raw` (stage 1) and `corr` (stage 2), created but not yet subscribed; `loads` feeds the assignors."""

    def __init__(self, cfg: DetectorConfig) -> None:
        self.cfg = cfg
        self.loads = PartitionLoads()
        self._next_load_sample = 0.0
        self.assignor1 = self.assignor2 = None
        fallback: tuple[Any, ...] = (RangePartitionAssignor, RoundRobinPartitionAssignor)
        if cfg.partition_assignment == "load":
            self.assignor1, self.assignor2 = LoadAssignor(self.loads), LoadAssignor(self.loads)
        # A topic created moments ago may have no partition metadata yet at the first join; refresh
        # metadata often enough that the group rebalances onto it within seconds, not the 5-min default.
        self.raw = kafka_io.consumer(
            cfg.kafka,
            cfg.group_id,
            metadata_max_age_ms=5000,
            partition_assignment_strategy=(self.assignor1, *fallback) if self.assignor1 else fallback,
        )
        self.corr = kafka_io.consumer(
            cfg.kafka,
            cfg.group_id + ".correlation",
            metadata_max_age_ms=5000,
            partition_assignment_strategy=(self.assignor2, *fallback) if self.assignor2 else fallback,
        )
        # the generation the coordinator gave the join being assigned: claims of it or later are forged
        if self.assignor1 is not None and self.assignor2 is not None:
            self.assignor1.forming = _forming_generation(self.raw)
            self.assignor2.forming = _forming_generation(self.corr)

    def generations(self) -> tuple[Callable[[], int] | None, Callable[[], int] | None]:
        """Each consumer's group generation as its load assignor saw it (None: range/round-robin)."""
        a1, a2 = self.assignor1, self.assignor2
        return ((lambda: a1.generation) if a1 else None, (lambda: a2.generation) if a2 else None)

    def subscribe(self, raw_listener: Any, corr_listener: Any) -> None:
        """Join both groups (each once its topic has partitions in metadata)."""
        _await_partitions(self.raw, self.cfg.raw_topic)
        kafka_io.subscribe(self.raw, [self.cfg.raw_topic], raw_listener)
        _await_partitions(self.corr, self.cfg.correlation_topic)
        kafka_io.subscribe(self.corr, [self.cfg.correlation_topic], corr_listener)

    def sample_loads_if_due(self) -> None:
        """End offsets of both topics every LOAD_SAMPLE_S, for the assignor (when this worker leads the group)."""
        if time.monotonic() < self._next_load_sample:
            return
        self._next_load_sample = time.monotonic() + LOAD_SAMPLE_S
        now = time.monotonic()
        for consumer, topic in ((self.raw, self.cfg.raw_topic), (self.corr, self.cfg.correlation_topic)):
            try:  # the topic's partitions are in metadata once subscribed; if not, fetched for 2 s at most
                parts = kafka_io.partitions_for(consumer, topic, timeout_ms=2000)
                if not parts:
                    continue
                ends = consumer.end_offsets([TopicPartition(topic, p) for p in parts], timeout_ms=2000)
            except KafkaError as exc:  # the broker is busy or away: the next sample will do
                log.debug("detector.load_sample_failed topic=%s error=%s", topic, exc)
                continue
            self.loads.sample(topic, now, {tp.partition: off for tp, off in ends.items()})

    def close(self) -> None:
        """Leave both groups without committing (offsets are committed after each batch)."""
        for c in (self.raw, self.corr):
            try:
                c.close(autocommit=False)
            except Exception:  # closing must not hide the reason we are stopping
                log.exception("detector.close_consumer_failed")
