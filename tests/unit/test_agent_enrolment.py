"""Enrolment without surprises: local checks before the token is sent, every network failure names the
URL and the likely cause, plain http only to loopback, environment over identity.json over agent.yaml."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from collectors.cli import main as agent_cli
from collectors.config import AgentConfig, effective_kafka, load_agent_config
from collectors.configfile import KafkaConfig
from collectors.enrol import check_server_url, enroll, explain_connection_error
from collectors.identity import EnrolmentError, Identity, KafkaCredentials, load_identity, save_identity

REPO = Path(__file__).resolve().parents[2]


class _RecordingServer(HTTPServer):
    """Keeps what it was sent, for the test to read."""

    requests: list[Any]


class _Enrol(BaseHTTPRequestHandler):
    server: _RecordingServer

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(body)
        data = json.dumps(
            {"agency_id": "so-yte", "agent_id": f"agent-{len(self.server.requests)}", "secret": "s", "kafka": {}}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def _serve(server):
    server.requests = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def http_server():
    server = _serve(_RecordingServer(("127.0.0.1", 0), _Enrol))
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "key.pem")]
        + [
            "-out",
            str(d / "cert.pem"),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return d / "cert.pem", d / "key.pem"


@pytest.fixture
def https_server(cert):
    server = _RecordingServer(("127.0.0.1", 0), _Enrol)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    _serve(server)
    yield server
    server.shutdown()
    server.server_close()


def test_plain_http_only_to_loopback():
    with pytest.raises(EnrolmentError, match="plain http to soc.example.gov.vn is refused"):
        check_server_url("http://soc.example.gov.vn:8765")
    assert check_server_url("http://127.0.0.1:8765/") == "http://127.0.0.1:8765"
    assert check_server_url("http://[::1]:8765") == "http://[::1]:8765"
    assert check_server_url("https://soc.example.gov.vn:8765") == "https://soc.example.gov.vn:8765"
    with pytest.raises(EnrolmentError, match="expected https://HOST"):
        check_server_url("soc.example.gov.vn:8765")


def test_state_dir_checked_before_anything_is_sent(tmp_path, http_server):
    url = f"http://127.0.0.1:{http_server.server_port}"
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(EnrolmentError, match="nothing was sent"):
        enroll(url, "t", blocker / "state")
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    with pytest.raises(EnrolmentError, match="is a symlink"):
        enroll(url, "t", link)
    assert http_server.requests == []
    enroll(url, "t", tmp_path / "ok")
    with pytest.raises(EnrolmentError, match="already enrolled.*--force"):
        enroll(url, "t", tmp_path / "ok")
    assert len(http_server.requests) == 1
    assert enroll(url, "t", tmp_path / "ok", force=True).agent_id == "agent-2"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged user")
def test_unwritable_state_dir_as_unprivileged_user_sends_nothing(tmp_path, http_server):
    """The reported bug: a non-root `enroll` registered the agent, then crashed writing identity.json."""
    state = Path("/var/lib") / f"socpipe-test-{os.getpid()}"
    state.mkdir(mode=0o755)
    # the agent's code where `nobody` can read it (a checkout may sit in a 0700 folder, e.g. mktemp -d)
    code_dir = Path("/var/lib") / f"socpipe-test-code-{os.getpid()}"
    shutil.copytree(REPO / "collectors", code_dir / "collectors", ignore=shutil.ignore_patterns("__pycache__"))
    for p in [code_dir, *code_dir.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    try:
        code = (
            "import sys; sys.path.insert(0, sys.argv[1]); from collectors.cli import main; "
            "sys.exit(main(['enroll', '--server', sys.argv[2], '--token', 't', '--state-dir', sys.argv[3]]))"
        )
        env = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
        res = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", code]
            + [str(code_dir), f"http://127.0.0.1:{http_server.server_port}", str(state)],
            capture_output=True,
            text=True,
            env=env,
        )
    finally:
        state.rmdir()
        shutil.rmtree(code_dir)
    assert res.returncode == 1, res.stderr
    assert f"state dir {state} is not writable by user nobody" in res.stderr and "nothing was sent" in res.stderr
    assert "Traceback" not in res.stderr
    assert http_server.requests == []


def test_connection_errors_name_the_url_and_the_cause(tmp_path, http_server, https_server, cert):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    cases: list[tuple[str, dict[str, Any], str]] = [
        (f"http://127.0.0.1:{closed}", {}, "connection refused: nothing listens there"),
        (f"https://127.0.0.1:{http_server.server_port}", {}, "does not speak TLS on this port"),
        (f"http://127.0.0.1:{https_server.server_port}", {}, "closed the connection without an answer"),
        (f"https://127.0.0.1:{https_server.server_port}", {}, "TLS certificate is not trusted.*--ca-file"),
    ]
    for i, (url, kw, cause) in enumerate(cases):
        with pytest.raises(EnrolmentError) as err:
            enroll(url, "t", tmp_path / str(i), timeout_s=5, **kw)
        assert str(err.value).startswith(url + "/v1/enroll: "), err.value
        assert __import__("re").search(cause, str(err.value)), err.value
    assert http_server.requests == [] and https_server.requests == []
    ident = enroll(f"https://127.0.0.1:{https_server.server_port}", "t", tmp_path / "tls", ca_file=str(cert[0]))
    assert ident.agency_id == "so-yte" and len(https_server.requests) == 1
    gai = socket.gaierror(-2, "Name or service not known")
    assert "cannot resolve host 'soc.invalid' (DNS)" in explain_connection_error(
        "https://soc.invalid:8765/v1/enroll", gai, 15
    )
    assert "firewall" in explain_connection_error("https://10.0.0.1:8765/v1/enroll", TimeoutError(), 15)


def test_cli_enroll_prints_no_traceback_and_reads_token_file(tmp_path, http_server, capsys):
    url = f"http://127.0.0.1:{http_server.server_port}"
    (tmp_path / "token").write_text("secret-token\n")
    assert (
        agent_cli(
            ["enroll", "--server", url, "--token-file", str(tmp_path / "token"), "--state-dir", str(tmp_path / "s")]
        )
        == 0
    )
    assert http_server.requests[0]["token"] == "secret-token"
    out = capsys.readouterr().out
    assert "agency_id=so-yte" in out and "systemctl restart socpipe-agent" in out
    assert (
        agent_cli(["enroll", "--server", "http://soc.example:1", "--token", "t", "--state-dir", str(tmp_path / "x")])
        == 1
    )
    err = capsys.readouterr().err
    assert err.startswith("error: --server http://soc.example:1: plain http") and "Traceback" not in err


def test_precedence_env_over_identity_over_config_file():
    file_cfg = KafkaConfig(bootstrap="from-yaml:9093", security_protocol="SSL", sasl_username="yaml-user")
    issued = KafkaCredentials(bootstrap="from-identity:9093", security_protocol="SASL_SSL", sasl_username="agent-7")
    assert effective_kafka(file_cfg, issued, {}).bootstrap == "from-identity:9093"
    assert effective_kafka(file_cfg, KafkaCredentials(), {}).bootstrap == "from-yaml:9093"
    # the reported bug: SOCPIPE_KAFKA_BOOTSTRAP ignored once identity.json exists
    env = {"SOCPIPE_KAFKA_BOOTSTRAP": "from-env:9093"}
    cfg = load_agent_config(None, env=env)
    merged = effective_kafka(cfg.kafka, issued, env)
    assert merged.bootstrap == "from-env:9093"
    assert merged.security_protocol == "SASL_SSL" and merged.sasl_username == "agent-7"  # not overridden: issued


def test_agent_uses_the_precedence(tmp_path):
    from collectors.agent import Agent

    ident = Identity("a", "b", "s", KafkaCredentials(bootstrap="127.0.0.2:9092"))
    env = {"SOCPIPE_KAFKA_BOOTSTRAP": "127.0.0.3:9092"}
    cfg = load_agent_config(None, env=env)
    assert Agent(cfg, ident, env=env)._kafka_kwargs()["bootstrap_servers"] == ["127.0.0.3:9092"]
    assert Agent(AgentConfig(), ident, env={})._kafka_kwargs()["bootstrap_servers"] == ["127.0.0.2:9092"]


def test_status_when_not_running_says_so_and_where_it_would_connect(tmp_path, capsys, monkeypatch):
    state = tmp_path / "state"
    save_identity(state / "identity.json", Identity("so-yte", "agent-1", "s", KafkaCredentials(bootstrap="k:9093")))
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"state_dir: {state}\n")
    monkeypatch.setenv("SOCPIPE_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    assert agent_cli(["status", "--config", str(cfg)]) == 3
    out = capsys.readouterr().out
    assert "NOT RUNNING" in out and "kafka bootstrap=127.0.0.1:19092" in out
    assert load_identity(state / "identity.json").kafka.bootstrap == "k:9093"


def test_python_m_collectors_is_the_agent_cli():
    res = subprocess.run([sys.executable, "-m", "collectors", "--help"], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0 and "enroll" in res.stdout and "status" in res.stdout


def test_shipped_agent_yaml_names_every_key():
    """/etc/socpipe/agent.yaml (the .deb's conffile) is config/agent.yaml: every key of every section,
    list entries included (commented examples), must appear in it."""
    import dataclasses
    import re
    import typing

    text = (REPO / "config" / "agent.yaml").read_text()

    def keys(cls, prefix=""):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            yield prefix + f.name, f.name
            typ = hints[f.name]
            inner = typing.get_args(typ)[0] if typing.get_origin(typ) is list else typ
            if dataclasses.is_dataclass(inner):
                yield from keys(inner, prefix + f.name + ".")

    missing = [dotted for dotted, name in keys(AgentConfig) if not re.search(rf"^[\s#-]*{name}:", text, re.M)]
    assert missing == []
