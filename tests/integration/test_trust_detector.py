"""Issue #17 on the real broker: forged raw batches are quarantined, never detected; a poisoned
sequence number does not blind a source after a detector restart.

A real `socpipe detect run` reads a topic written the way an attacker with Kafka write access would
(and the way an enrolled agent does, `tests.integration.signing`). The quarantine topic and the
worker's /metrics endpoint are read back over real sockets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from typing import Any

from elasticsearch import Elasticsearch
from kafka import KafkaConsumer, KafkaProducer

from collectors.wire import LineBatch, batch_headers
from tests.integration.conftest import Deadline, alert_sources, es_client, free_port, wait_for
from tests.integration.signing import TEST_AGENTS
from tests.integration.test_detector_e2e import BRUTE_FORCE_RULE, brute_force_batches, detector_env

SEQUENCE_ANOMALY_RULE = "5f78ce0e-39be-47d7-bbe8-0cc429188870"


def alerts_of(es: Elasticsearch, prefix: str, agency: str, rule: str = BRUTE_FORCE_RULE) -> list[dict]:
    query = {"bool": {"filter": [{"term": {"rule.id": rule}}, {"term": {"organization.id": agency}}]}}
    return alert_sources(es, prefix, query, size=100)


def metric(port: int, name: str) -> dict[str, float]:
    """label string -> value of one metric family on the worker's /metrics."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:  # not listening yet
        return {}
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            labels, _, value = line.rpartition(" ")
            out[labels[len(name) :]] = float(value)
    return out


def quarantine_reasons(metrics_port: int, want: int) -> dict[str, float]:
    """The detector's quarantined-record counts by reason, once `want` records were quarantined."""
    counts = wait_for(
        lambda: (lambda m: m if sum(m.values()) >= want else None)(
            metric(metrics_port, "socpipe_detector_quarantined_records_total")
        ),
        30,
        what=f"{want} quarantined records in the detector's metric",
    )
    return {k.split('"')[1]: v for k, v in counts.items()}


def quarantined(topic: str, want: int, **client: object) -> list:
    """Up to `want` records of the quarantine topic from its start (a 30 s `Deadline`); `client`: kafka-python
    connection settings (bootstrap_servers, and SASL_SSL ones on the secured listener)."""
    consumer = KafkaConsumer(topic, group_id=None, auto_offset_reset="earliest", **client)
    try:
        got: list[Any] = []  # kafka-python's ConsumerRecords
        deadline = Deadline(30)
        while len(got) < want and not deadline.expired():
            for records in consumer.poll(timeout_ms=1000).values():
                got += records
        return got
    finally:
        consumer.close()


def with_agent(batches: list[LineBatch], agent: str) -> list[LineBatch]:
    for b in batches:
        b.agent_id = agent
    return batches


def test_forged_batches_claiming_another_agency_are_quarantined_never_alerted(kafka_bootstrap, es_url, unique, procs):
    real, victim = f"real-{unique}", f"victim-{unique}"
    env = detector_env(kafka_bootstrap, es_url, unique) | {
        "SOCPIPE_METRICS_PORT": str(port := free_port()),
        "SOCPIPE_QUARANTINE_TOPIC": f"quarantine-{unique}",
        "SOCPIPE_REGISTRY_REFRESH_S": "1",
    }
    reg = TEST_AGENTS.registry()
    real_agent = f"a.{real}"
    real_secret = TEST_AGENTS.secret(real, real_agent)
    revoked = f"old.{victim}"
    revoked_secret = TEST_AGENTS.secret(victim, revoked)
    reg.revoke_agent(revoked)
    active_victim = f"b.{victim}"
    TEST_AGENTS.secret(victim, active_victim)

    def raw(b: LineBatch, secret: str | None, key: bytes | None = None):
        key = key or b.key()
        value = b.to_bytes()
        headers = (
            batch_headers(secret, key, TEST_AGENTS.counter.next(), len(b.lines), "system.auth", value) if secret else []
        )
        return key, headers, value

    forged = [
        # agency A's real agent (its real secret) claims agency B in key and value
        raw(with_agent(brute_force_batches(victim, 1, 6, lines_per_batch=6), real_agent)[0], real_secret),
        # an agent id that was never enrolled
        raw(with_agent(brute_force_batches(victim, 1, 6, lines_per_batch=6), "agt-nobody")[0], "guess"),
        # a revoked agent of B, with its (once valid) secret
        raw(with_agent(brute_force_batches(victim, 1, 6, lines_per_batch=6), revoked)[0], revoked_secret),
        # key names A's own stream (MAC right), the value claims B
        raw(
            with_agent(brute_force_batches(victim, 1, 6, lines_per_batch=6), real_agent)[0],
            real_secret,
            key=f"{real}|{real_agent}|/var/log/auth.log".encode(),
        ),
        # B's real, active agent id, but no MAC (the attacker does not hold its secret)
        raw(with_agent(brute_force_batches(victim, 1, 6, lines_per_batch=6), active_victim)[0], None),
    ]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for key, headers, value in forged:
        producer.send(env["SOCPIPE_RAW_TOPIC"], key=key, value=value, headers=headers)
    for b in brute_force_batches(real, attackers=1, tries=6):  # a genuine attack on A, as the control
        TEST_AGENTS.send(producer, env["SOCPIPE_RAW_TOPIC"], with_agent([b], "a")[0])
    producer.flush()
    producer.close()

    det = procs.start("detector", ["detect", "run", "--config", "config/detector.yaml"], env)
    es = es_client(es_url)
    prefix = env["SOCPIPE_ES_INDEX_PREFIX"]
    wait_for(lambda: det.check_alive() and alerts_of(es, prefix, real), 60, what="the genuine alert of agency A")
    assert quarantine_reasons(port, 5) == {
        "agency_mismatch": 1,
        "unknown_agent": 1,
        "revoked_agent": 1,
        "key_value_mismatch": 1,
        "unsigned": 1,
    }
    records = quarantined(env["SOCPIPE_QUARANTINE_TOPIC"], 5, bootstrap_servers=kafka_bootstrap)
    assert sorted(dict(r.headers)["quarantine_reason"].decode() for r in records) == sorted(
        ["agency_mismatch", "unknown_agent", "revoked_agent", "key_value_mismatch", "unsigned"]
    )
    assert {r.value for r in records} == {v for _k, _h, v in forged}  # kept as they came, for investigation
    # the operator reads them back with the CLI (a real process, real Kafka)
    out = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "detect", "quarantine", "--config", "config/detector.yaml", "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert sorted(r["reason"] for r in rows) == sorted(dict(r.headers)["quarantine_reason"].decode() for r in records)
    assert {r["claimed_agency"] for r in rows} == {victim, real}
    assert all(r["from"].startswith(env["SOCPIPE_RAW_TOPIC"] + "/") for r in rows)
    table = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "detect", "quarantine", "--config", "config/detector.yaml"]
        + ["--reason", "agency_mismatch"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    print(table.stdout)
    assert table.returncode == 0 and table.stdout.splitlines()[0].startswith("TIME")
    assert len(table.stdout.splitlines()) == 2 and victim in table.stdout
    time.sleep(2)
    assert alerts_of(es, prefix, victim) == [], "a forged batch raised an alert for the claimed agency"
    assert det.alive(), det.log_tail()


def test_poisoned_sequence_after_a_restart_does_not_hide_a_real_brute_force(kafka_bootstrap, es_url, unique, procs):
    agency = f"poisoned-{unique}"
    env = detector_env(kafka_bootstrap, es_url, unique) | {"SOCPIPE_METRICS_PORT": str(port := free_port())}
    topic, prefix = env["SOCPIPE_RAW_TOPIC"], env["SOCPIPE_ES_INDEX_PREFIX"]
    attack = brute_force_batches(agency, attackers=1, tries=6, lines_per_batch=2)  # seqs 1..6
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    TEST_AGENTS.send(producer, topic, attack[0])  # seqs 1-2: seen before the restart
    producer.flush()
    det = procs.start("detector-1", ["detect", "run", "--config", "config/detector.yaml"], env)
    wait_for(
        lambda: det.check_alive() and metric(port, "socpipe_detector_lines_total").get("", 0) >= 2,
        60,
        what="the first lines consumed",
    )
    det.stop()  # a deploy

    # An attacker writes the agent's stream with a huge seq, unsigned and with a guessed MAC; and the
    # agent itself (a bug, or its own compromised host) sends one signed far-ahead line.
    far = brute_force_batches(agency, attackers=1, tries=1, lines_per_batch=1)[0]
    far.lines[0].seq = 10**12
    key, headers, value = TEST_AGENTS.record(far)
    producer.send(topic, key=key, value=value)  # unsigned
    producer.send(topic, key=key, value=value, headers=headers[:2] + [("ctr", b"1"), ("mac", b"0" * 64)])
    producer.send(topic, key=key, value=value, headers=headers)  # genuine but far ahead
    for b in attack[1:]:  # the real brute force continues: seqs 3..6
        TEST_AGENTS.send(producer, topic, b)
    producer.flush()
    producer.close()

    port2 = free_port()
    det2 = procs.start(
        "detector-2", ["detect", "run", "--config", "config/detector.yaml"], env | {"SOCPIPE_METRICS_PORT": str(port2)}
    )
    es = es_client(es_url)
    alerts = wait_for(
        lambda: det2.check_alive() and alerts_of(es, prefix, agency), 60, what="the brute-force alert after the poison"
    )
    assert len(alerts) == 1
    assert metric(port2, "socpipe_detector_sequence_anomalies_total").get("", 0) == 1
    # the far-ahead line is itself an alert of the agency, for the analysts (rules/socpipe/sequence_anomaly.yml)
    [anomaly] = wait_for(lambda: alerts_of(es, prefix, agency, SEQUENCE_ANOMALY_RULE), 30, what="the sequence alert")
    [evidence] = anomaly["socpipe"]["evidence"]
    assert evidence["agent"]["id"] == f"agent-1.{agency}" and evidence["socpipe"]["seq"] == 10**12
    assert anomaly["organization"]["id"] == agency and anomaly["kibana"]["alert"]["severity"] == "medium"
    q = metric(port2, "socpipe_detector_quarantined_records_total")
    assert sum(q.values()) == 2 and set(k.split('"')[1] for k in q) == {"unsigned", "bad_mac"}
    assert metric(port2, "socpipe_detector_duplicate_lines_total").get("", 0) == 0
