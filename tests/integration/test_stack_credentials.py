"""Deleting the secured stack's credential files and running `socpipe stack up --secure` again, over the
running servers: Kafka SASL and Elasticsearch take the new passwords (the old ones are refused), and
putting the old files back gives the servers the old passwords again (so the rest of the run is as before).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import AuthenticationException
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError, KafkaTimeoutError

from pipeline.config import ElasticsearchConfig
from pipeline.elastic import connect

pytestmark = pytest.mark.integration


@pytest.fixture
def files(es_url) -> dict[str, Path]:
    kafka, es = os.environ.get("SOCPIPE_STACK_KAFKA_SOC_CREDENTIALS"), os.environ.get("SOCPIPE_STACK_ES_CREDENTIALS")
    if not (kafka and es and es_url.startswith("https://")):
        pytest.skip("needs the secured stack (`socpipe stack up --secure`)")
    return {"kafka": Path(kafka), "elasticsearch": Path(es)}


def _stack_up() -> None:
    socpipe = Path(sys.executable).with_name("socpipe")
    proc = subprocess.run([str(socpipe), "stack", "up", "--secure"], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def _kafka(creds: dict[str, str]) -> dict[str, Any]:
    return {
        "bootstrap_servers": [os.environ["SOCPIPE_STACK_KAFKA_SECURE_BOOTSTRAP"]],
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": creds["username"],
        "sasl_plain_password": creds["password"],
        "ssl_cafile": os.environ["SOCPIPE_STACK_KAFKA_CA"],
    }


def _kafka_logs_in(creds: dict[str, str]) -> bool:
    try:
        KafkaProducer(max_block_ms=4000, bootstrap_timeout_ms=4000, **_kafka(creds)).close()
    except (KafkaTimeoutError, KafkaError):
        return False
    return True


def _es_user(es_url: str, c: dict[str, str]) -> str | None:
    """Who Elasticsearch says the credential is; None when it refuses it."""
    cfg = ElasticsearchConfig(
        url=es_url, username=c["username"], password=c["password"], ca_certs=os.environ["SOCPIPE_ES_CA_CERTS"]
    )
    try:
        return str(connect(cfg).security.authenticate()["username"])
    except AuthenticationException:
        return None


def test_deleted_credential_files_get_new_passwords_the_running_servers_take(files, es_url, unique):
    old_text = {k: p.read_text() for k, p in files.items()}
    old_soc, old_es = json.loads(old_text["kafka"]), json.loads(old_text["elasticsearch"])
    try:
        for path in files.values():
            path.unlink()
        _stack_up()
        soc, es = json.loads(files["kafka"].read_text()), json.loads(files["elasticsearch"].read_text())
        assert soc["password"] != old_soc["password"]
        assert all(es[n]["password"] != old_es[n]["password"] for n in old_es)

        # Kafka: produce and consume over SASL_SSL with the new SOC password; the old one is refused
        topic = f"creds-{unique}"
        producer = KafkaProducer(acks="all", max_block_ms=8000, **_kafka(soc))
        producer.send(topic, b"after rotation").get(timeout=10)
        producer.close()
        consumer = KafkaConsumer(group_id=None, consumer_timeout_ms=5000, **_kafka(soc))
        consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []])
        consumer.seek_to_beginning()
        assert [m.value for m in consumer] == [b"after rotation"]
        consumer.close()
        assert not _kafka_logs_in(old_soc)

        # Elasticsearch: every user answers with its new password, none with its old one
        for name, c in es.items():
            assert _es_user(es_url, c) == c["username"], name
            assert _es_user(es_url, old_es[name]) is None, name
    finally:
        for k, path in files.items():  # the old files back: the servers are given the old passwords again
            path.unlink(missing_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.write(fd, old_text[k].encode())
            os.close(fd)
        _stack_up()
    assert _kafka_logs_in(old_soc)
    assert all(_es_user(es_url, c) == c["username"] for c in old_es.values())
