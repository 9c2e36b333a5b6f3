"""The detector worker over the real Kafka broker and Elasticsearch.

Raw line batches go into Kafka exactly as agents send them; a real `socpipe detect run` process
turns them into alerts. Killing it with SIGKILL mid-stream and restarting it must leave exactly one
alert per brute-forcing address: offsets move only after Elasticsearch acknowledged, correlation
state is restored from its snapshot, and alert ids are deterministic.
"""

from __future__ import annotations

import time

from elasticsearch import Elasticsearch
from kafka import KafkaProducer

from collectors.wire import LineBatch, LogLine
from tests.integration.conftest import alert_sources, es_client, wait_for
from tests.integration.signing import TEST_AGENTS

BRUTE_FORCE_RULE = "f57876af-d49b-4093-b93a-333209ddead0"


def detector_env(kafka_bootstrap: str, es_url: str, unique: str) -> dict[str, str]:
    return {
        "SOCPIPE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "SOCPIPE_ES_URL": es_url,
        "SOCPIPE_ES_INDEX_PREFIX": f"t{unique}",
        "SOCPIPE_GROUP_ID": f"det-{unique}",
        "SOCPIPE_RAW_TOPIC": f"raw-{unique}",
        "SOCPIPE_CORRELATION_TOPIC": f"corr-{unique}",
        "SOCPIPE_STATE_TOPIC": f"state-{unique}",
        "SOCPIPE_DEAD_LETTER_TOPIC": f"dlq-{unique}",
        "SOCPIPE_METRICS_PORT": "0",
        "SOCPIPE_MAX_BATCH_RECORDS": "20",
        "SOCPIPE_INVENTORY": "",
        "SOCPIPE_REGISTRY": str(TEST_AGENTS.path),
    }


def brute_force_batches(agency: str, attackers: int, tries: int, lines_per_batch: int = 3) -> list[LineBatch]:
    """`tries` failed passwords from each of `attackers` addresses in turn, 2 s apart."""
    lines = []
    for a in range(attackers):
        for t in range(tries):
            sec = t * 2
            lines.append(
                f"Nov 28 08:{sec // 60:02d}:{sec % 60:02d} web01 sshd[{1000 + a}]: Failed password for root "
                f"from 198.51.{a // 200}.{a % 200 + 1} port {40000 + t} ssh2"
            )
    batches, seq = [], 0
    for i in range(0, len(lines), lines_per_batch):
        chunk = []
        for text in lines[i : i + lines_per_batch]:
            seq += 1
            chunk.append(LogLine(text, offset=seq * 100, line_no=seq, seq=seq, read_at=time.time()))
        batches.append(LineBatch(agency, "agent-1", "web01", "/var/log/auth.log", chunk, dataset="system.auth"))
    return batches


def produce(kafka_bootstrap: str, topic: str, batches: list[LineBatch]) -> None:
    """Send as enrolled agents do: each batch signed by its agent (enrolled in the test registry)."""
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for b in batches:
        TEST_AGENTS.send(producer, topic, b)
    producer.flush()
    producer.close()


def brute_force_alerts(es: Elasticsearch, prefix: str) -> list[dict]:
    return alert_sources(es, prefix, {"term": {"rule.id": BRUTE_FORCE_RULE}}, size=1000)


def test_brute_force_alert_reaches_elasticsearch(kafka_bootstrap, es_url, unique, procs):
    env = detector_env(kafka_bootstrap, es_url, unique)
    produce(kafka_bootstrap, env["SOCPIPE_RAW_TOPIC"], brute_force_batches("commune-an-phu", attackers=1, tries=6))
    det = procs.start("detector", ["detect", "run", "--config", "config/detector.yaml"], env)
    es = es_client(es_url)
    alerts = wait_for(
        lambda: det.check_alive() and brute_force_alerts(es, env["SOCPIPE_ES_INDEX_PREFIX"]),
        60,
        what="a brute-force alert",
    )
    assert det.alive(), det.log_tail()
    [alert] = alerts
    assert alert["source"]["ip"] == "198.51.0.1"
    assert alert["organization"]["id"] == "commune-an-phu"
    assert alert["event"]["kind"] == "alert"
    assert alert["rule"]["name"] == "SSH Brute Force From One Source"
    assert len(alert["socpipe"]["evidence"]) >= 5


def test_index_events_puts_every_normalised_event_in_the_events_index_once(kafka_bootstrap, es_url, unique, procs):
    """es.index_events wires Kibana's socpipe-events data view: each line becomes one ECS event document
    (typed fields from the template), replays do not double it, and alerts still flow."""
    env = detector_env(kafka_bootstrap, es_url, unique) | {"SOCPIPE_ES_INDEX_EVENTS": "true"}
    batches = brute_force_batches("commune-an-phu", attackers=2, tries=6)
    produce(kafka_bootstrap, env["SOCPIPE_RAW_TOPIC"], batches)
    produce(kafka_bootstrap, env["SOCPIPE_RAW_TOPIC"], batches[:2])  # an agent re-send of the first batches
    det = procs.start("detector", ["detect", "run", "--config", "config/detector.yaml"], env)
    es = es_client(es_url)
    prefix = env["SOCPIPE_ES_INDEX_PREFIX"]

    def events() -> list[dict]:
        es.indices.refresh(index=f"{prefix}-events-*", allow_no_indices=True, ignore_unavailable=True)
        res = es.search(index=f"{prefix}-events-*", size=100, allow_no_indices=True, ignore_unavailable=True)
        return [h["_source"] for h in res["hits"]["hits"]]

    wait_for(lambda: det.check_alive() and len(events()) >= 12, 60, what="12 event documents")
    wait_for(lambda: brute_force_alerts(es, prefix), 30, what="the brute-force alerts too")
    time.sleep(2)  # a duplicate still in flight would show now
    docs = events()
    assert len(docs) == 12, len(docs)
    assert {d["source"]["ip"] for d in docs} == {"198.51.0.1", "198.51.0.2"}
    assert {d["organization"]["id"] for d in docs} == {"commune-an-phu"}
    assert all(d["event"]["dataset"] == "system.auth" for d in docs)
    caps = es.field_caps(index=f"{prefix}-events-*", fields="source.ip")["fields"]["source.ip"]
    assert list(caps) == ["ip"]  # typed by the events template, so Kibana can filter by CIDR


def test_kill9_mid_stream_leaves_no_duplicate_and_no_missing_alert(kafka_bootstrap, es_url, unique, procs):
    env = detector_env(kafka_bootstrap, es_url, unique)
    prefix = env["SOCPIPE_ES_INDEX_PREFIX"]
    attackers = 60
    batches = brute_force_batches("district-tan-chau", attackers=attackers, tries=6)
    half = len(batches) // 2
    produce(kafka_bootstrap, env["SOCPIPE_RAW_TOPIC"], batches[:half])
    es = es_client(es_url)

    det = procs.start("detector-1", ["detect", "run", "--config", "config/detector.yaml"], env)
    wait_for(
        lambda: det.check_alive() and len(brute_force_alerts(es, prefix)) > 0,
        90,
        interval_s=0.05,
        what="the first alerts",
    )
    det.kill9()
    before = len(brute_force_alerts(es, prefix))
    produce(kafka_bootstrap, env["SOCPIPE_RAW_TOPIC"], batches[half:])

    det2 = procs.start("detector-2", ["detect", "run", "--config", "config/detector.yaml"], env)
    wait_for(
        lambda: det2.check_alive() and len(brute_force_alerts(es, prefix)) >= attackers, 120, what=f"{attackers} alerts"
    )
    time.sleep(3)  # anything still in flight would show up as an extra alert now
    alerts = brute_force_alerts(es, prefix)
    assert det2.alive(), det2.log_tail()
    per_address: dict[str, int] = {}
    for a in alerts:
        per_address[a["source"]["ip"]] = per_address.get(a["source"]["ip"], 0) + 1
    assert before < attackers, "the kill came after the whole stream was processed; the test proved nothing"
    assert len(per_address) == attackers, f"missing alerts: {attackers - len(per_address)}"
    assert max(per_address.values()) == 1, {ip: n for ip, n in per_address.items() if n > 1}
