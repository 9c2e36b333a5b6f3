"""Why Kafka refuses the agent, told apart: credentials refused (revoked agent, wrong password), not
authorized (ACLs), TLS certificate not trusted, really unreachable -- in the log once per change, in
status and in heartbeats. The real broker cases are in tests/integration/test_agent_kafka_refusals.py."""

from __future__ import annotations

import logging
import socket
import ssl

from kafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    SaslAuthenticationFailedError,
    TopicAuthorizationFailedError,
)

from collectors.health import Health
from collectors.kafka_probe import Scram, classify, decode_authenticate, encode_request, probe
from collectors.stats import AgentStats, build_heartbeat
from collectors.status import assess
from collectors.wire import Heartbeat, sign_heartbeat, verify_heartbeat


def test_classify_names_the_cause():
    b, topic = "kafka.soc:9094", "socpipe-raw"
    state, msg = classify(TopicAuthorizationFailedError(topic), b, topic)
    assert state == "not_authorized" and msg.startswith(f"not allowed to write {topic} at {b}") and "re-enrol" in msg
    state, msg = classify(SaslAuthenticationFailedError("bad"), b, topic)
    assert state == "auth_failed"
    assert msg.startswith(f"Kafka refused the agent's credentials at {b}") and "may have been revoked; re-enrol" in msg
    tls = KafkaConnectionError("Handshake failed: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    state, msg = classify(tls, b, topic)
    assert state == "tls_failed" and "certificate not trusted" in msg and "ssl_cafile" in msg
    state, msg = classify(KafkaTimeoutError("Unable to bootstrap from ['x:1']"), b, topic)
    assert (state, msg) == ("unreachable", "KafkaTimeoutError: Unable to bootstrap from ['x:1']")


def test_scram_client_matches_rfc7677():
    """RFC 7677 section 3's SCRAM-SHA-256 exchange, byte for byte."""
    s = Scram("SCRAM-SHA-256", "user", "pencil", nonce="rOprNGfwEbeRWgbNEkqO")
    assert s.first() == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    assert s.final(server_first) == (
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    )


def test_protocol_framing():
    req = encode_request(36, 7, "c", b"\x00\x00\x00\x01x")
    assert req == b"\x00\x00\x00\x10" + b"\x00\x24\x00\x01\x00\x00\x00\x07\x00\x01c" + b"\x00\x00\x00\x01x"
    body = b"\x00\x00\x00\x07" + b"\x00\x3a" + b"\x00\x04nope" + b"\xff\xff\xff\xff" + b"\x00" * 8
    assert decode_authenticate(body) == (58, "nope", b"")


def test_probe_of_a_dead_port_finds_nothing_specific_and_a_tls_mismatch_is_tls():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    assert probe({"bootstrap_servers": [dead], "security_protocol": "SASL_SSL"}, 2.0) is None
    # a plain TCP server where TLS is expected: the handshake fails, and it says so
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    import threading

    def answer() -> None:
        c, _ = srv.accept()
        c.recv(1024)
        c.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")
        c.close()

    threading.Thread(target=answer, daemon=True).start()
    found = probe({"bootstrap_servers": [f"127.0.0.1:{srv.getsockname()[1]}"], "security_protocol": "SSL"}, 2.0)
    srv.close()
    assert found is not None and found[0] == "tls_failed", found
    assert isinstance(ssl.SSLError(), OSError)  # why probe catches SSLError before OSError


def test_each_change_logged_once_and_status_names_it(caplog):
    caplog.set_level(logging.INFO, logger="socpipe.agent.health")
    h = Health()
    for _ in range(5):
        h.set_kafka("auth_failed", "Kafka refused the agent's credentials at b:1 (x) — re-enrol", "b:1")
    h.set_kafka("connected", "", "b:1")
    h.set_kafka("not_authorized", "not allowed to write raw at b:1", "b:1")
    h.set_kafka("not_authorized", "not allowed to write raw at b:1", "b:1")
    msgs = [r.getMessage() for r in caplog.records]
    assert [m.split(" ")[0] for m in msgs] == ["kafka.auth_failed", "kafka.connected", "kafka.not_authorized"]
    assert "refused the agent's credentials" in msgs[0]
    doc = {"written_at": 10.0, "pid": 1, "kafka": {"state": "auth_failed"}, "sources": {}}
    assert assess(doc, 10.0, lambda pid: True) == (1, "DEGRADED: kafka credentials refused")


def test_heartbeat_carries_the_kafka_problem_and_old_heartbeats_still_verify():
    stats = AgentStats()
    hb = build_heartbeat(stats, "ag", "a1", "h", "1", "cfg", "sec", 1.0, 1)
    assert hb.kafka_state == "" and b"kafka_state" not in hb.to_bytes()  # connected: the bytes are as before
    old = Heartbeat("ag", "a1", "h", "1", 1.0, 0.0, counter=3)
    old.signature = sign_heartbeat(old, "sec")
    assert verify_heartbeat(Heartbeat.from_bytes(old.to_bytes()), "sec")
    stats.health.set_kafka("not_authorized", "not allowed to write socpipe-raw at b:1 (TopicAuthorizationFailedError)")
    hb = build_heartbeat(stats, "ag", "a1", "h", "1", "cfg", "sec", 2.0, 2)
    back = Heartbeat.from_bytes(hb.to_bytes())
    assert verify_heartbeat(back, "sec") and back.kafka_state == "not_authorized"
    assert (
        back.kafka_reason == "not authorized: not allowed to write socpipe-raw at b:1 (TopicAuthorizationFailedError)"
    )


def test_coverage_status_gives_the_agents_kafka_problem_as_the_agencys_reason(tmp_path):
    """An agent whose heartbeats get through but whose log records Kafka refuses (not allowed to write the
    raw topic): the coverage service shows its agency degraded with the agent's own reason, before the
    sources fall silent; when the agent is connected again the reason goes away."""
    from pipeline.coverage.config import CoverageConfig
    from pipeline.coverage.service import CoverageService
    from pipeline.coverage.status import render_status
    from pipeline.enrolment.registry import Registry

    (tmp_path / "inventory.yaml").write_text("agencies:\n  - {id: so-yte, name: So Y te, tier: department}\n")
    cfg = CoverageConfig(
        inventory=str(tmp_path / "inventory.yaml"),
        registry=str(tmp_path / "reg.db"),
        state_dir=str(tmp_path / "coverage"),
    )
    agent_id, secret = Registry(cfg.registry).enroll_direct("so-yte", "web01")
    svc = CoverageService(cfg)
    stats = AgentStats()
    why = "not allowed to write socpipe.raw at b:1 (TopicAuthorizationFailedError)"
    stats.health.set_kafka("not_authorized", why)
    t = 1_000_000.0
    hb = build_heartbeat(stats, "so-yte", agent_id, "web01", "1", "cfg", secret, t, 1)
    svc.handle_heartbeat(hb.to_bytes(), t + 0.5)
    view = svc.tick(t + 1).agencies[0]
    assert view.state == "degraded" and view.reasons[0] == f"kafka not authorized: {why}"
    status = __import__("json").loads((tmp_path / "coverage" / "status.json").read_text())
    assert f"kafka not authorized: {why}" in render_status(status, t + 1)

    stats.health.set_kafka("connected", "", "b:1")
    hb = build_heartbeat(stats, "so-yte", agent_id, "web01", "1", "cfg", secret, t + 2, 2)
    svc.handle_heartbeat(hb.to_bytes(), t + 2.5)
    assert not any(r.startswith("kafka") for r in svc.tick(t + 3).agencies[0].reasons)
