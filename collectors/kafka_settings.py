"""Kafka client settings, one home for both sides (kafka-python keyword arguments).

Connection and security settings come from `KafkaConfig.client_kwargs()` (collectors.configfile);
this module holds the tuning each role adds. Every producer is idempotent with `acks=all` and zstd
(see /work/shared/NOTES.md): the broker removes duplicates of a producer's own retries. Consumers
never auto-commit: offsets move only after the sink acknowledged.
"""

from __future__ import annotations

from typing import Any

PRODUCER_BASE: dict[str, Any] = {"acks": "all", "enable_idempotence": True, "compression_type": "zstd"}

# The agent: small linger (a site's lines reach the SOC quickly), bounded blocking so a dead broker
# never stalls tailing (lines wait in the spool), fast reconnects.
AGENT_PRODUCER: dict[str, Any] = {
    **PRODUCER_BASE,
    "linger_ms": 5,
    "batch_size": 1024 * 1024,
    "max_request_size": 4 * 1024 * 1024,
    "max_block_ms": 5000,
    "request_timeout_ms": 15000,
    "reconnect_backoff_ms": 200,
    "reconnect_backoff_max_ms": 2000,
    "retry_backoff_ms": 200,
}

# SOC services (detector worker, coverage tools): correlation inputs, state snapshots, dead letters.
SOC_PRODUCER: dict[str, Any] = {
    **PRODUCER_BASE,
    "linger_ms": 20,
    "batch_size": 262144,
    "max_request_size": 8 * 1024 * 1024,
}

SOC_CONSUMER: dict[str, Any] = {
    "enable_auto_commit": False,
    "auto_offset_reset": "earliest",
    "max_poll_records": 2000,
    "max_poll_interval_ms": 300_000,
    "session_timeout_ms": 10_000,
    "heartbeat_interval_ms": 3_000,
    "fetch_max_bytes": 32 * 1024 * 1024,
    "max_partition_fetch_bytes": 8 * 1024 * 1024,
}
