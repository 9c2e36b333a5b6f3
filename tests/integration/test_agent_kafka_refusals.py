"""The agent says why the secured broker refuses it, against the real SASL_SSL + ACL Kafka of
`socpipe stack up --secure`: a revoked agent (credential and ACLs removed while it runs) reads
"not allowed to write <topic>"; the same agent restarted, or one with a wrong password, reads "Kafka
refused the agent's credentials ... may have been revoked; re-enrol"; a CA that did not sign the
broker's certificate reads "certificate not trusted". Each in status.json, in the log once, and --
while Kafka still takes them -- in the heartbeat."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

from kafka import KafkaConsumer

from collectors.agent import Agent
from collectors.config import AgentConfig, FileInputConfig
from collectors.configfile import KafkaConfig
from collectors.identity import Identity
from collectors.wire import Heartbeat
from pipeline.enrolment.kafka_access import KafkaAccess
from tests.integration.conftest import wait_for
from tests.integration.secure import SecureKafka, secure_kafka  # noqa: F401 (fixture)


class RunningAgent:
    def __init__(self, tmp: Path, name: str, sk: SecureKafka, user: str, password: str, cafile: str, raw: str, hb: str):
        self.state = tmp / name
        log = tmp / f"{name}.log"
        log.write_text("")
        self.log = log
        cfg = AgentConfig(
            state_dir=str(self.state),
            topic=raw,
            heartbeat_topic=hb,
            heartbeat_interval_s=1,
            kafka=KafkaConfig(
                bootstrap=sk.bootstrap,
                security_protocol="SASL_SSL",
                sasl_mechanism="SCRAM-SHA-512",
                sasl_username=user,
                sasl_password=password,
                ssl_cafile=cafile,
            ),
            files=[FileInputConfig(paths=[str(log)])],
        )
        self.agent = Agent(cfg, Identity("ag-refusals", user, "secret"), env={})
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.agent.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def kafka(self) -> dict:
        try:
            return json.loads((self.state / "status.json").read_text()).get("kafka", {})
        except (OSError, ValueError):
            return {}

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)


def _warnings(caplog, prefix: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(prefix)]


def test_agent_tells_revoked_wrong_password_and_untrusted_ca_apart(secure_kafka, unique, tmp_path, caplog):  # noqa: F811
    caplog.set_level(logging.INFO, logger="socpipe.agent.health")
    raw, hb = f"ref.raw.{unique}", f"ref.hb.{unique}"
    access = KafkaAccess(secure_kafka.soc_config(), [raw, hb])
    good, wrong = f"agt-ok{unique}", f"agt-pw{unique}"
    pw_good, _pw_wrong = access.grant(good), access.grant(wrong)
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_text(Path("/etc/ssl/certs/ca-certificates.crt").read_text())
    agents = [
        RunningAgent(tmp_path, "good", secure_kafka, good, pw_good, secure_kafka.cafile, raw, hb),
        RunningAgent(tmp_path, "wrongpw", secure_kafka, wrong, "not-" + pw_good, secure_kafka.cafile, raw, hb),
        RunningAgent(tmp_path, "wrongca", secure_kafka, good, pw_good, str(other_ca), raw, hb),
    ]
    ok, wrong_pw, wrong_ca = agents
    try:
        ok.log.write_text("line before revocation\n")
        wait_for(lambda: ok.kafka().get("state") == "connected", 30, what="the enrolled agent connects")
        st = wait_for(lambda: wrong_pw.kafka().get("state") not in (None, "connecting") and wrong_pw.kafka(), 40)
        assert st["state"] == "auth_failed", st
        assert st["error"].startswith(f"Kafka refused the agent's credentials at {secure_kafka.bootstrap}")
        assert "may have been revoked; re-enrol" in st["error"] and "unreachable" not in st["error"]
        st = wait_for(lambda: wrong_ca.kafka().get("state") not in (None, "connecting") and wrong_ca.kafka(), 40)
        assert st["state"] == "tls_failed" and "certificate not trusted" in st["error"], st

        # revoked while running: its authenticated connection stays open, but the broker refuses the writes
        access.revoke(good)
        with open(ok.log, "a") as f:
            f.write("line after revocation\n")
        st = wait_for(lambda: ok.kafka().get("state") not in ("connected", None) and ok.kafka(), 40)
        assert st["state"] == "not_authorized", st
        assert (
            st["error"].startswith(f"not allowed to write {raw} at {secure_kafka.bootstrap}")
            and "re-enrol" in st["error"]
        )
        time.sleep(3)  # retries keep failing: no new log lines
        # restarted after revocation: it cannot log in any more
        ok.close()
        restarted = RunningAgent(tmp_path, "good", secure_kafka, good, pw_good, secure_kafka.cafile, raw, hb)
        agents.append(restarted)
        st = wait_for(lambda: restarted.kafka().get("state") == "auth_failed" and restarted.kafka(), 40)
        assert "refused the agent's credentials" in st["error"]
    finally:
        for a in agents:
            a.close()
        access.revoke(wrong)
    assert len(_warnings(caplog, "kafka.auth_failed")) == 2, _warnings(caplog, "kafka.")  # wrong password, restarted
    assert len(_warnings(caplog, "kafka.tls_failed")) == 1, _warnings(caplog, "kafka.")
    assert len(_warnings(caplog, "kafka.not_authorized")) == 1, _warnings(caplog, "kafka.")
    assert not _warnings(caplog, "kafka.unreachable"), _warnings(caplog, "kafka.")


def test_heartbeat_says_not_allowed_to_write_the_raw_topic(secure_kafka, unique, tmp_path):  # noqa: F811
    """Allowed to write heartbeats but not records: the SOC reads why in the heartbeat."""
    raw, hb = f"ref.raw.{unique}", f"ref.hb.{unique}"
    access = KafkaAccess(secure_kafka.soc_config(), [hb])
    agent_id = f"agt-hb{unique}"
    password = access.grant(agent_id)
    from pipeline import kafka_io

    kafka_io.ensure_topics(secure_kafka.soc_config(), {raw: {"partitions": 1}})
    a = RunningAgent(tmp_path, "hb", secure_kafka, agent_id, password, secure_kafka.cafile, raw, hb)
    try:
        a.log.write_text("a line the agent may not write\n")
        wait_for(lambda: a.kafka().get("state") == "not_authorized", 40, what="not_authorized")
        consumer = KafkaConsumer(
            hb, group_id=None, auto_offset_reset="earliest", consumer_timeout_ms=8000, **secure_kafka.client()
        )

        def reason() -> str:
            for msg in consumer:
                beat = Heartbeat.from_bytes(msg.value)
                if beat.kafka_state == "not_authorized":
                    return beat.kafka_reason
            return ""

        got = wait_for(reason, 30, what="a heartbeat with the kafka reason")
        assert got.startswith(f"not authorized: not allowed to write {raw}"), got
        consumer.close()
    finally:
        a.close()
        access.revoke(agent_id)
