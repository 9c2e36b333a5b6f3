"""Kafka at the edge: producer/consumer/admin construction and topic creation, in one place.

Settings follow the field notes: kafka-python 3.x defaults to idempotent `acks=all` producers;
consumers never auto-commit (offsets are committed only after the sink acknowledged).
"""

from __future__ import annotations

import logging
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from pipeline.config import KafkaConfig

log = logging.getLogger("socpipe.kafka")


def producer(cfg: KafkaConfig, **overrides: Any) -> KafkaProducer:
    kw: dict[str, Any] = dict(
        acks="all",
        enable_idempotence=True,
        compression_type="zstd",
        linger_ms=20,
        batch_size=262144,
        max_request_size=8 * 1024 * 1024,
    )
    kw.update(overrides)
    return KafkaProducer(**cfg.client_kwargs(), **kw)


def consumer(cfg: KafkaConfig, group_id: str, topics: list[str] | None = None, **overrides: Any) -> KafkaConsumer:
    kw: dict[str, Any] = dict(
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=2000,
        max_poll_interval_ms=300_000,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=3_000,
        fetch_max_bytes=32 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    kw.update(overrides)
    c = KafkaConsumer(**cfg.client_kwargs(), **kw)
    if topics:
        c.subscribe(topics)
    return c


def ensure_topics(cfg: KafkaConfig, topics: dict[str, dict[str, Any]]) -> None:
    """Create missing topics: {name: {"partitions": n, "config": {...}}}. Existing ones are left alone."""
    admin = KafkaAdminClient(**cfg.client_kwargs(), client_id="socpipe-admin")
    try:
        existing = set(admin.list_topics())
        new = [
            NewTopic(name, spec.get("partitions", 4), spec.get("replication", 1), topic_configs=spec.get("config", {}))
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
