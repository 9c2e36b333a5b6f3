import json
import os
import stat
import urllib.error
import urllib.request

import pytest

from collectors.wire import Heartbeat, sign_heartbeat, verify_heartbeat
from pipeline.coverage.config import EnrolmentConfig, KafkaHandout
from pipeline.enrolment.kafka_access import KafkaAccess, KafkaAccessError
from pipeline.enrolment.registry import EnrolmentError, Registry
from pipeline.enrolment.server import handle_enroll, serve_in_thread


def test_token_is_kept_hashed_and_the_agency_comes_from_it(tmp_path):
    reg = Registry(tmp_path / "reg.db")
    assert stat.S_IMODE(os.stat(tmp_path / "reg.db").st_mode) == 0o600
    token_id, token = reg.create_token("xa-phu-huu")
    assert token.encode() not in (tmp_path / "reg.db").read_bytes()
    rec = reg.enroll(token, "srv1", "1.0")
    assert rec.agency_id == "xa-phu-huu" and rec.agent_id.startswith("agt-") and len(rec.secret) >= 40
    assert reg.secret_of(rec.agent_id) == rec.secret
    assert reg.revoke_tokens("xa-phu-huu") == 1
    with pytest.raises(EnrolmentError):
        reg.enroll(token, "srv2")
    agent = reg.agent(rec.agent_id)
    assert agent is not None and agent.revoked is False  # enrolled agents survive a token revocation
    assert reg.revoke_agent(rec.agent_id) and reg.secret_of(rec.agent_id) is None


def test_a_failed_agent_insert_gives_the_token_use_back(tmp_path, monkeypatch):
    """Spending the token's use and inserting the agent are one transaction: when the insert fails (here an
    agent id that already exists, as a crash between the two would), the use is not lost."""
    import sqlite3

    reg = Registry(tmp_path / "reg.db")
    reg.enroll_direct("a", "h0", agent_id="agt-000000000000")
    token_id, token = reg.create_token("a", uses=1)
    monkeypatch.setattr("pipeline.enrolment.registry.secrets.token_hex", lambda _n: "000000000000")
    with pytest.raises(sqlite3.IntegrityError):
        reg.enroll(token, "h1")
    again = Registry(tmp_path / "reg.db")  # another connection: what is on disk
    assert [t.uses_left for t in again.tokens("a") if t.token_id == token_id] == [1]
    assert [a.host for a in again.agents()] == ["h0"]
    monkeypatch.undo()
    rec = reg.enroll(token, "h1")  # the agency retries with the same token
    assert rec.host == "h1" and [t.uses_left for t in again.tokens("a")] == [0]
    agent = again.agent(rec.agent_id)
    assert agent is not None and agent.agency_id == "a"


def test_revoke_one_token_by_id(tmp_path):
    reg = Registry(tmp_path / "reg.db")
    t1, tok1 = reg.create_token("a")
    _, tok2 = reg.create_token("a")
    assert reg.revoke_tokens("a", t1) == 1
    with pytest.raises(EnrolmentError):
        reg.enroll(tok1, "h")
    assert reg.enroll(tok2, "h").agency_id == "a"
    assert reg.revoke_tokens("b") == 0


def test_enroll_direct_for_demos(tmp_path):
    reg = Registry(tmp_path / "reg.db")
    agent_id, secret = reg.enroll_direct("so-tttt", "web01")
    hb = Heartbeat("so-tttt", agent_id, "web01", "1", 1.0, 0.0)
    hb.signature = sign_heartbeat(hb, secret)
    seen = Registry(tmp_path / "reg.db").secret_of(agent_id)  # another connection sees it
    assert seen is not None and verify_heartbeat(hb, seen)


class _FakeAccess(KafkaAccess):
    """Unit-test stand-in for KafkaAccess (the real one is tested against the secured broker): no admin
    client, `grant` overridden."""

    def __init__(self, fail: bool = False):
        self.fail = fail
        self.granted: list[str] = []

    def grant(self, agent_id: str) -> str:
        if self.fail:
            raise KafkaAccessError("broker down")
        self.granted.append(agent_id)
        return f"pw-{agent_id}"


def test_handle_enroll_ignores_a_claimed_agency_and_rejects_bad_requests(tmp_path):
    reg = Registry(tmp_path / "reg.db")
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMII...\n-----END CERTIFICATE-----\n")
    cfg = EnrolmentConfig(kafka=KafkaHandout(bootstrap="kafka.soc:9093", security_protocol="SASL_SSL", ca_file=str(ca)))
    access = _FakeAccess()
    _, token = reg.create_token("xa-a")
    status, body = handle_enroll(
        reg, cfg, json.dumps({"token": token, "host": "h", "agency_id": "so-evil"}).encode(), access=access
    )
    assert status == 200 and body["agency_id"] == "xa-a"
    # each agent its own user (= its agent id) and password; the CA to verify the broker
    assert body["kafka"] == {
        "bootstrap": "kafka.soc:9093",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_username": body["agent_id"],
        "sasl_password": f"pw-{body['agent_id']}",
        "ssl_ca_pem": ca.read_text(),
    }
    assert access.granted == [body["agent_id"]]
    assert handle_enroll(reg, cfg, json.dumps({"token": "nope", "host": "h"}).encode(), access=access)[0] == 403
    assert handle_enroll(reg, cfg, b"{not json", access=access)[0] == 400
    assert handle_enroll(reg, cfg, b"[1]", access=access)[0] == 400
    assert handle_enroll(reg, cfg, json.dumps({"token": token}).encode(), access=access)[0] == 400
    assert handle_enroll(reg, cfg, json.dumps({"token": token, "host": "h", "agent_version": 3}).encode())[0] == 400
    assert len(access.granted) == 1


def test_enrolment_without_kafka_credentials_leaves_no_agent_behind(tmp_path):
    reg = Registry(tmp_path / "reg.db")
    cfg = EnrolmentConfig(kafka=KafkaHandout(security_protocol="SASL_SSL"))
    _, token = reg.create_token("xa-a")
    for access in (_FakeAccess(fail=True), None):
        status, body = handle_enroll(reg, cfg, json.dumps({"token": token, "host": "h"}).encode(), access=access)
        assert status == 503 and "secret" not in body
    assert len(reg.agents()) == 2 and all(a.revoked for a in reg.agents())
    assert reg.tokens("xa-a")[0].uses_left == 1  # the single-use token was given its use back
    # a PLAINTEXT handout (loopback demos) issues no credentials and needs no broker access
    plain = EnrolmentConfig(kafka=KafkaHandout(bootstrap="127.0.0.1:9092"))
    status, body = handle_enroll(reg, plain, json.dumps({"token": token, "host": "h"}).encode())
    assert status == 200 and body["kafka"] == {"bootstrap": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}


def test_http_server_round_trip(tmp_path):
    reg = Registry(tmp_path / "reg.db")
    _, token = reg.create_token("ubnd-huyen-an-phu")
    server, thread = serve_in_thread(reg, EnrolmentConfig(listen_host="127.0.0.1", listen_port=0))
    url = f"http://127.0.0.1:{server.server_address[1]}/v1/enroll"

    def post(payload: bytes):
        req = urllib.request.Request(url, data=payload, headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e)

    try:
        status, body = post(json.dumps({"token": token, "host": "srv-ap", "agent_version": "0.1.0"}).encode())
        assert status == 200 and body["agency_id"] == "ubnd-huyen-an-phu"
        assert reg.secret_of(body["agent_id"]) == body["secret"]
        reg.revoke_tokens("ubnd-huyen-an-phu")
        assert post(json.dumps({"token": token, "host": "srv-ap"}).encode())[0] == 403
        assert post(b"garbage")[0] == 400
    finally:
        server.shutdown()
        server.server_close()
