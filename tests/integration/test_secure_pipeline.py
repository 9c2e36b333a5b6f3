"""The whole path on the secured broker (`stack up --secure`): enrolment -> agent -> Kafka SASL_SSL ->
detector and coverage -> Elasticsearch / coverage state, then revocation.

* the agent enrols through `socpipe enrol serve` (a real process), which creates its SCRAM user and
  write-only ACLs with the SOC's super user and hands out user, password, mechanism and CA;
* the real agent process (`socpipe agent run`, its config naming no Kafka setting at all) tails an
  auth log and ships it over SASL_SSL as its own principal;
* a real detector process and the coverage service connect as the SOC's super user over SASL_SSL:
  the brute force in the log becomes an alert of the agent's agency, and the agency is monitored;
* with its own valid credentials the agent *can* write a record claiming another agency into the
  shared raw topic (Kafka does not tell consumers who produced a record); the detector quarantines
  every such record (the batch MAC binds it to the agent, see `pipeline.verify`): no alert, no
  coverage for the other agency;
* `socpipe agency revoke-agent` removes the agent's ACLs and credential: the running agent's next
  batch is refused by the broker and nothing more reaches the raw topic.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from collectors.enrol import enroll
from collectors.wire import batch_headers
from pipeline.enrolment.registry import Registry
from tests.integration.conftest import Deadline, es_client, free_port, wait_for
from tests.integration.coverage_helpers import agency, write_inventory
from tests.integration.secure import secure_kafka  # noqa: F401 (fixture)
from tests.integration.test_agent_kafka import start_agent, stop_agent
from tests.integration.test_detector_e2e import brute_force_alerts, brute_force_batches, detector_env
from tests.integration.test_trust_detector import metric, quarantine_reasons, quarantined

pytestmark = pytest.mark.integration

AGENCY, VICTIM = "xa-secure", "xa-victim"


def _auth_lines(attacker: str, tries: int, start_s: int = 0) -> bytes:
    return b"".join(
        f"Nov 28 09:{(start_s + 2 * t) // 60:02d}:{(start_s + 2 * t) % 60:02d} web01 sshd[2201]: Failed password "
        f"for root from {attacker} port {41000 + t} ssh2\n".encode()
        for t in range(tries)
    )


def _raw_count(kafka_kwargs: dict, topic: str) -> int:
    c = KafkaConsumer(group_id=None, **kafka_kwargs)
    try:
        parts = [TopicPartition(topic, p) for p in c.partitions_for_topic(topic) or []]
        return sum(c.end_offsets(parts).values()) - sum(c.beginning_offsets(parts).values())
    finally:
        c.close()


def test_enrolled_agent_to_alert_and_coverage_over_sasl_ssl_then_revoked(  # noqa: F811
    tmp_path, secure_kafka, es_url, unique, procs
):
    raw, hb = f"sraw-{unique}", f"shb-{unique}"
    registry_path = tmp_path / "registry.db"
    registry = Registry(registry_path)
    _, token = registry.create_token(AGENCY)
    victim_agent, _ = registry.enroll_direct(VICTIM, "srv-victim")  # enrolled; its agent never speaks
    inventory = write_inventory(
        tmp_path / "inventory.yaml",
        [
            agency(AGENCY, "commune", [{"name": "auth", "path": "*auth.log", "dataset": "system.auth"}]),
            agency(VICTIM, "commune", [{"name": "auth", "path": "*auth.log", "dataset": "system.auth"}]),
        ],
    )
    enrol_port = free_port()
    cov_cfg = tmp_path / "coverage.yaml"
    cov_cfg.write_text(
        yaml.safe_dump(
            {
                "heartbeat_topic": hb,
                "raw_topic": raw,
                "inventory": str(inventory),
                "registry": str(registry_path),
                "state_dir": str(tmp_path / "coverage"),
                "metrics_host": "127.0.0.1",
                "metrics_port": (cov_metrics := free_port()),
                "heartbeat_interval_s": 2,  # stale beyond 5 s, agent_down after 6 s: slack on a loaded CI host
                "enrolment": {
                    "listen_host": "127.0.0.1",
                    "listen_port": enrol_port,
                    "kafka": {
                        "bootstrap": secure_kafka.bootstrap,
                        "security_protocol": "SASL_SSL",
                        "ca_file": secure_kafka.cafile,
                    },
                },
            }
        )
    )
    soc_env = secure_kafka.soc_env()  # the SOC services log in as the super user over SASL_SSL

    # enrolment: `socpipe enrol serve` makes the agent's principal with the SOC's credentials
    enrol = procs.start("enrol", ["enrol", "serve", "--config", str(cov_cfg)], soc_env)

    def enrolment_up():
        enrol.check_alive()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{enrol_port}/healthz", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    wait_for(enrolment_up, 30, what="the enrolment server")
    ident = enroll(f"http://127.0.0.1:{enrol_port}", token, tmp_path / "agent-state", host="web01")
    enrol.stop()
    assert ident.kafka.sasl_username == ident.agent_id and ident.kafka.sasl_password
    assert ident.kafka.security_protocol == "SASL_SSL" and "BEGIN CERTIFICATE" in ident.kafka.ssl_ca_pem
    stored = json.loads((tmp_path / "agent-state" / "identity.json").read_text())
    assert stored["kafka"]["sasl_password"] == ident.kafka.sasl_password  # kept 0600 by the agent, not in config

    coverage = procs.start("coverage", ["coverage", "run", "--config", str(cov_cfg)], soc_env)
    det_env = {
        **detector_env(secure_kafka.bootstrap, es_url, unique),
        **soc_env,
        "SOCPIPE_RAW_TOPIC": raw,
        "SOCPIPE_REGISTRY": str(registry_path),
        "SOCPIPE_REGISTRY_REFRESH_S": "1",
        "SOCPIPE_QUARANTINE_TOPIC": f"squarantine-{unique}",
        "SOCPIPE_METRICS_PORT": str(metrics_port := free_port()),
    }
    detector = procs.start("detector", ["detect", "run"], det_env)

    # the agent: its config names no Kafka setting; everything comes from identity.json
    logs = tmp_path / "logs"
    logs.mkdir()
    auth = logs / "auth.log"
    auth.write_bytes(_auth_lines("203.0.113.77", 8))
    agent_cfg = tmp_path / "agent.yaml"
    agent_cfg.write_text(
        yaml.safe_dump(
            {
                "state_dir": str(tmp_path / "agent-state"),
                "host": "web01",
                "topic": raw,
                "heartbeat_topic": hb,
                "heartbeat_interval_s": 2,
                "files": [{"paths": [str(auth)], "dataset": "system.auth"}],
                "batch": {"linger_s": 0.1},
            }
        )
    )
    # coverage reads from the end of the topics (what arrives after it started): let it get there first
    wait_for(
        lambda: coverage.check_alive() and "coverage.consuming" in coverage.log_tail(20000),
        60,
        what="the coverage service consuming over SASL_SSL",
    )
    agent = start_agent(agent_cfg, tmp_path / "agent.log")
    es = es_client(es_url)
    try:

        def alert():
            detector.check_alive()
            return [a for a in brute_force_alerts(es, f"t{unique}") if a["organization"]["id"] == AGENCY]

        found = wait_for(alert, 90, what="brute-force alert of the enrolled agent's agency")
        assert found[0]["source"]["ip"] == "203.0.113.77"
        assert found[0]["host"]["name"] == "web01"

        seen: list = []

        def monitored():
            coverage.check_alive()
            status = tmp_path / "coverage" / "status.json"
            if not status.exists():
                return None
            doc = json.loads(status.read_text())
            state = {a["id"]: a["state"] for a in doc.get("agencies", [])}.get(AGENCY)
            seen[:] = [state, metric(cov_metrics, "socpipe_heartbeats_rejected_total")]
            return state == "monitored"

        deadline = Deadline(90)
        while not monitored() and not deadline.expired():
            time.sleep(0.5)
        assert seen and seen[0] == "monitored", (
            f"{AGENCY} not monitored over SASL_SSL: state, rejections = {seen}\n{coverage.log_tail(2000)}"
        )

        # the agent's own principal writes records claiming the other agency: the broker takes them
        # (same raw topic), the detector quarantines each one
        def forged(agent_id: str, mac_secret: str | None):
            b = brute_force_batches(VICTIM, 1, 6, lines_per_batch=6)[0]
            b.agent_id = agent_id
            key, value = b.key(), b.to_bytes()
            ctr = time.time_ns() // 1000
            headers = batch_headers(mac_secret, key, ctr, len(b.lines), "system.auth", value) if mac_secret else []
            return key, value, headers

        as_agent = KafkaProducer(
            **secure_kafka.client(ident.kafka.sasl_username, ident.kafka.sasl_password), acks="all"
        )
        for key, value, headers in (
            forged(ident.agent_id, ident.secret),  # its own id and secret, the other agency's name
            forged(victim_agent, ident.secret),  # the victim's agent id, a MAC made with its own secret
            forged(victim_agent, None),  # the victim's agent id, unsigned
        ):
            as_agent.send(raw, key=key, value=value, headers=headers).get(timeout=15)
        as_agent.close()
        assert quarantine_reasons(metrics_port, 3) == {
            "agency_mismatch": 1,
            "bad_mac": 1,
            "unsigned": 1,
        }
        q = quarantined(f"squarantine-{unique}", 3, **secure_kafka.client())
        assert sorted(dict(r.headers)["quarantine_reason"].decode() for r in q) == [
            "agency_mismatch",
            "bad_mac",
            "unsigned",
        ]
        assert not [a for a in brute_force_alerts(es, f"t{unique}") if a["organization"]["id"] == VICTIM]

        # revocation through the CLI: registry + the broker's ACLs and credential
        before = _raw_count(secure_kafka.client(), raw)
        out = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "agency", "revoke-agent", ident.agent_id, "--config", str(cov_cfg)],
            env={**os.environ, **soc_env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert "removed its Kafka credential and 2 ACL(s)" in out.stdout
        with open(auth, "ab") as f:
            f.write(_auth_lines("203.0.113.78", 3, start_s=40))
        log = tmp_path / "agent.log"
        wait_for(
            lambda: "TopicAuthorization" in log.read_text(errors="replace"),
            30,
            what="the broker refusing the revoked agent",
        )
        time.sleep(2)
        assert _raw_count(secure_kafka.client(), raw) == before, "a revoked agent's batch reached the raw topic"
        doc = json.loads((tmp_path / "coverage" / "status.json").read_text())
        assert {a["id"]: a["state"] for a in doc["agencies"]}[VICTIM] != "monitored"
    finally:
        stop_agent(agent)
        es.close()
        registry.close()
