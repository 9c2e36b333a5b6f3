"""Agent config validation (errors name the key), identity files (0600), the enrolment client."""

from __future__ import annotations

import json
import stat
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from collectors.config import AgentConfig, load_agent_config
from collectors.identity import EnrolmentError, Identity, enroll, load_identity, save_identity
from pipeline.cli import main as cli
from pipeline.config import ConfigError

REPO = Path(__file__).resolve().parents[2]


def load(tmp_path, text: str, env=None) -> AgentConfig:
    p = tmp_path / "agent.yaml"
    p.write_text(text)
    return load_agent_config(p, env=env or {})


def test_example_config_documents_every_default():
    from dataclasses import asdict

    assert asdict(load_agent_config(REPO / "config" / "agent.yaml", env={})) == asdict(AgentConfig())


@pytest.mark.parametrize(
    "text, key",
    [
        ("files: [{paths: []}]", "files[0].paths"),
        ("files: [{paths: [/x], start_position: middle}]", "files[0].start_position"),
        ("syslog: [{protocol: sctp}]", "syslog[0].protocol"),
        ("syslog: [{protocol: udp, tls_certfile: a, tls_keyfile: b}]", "syslog[0].tls_certfile"),
        ("spool: {fsync: sometimes}", "spool.fsync"),
        ("batch: {max_bytes: 5000000}", "batch.max_bytes"),
        ("kafka: {security_protocol: TLS}", "kafka.security_protocol"),
        ("heartbeat_interval_s: 0", "heartbeat_interval_s"),
        ("spool: {max_bytes: yes}", "spool.max_bytes"),
        ("fles: []", "fles"),
    ],
)
def test_config_errors_name_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, text)
    assert str(err.value).startswith(key)


def test_plaintext_to_a_remote_broker_is_refused_on_the_effective_settings(tmp_path):
    from collectors.config import check_kafka_transport, effective_kafka
    from collectors.identity import KafkaCredentials

    c = load(tmp_path, "kafka: {bootstrap: 'kafka.soc.example:9092'}")
    with pytest.raises(ConfigError, match="^kafka.security_protocol: PLAINTEXT to non-local broker"):
        check_kafka_transport(effective_kafka(c.kafka, KafkaCredentials(), {}), c.allow_plaintext_remote)
    issued = KafkaCredentials(security_protocol="SASL_SSL")  # what the SOC issued at enrolment fixes it
    check_kafka_transport(effective_kafka(c.kafka, issued, {}), c.allow_plaintext_remote)


def test_tls_to_remote_broker_is_accepted_and_env_overrides(tmp_path):
    c = load(
        tmp_path,
        "kafka: {bootstrap: 'kafka.soc.example:9093', security_protocol: SASL_SSL}",
        env={"SOCPIPE_HEARTBEAT_INTERVAL_S": "5"},
    )
    assert c.heartbeat_interval_s == 5.0
    assert (
        c.config_hash()
        == load(
            tmp_path,
            "kafka: {bootstrap: 'kafka.soc.example:9093', security_protocol: SASL_SSL, sasl_password: other}",
            env={"SOCPIPE_HEARTBEAT_INTERVAL_S": "5"},
        ).config_hash()
    )


def test_identity_file_is_0600_and_never_printed(tmp_path):
    path = save_identity(tmp_path / "state" / "identity.json", Identity("ag", "a1", "topsecret"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ident = load_identity(path)
    assert ident.agency_id == "ag" and "topsecret" not in repr(ident)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        load_identity(path)
    with pytest.raises(ConfigError, match="enrol first"):
        load_identity(tmp_path / "missing.json")


class _RecordingServer(HTTPServer):
    """Keeps what it was sent, for the test to read."""

    requests: list[Any]


class _Enrolment(BaseHTTPRequestHandler):
    """The SOC side of the enrolment contract, as small as it gets."""

    server: _RecordingServer

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.path, body))
        if body["token"] != "good-token":
            self.send_response(403)
            self.end_headers()
            return
        answer = {
            "agency_id": "so-tnmt",
            "agent_id": "agent-7",
            "secret": "s3",
            "kafka": {
                "bootstrap": "127.0.0.1:9092",
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_username": "agent-7",
                "sasl_password": "pw",
            },
        }
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def enrol_server():
    server = _RecordingServer(("127.0.0.1", 0), _Enrolment)
    server.requests = []
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server
    server.shutdown()
    server.server_close()


def test_enroll_writes_identity_and_refused_token_is_explained(tmp_path, enrol_server):
    url = f"http://127.0.0.1:{enrol_server.server_port}"
    ident = enroll(url, "good-token", tmp_path, host="web01")
    assert enrol_server.requests[0][0] == "/v1/enroll"
    assert enrol_server.requests[0][1]["host"] == "web01" and enrol_server.requests[0][1]["agent_version"]
    stored = load_identity(tmp_path / "identity.json")
    assert stored == ident and stored.kafka.sasl_username == "agent-7"
    assert stat.S_IMODE((tmp_path / "identity.json").stat().st_mode) == 0o600
    with pytest.raises(EnrolmentError, match="refused"):
        enroll(url, "revoked", tmp_path / "other")
    assert not (tmp_path / "other" / "identity.json").exists()


def test_cli_enroll_and_install_service_dry_run(tmp_path, enrol_server):
    runner = CliRunner()
    url = f"http://127.0.0.1:{enrol_server.server_port}"
    res = runner.invoke(
        cli, ["agent", "enroll", "--server", url, "--token", "good-token", "--state-dir", str(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    assert "agency_id=so-tnmt" in res.output and "pw" not in res.output
    res = runner.invoke(cli, ["agent", "enroll", "--server", url, "--token", "bad", "--state-dir", str(tmp_path / "x")])
    assert res.exit_code == 1 and "refused" in res.output
    res = runner.invoke(cli, ["agent", "install-service", "--dry-run"])
    assert res.exit_code == 0
    for directive in (
        "User=socpipe-agent",
        "ProtectSystem=strict",
        "NoNewPrivileges=true",
        "SupplementaryGroups=adm",
        "StateDirectory=socpipe-agent",
        "RestartPreventExitStatus=2",
    ):
        assert directive in res.output
