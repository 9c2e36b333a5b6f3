"""Kafka at the edge: producer/consumer/admin construction and topic creation, in one place.

The settings themselves live in `collectors.kafka_settings` (one home for the agent and the SOC).
"""

from __future__ import annotations

import logging
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
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
