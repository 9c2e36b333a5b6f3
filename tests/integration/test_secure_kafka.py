"""Agents' own Kafka principals on the real secured broker (SASL_SSL, SCRAM-SHA-512, StandardAuthorizer).

An enrolled agent's credential lets it write its raw and heartbeat topics and nothing else: no other
topic (the detector's internal ones included), no topic creation, no reads, no consumer group. A wrong
password or a plaintext client fails at bootstrap. Revocation stops it at its next request, and it
cannot log in again.
"""

from __future__ import annotations

import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import (
    GroupAuthorizationFailedError,
    KafkaError,
    KafkaTimeoutError,
    TopicAuthorizationFailedError,
)

from pipeline import kafka_io
from pipeline.enrolment.kafka_access import KafkaAccess
from tests.integration.secure import secure_kafka  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration


def _producer(**kw) -> KafkaProducer:
    # the agent's own settings: idempotent, acks=all (needs no cluster ACL since Kafka 3.0)
    return KafkaProducer(acks="all", enable_idempotence=True, max_block_ms=8000, request_timeout_ms=8000, **kw)


def _refused_at_bootstrap(**kw) -> bool:
    try:
        KafkaProducer(max_block_ms=4000, bootstrap_timeout_ms=4000, **kw).close()
    except (KafkaTimeoutError, KafkaError):
        return True
    return False


def test_agent_principal_writes_only_its_topics_and_revocation_stops_it(secure_kafka, unique):  # noqa: F811
    raw, hb, internal = f"sec.raw.{unique}", f"sec.hb.{unique}", f"sec.corr.{unique}"
    soc = secure_kafka.soc_config()
    kafka_io.ensure_topics(soc, {internal: {"partitions": 1}})
    access = KafkaAccess(soc, [raw, hb])
    agent_a, agent_b = f"agt-a{unique}", f"agt-b{unique}"
    pw_a, pw_b = access.grant(agent_a), access.grant(agent_b)
    a = _producer(**secure_kafka.client(agent_a, pw_a))
    try:
        # writes its own topics (created by the SOC at enrolment: agents cannot create topics)
        assert a.send(raw, key=b"xa|agt|src", value=b"batch").get(timeout=15).offset >= 0
        assert a.send(hb, key=b"xa|agt", value=b"hb").get(timeout=15).offset >= 0
        # no other topic: the detector's internal ones, or a new one
        for topic in (internal, f"sec.new.{unique}"):
            with pytest.raises(TopicAuthorizationFailedError):
                a.send(topic, value=b"forged").get(timeout=15)
        # no reads: neither by group nor by direct assignment
        with pytest.raises(GroupAuthorizationFailedError):
            c = KafkaConsumer(
                raw, group_id=f"g-{unique}", consumer_timeout_ms=4000, **secure_kafka.client(agent_a, pw_a)
            )
            try:
                list(c)
            finally:
                c.close()
        c = KafkaConsumer(group_id=None, consumer_timeout_ms=4000, **secure_kafka.client(agent_a, pw_a))
        try:
            c.assign([TopicPartition(raw, 0)])
            c.seek_to_beginning()
            with pytest.raises(TopicAuthorizationFailedError):
                for _ in range(10):
                    c.poll(timeout_ms=500)
        finally:
            c.close()
        # wrong password, another agent's password, a plaintext client: refused at bootstrap
        assert _refused_at_bootstrap(**secure_kafka.client(agent_a, "wrong-" + pw_a))
        assert _refused_at_bootstrap(**secure_kafka.client(agent_a, pw_b))
        assert _refused_at_bootstrap(bootstrap_servers=[secure_kafka.bootstrap])
        # the SOC reads what the agent wrote
        soc_reader = KafkaConsumer(group_id=None, consumer_timeout_ms=3000, **secure_kafka.client())
        soc_reader.assign([TopicPartition(raw, p) for p in soc_reader.partitions_for_topic(raw) or []])
        soc_reader.seek_to_beginning()
        assert [m.value for m in soc_reader] == [b"batch"]
        soc_reader.close()
        # revocation: the open connection is refused at its next request, a new login fails
        removed = access.revoke(agent_a)
        assert removed == {"acls": 2, "credential": True}
        started = time.monotonic()
        with pytest.raises(TopicAuthorizationFailedError):
            a.send(raw, value=b"after revocation").get(timeout=15)
        assert time.monotonic() - started < 15
        assert _refused_at_bootstrap(**secure_kafka.client(agent_a, pw_a))
        assert access.revoke(agent_a)["acls"] == 0  # revoking twice is harmless
        # the other agent is untouched
        b = _producer(**secure_kafka.client(agent_b, pw_b))
        assert b.send(raw, value=b"b still writes").get(timeout=15).offset >= 0
        b.close()
    finally:
        a.close(timeout=2)
        access.revoke(agent_b)
