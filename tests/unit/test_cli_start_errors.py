"""The long-running SOC services end with one `cannot start: ...` line and exit code 1 when a server
they need at start does not let them (pipeline.cli.startup): Kafka that never answers (`coverage run`,
`detect run`), Elasticsearch unreachable or refusing the credentials (`detect run`; `triage serve`
refuses to start on refused credentials and serves, saying so, while Elasticsearch is away) - never a
stack trace. The servers are fakes on loopback (a listener that never answers, a closed port, an HTTP
server that answers 401); the clients and the commands are the real ones."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaTimeoutError, TopicAuthorizationFailedError

from pipeline import logs
from pipeline.cli import main
from pipeline.cli.startup import kafka_problem, redact_url, start_guard
from tests.unit.test_kafka_io_metadata import SilentBroker

RULE = (
    "title: t\nid: 5b0e1f5e-4b8f-4c4e-9a51-0a4c0a4f3f10\nlogsource: {product: linux}\n"
    "detection:\n  sel: {a: b}\n  condition: sel\n"
)


@pytest.fixture(autouse=True)
def _quiet_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands run in this process: they must not take its signals or its logging over."""
    monkeypatch.setattr(logs, "setup", lambda *a, **k: None)
    monkeypatch.setattr(signal, "signal", lambda *a, **k: None)


@pytest.fixture
def silent() -> Iterator[SilentBroker]:
    broker = SilentBroker()
    yield broker
    broker.close()


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


class _Refuses(BaseHTTPRequestHandler):
    """Elasticsearch refusing the credentials, as it answers them (401, security_exception)."""

    def _answer(self) -> None:
        body = json.dumps(
            {
                "error": {"type": "security_exception", "reason": "unable to authenticate user [detector]"},
                "status": 401,
            }
        ).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-elastic-product", "Elasticsearch")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_HEAD = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def refusing_es() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refuses)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _one_line_failure(result: Result, starts: str) -> str:
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), f"not a clear exit: {result.exception!r}"
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(starts), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def test_coverage_run_against_a_broker_that_never_answers_says_it_cannot_start(
    tmp_path: Path, silent: SilentBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    for client in (KafkaAdminClient, KafkaConsumer, KafkaProducer):  # 30 s in production
        monkeypatch.setitem(client.DEFAULT_CONFIG, "bootstrap_timeout_ms", 1500)
    env = {
        "SOCPIPE_KAFKA_BOOTSTRAP": silent.address,
        "SOCPIPE_METRICS_PORT": "0",
        "SOCPIPE_STATE_DIR": str(tmp_path / "coverage"),
        "SOCPIPE_REGISTRY": str(tmp_path / "registry.db"),
        "SOCPIPE_INVENTORY": str(tmp_path / "inventory.yaml"),
    }
    result = CliRunner().invoke(main, ["coverage", "run"], env=env)
    line = _one_line_failure(result, f"cannot start: Kafka at {silent.address} did not answer (")
    assert "Unable to bootstrap" in line
    assert silent.accepted >= 1  # it did reach the listener: the broker, not the address, was silent


def test_coverage_run_with_its_metrics_port_taken_says_which(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        env = {
            "SOCPIPE_KAFKA_BOOTSTRAP": f"127.0.0.1:{_closed_port()}",
            "SOCPIPE_METRICS_HOST": "127.0.0.1",
            "SOCPIPE_METRICS_PORT": str(port),
            "SOCPIPE_STATE_DIR": str(tmp_path / "coverage"),
            "SOCPIPE_REGISTRY": str(tmp_path / "registry.db"),
            "SOCPIPE_INVENTORY": str(tmp_path / "inventory.yaml"),
        }
        result = CliRunner().invoke(main, ["coverage", "run"], env=env)
    finally:
        taken.close()
    _one_line_failure(result, f"cannot start: metrics endpoint 127.0.0.1:{port}: ")


def _detect_env(tmp_path: Path, es_url: str) -> dict[str, str]:
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "r.yml").write_text(RULE)
    return {
        "SOCPIPE_RULES": json.dumps([str(tmp_path / "rules")]),
        "SOCPIPE_MODELS_DIR": str(tmp_path / "models"),
        "SOCPIPE_REGISTRY": str(tmp_path / "registry.db"),
        "SOCPIPE_INVENTORY": "",
        "SOCPIPE_METRICS_PORT": "0",
        "SOCPIPE_KAFKA_BOOTSTRAP": f"127.0.0.1:{_closed_port()}",
        "SOCPIPE_ES_URL": es_url,
        # a plain http:// server: no CA even when the secured stack's settings are in the environment (CI)
        "SOCPIPE_ES_CA_CERTS": "",
        "SOCPIPE_ES_REQUEST_TIMEOUT_S": "5",
        "SOCPIPE_RULE_CACHE": "",
    }


def test_detect_run_with_elasticsearch_unreachable_says_it_cannot_start(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    result = CliRunner().invoke(main, ["detect", "run"], env=_detect_env(tmp_path, url))
    _one_line_failure(result, f"cannot start: Elasticsearch at {url} is unreachable (")


def test_detect_run_with_refused_elasticsearch_credentials_says_so(tmp_path: Path, refusing_es: str) -> None:
    result = CliRunner().invoke(main, ["detect", "run"], env=_detect_env(tmp_path, refusing_es))
    line = _one_line_failure(result, f"cannot start: Elasticsearch at {refusing_es} refused the credentials (401")
    assert "unable to authenticate user [detector]" in line and "es.api_key" in line


def test_kafka_problems_name_refused_credentials_and_acls() -> None:
    timeout = KafkaTimeoutError("Unable to bootstrap from ['k1:9094']")
    sasl = "Bootstrap connection to bootstrap-0 failed: SaslAuthenticationFailedError: Authentication failed"
    refused = kafka_problem(timeout, "k1:9094", sasl)
    assert refused.startswith("Kafka at k1:9094 refused the credentials (") and "kafka.sasl_password" in refused
    assert "SaslAuthenticationFailedError" in refused
    down = kafka_problem(timeout, "k1:9094", "Bootstrap connection to bootstrap-0 failed: 111 ECONNREFUSED")
    assert down.startswith("Kafka at k1:9094 did not answer (") and "ECONNREFUSED" in down
    assert "ACLs" in kafka_problem(TopicAuthorizationFailedError(), "k1:9094")


def test_urls_lose_their_password_in_the_message() -> None:
    assert redact_url("https://detector:s3cret@es.soc.example:9200/") == "https://es.soc.example:9200/"
    assert redact_url("http://127.0.0.1:9200") == "http://127.0.0.1:9200"


def _triage_serve(tmp_path: Path, es_url: str) -> subprocess.Popen[str]:
    """`socpipe triage serve` as its own process (it serves until interrupted), one analyst enrolled."""
    from pipeline.triage.auth import add_analyst

    tokens = tmp_path / "tokens.yaml"
    add_analyst(tokens, "ana", "analyst")
    env = {**os.environ, "SOCPIPE_ES_URL": es_url, "SOCPIPE_ES_CA_CERTS": "", "SOCPIPE_ES_REQUEST_TIMEOUT_S": "5"}
    args = ["triage", "serve", "--tokens", str(tokens), "--listen", "127.0.0.1:0"]
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_triage_serve_with_refused_elasticsearch_credentials_says_it_cannot_start(
    tmp_path: Path, refusing_es: str
) -> None:
    proc = _triage_serve(tmp_path, refusing_es)
    try:
        out, err = proc.communicate(timeout=30)  # before: served (every request a 503) until killed
    finally:
        proc.kill()
    lines = [ln for ln in err.splitlines() if ln.strip() and " INFO " not in ln]  # its request, logged
    assert proc.returncode == 1 and "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith(
        f"cannot start: Elasticsearch at {refusing_es} refused the credentials"
    )
    assert "triage API on" not in out


def test_triage_serve_with_elasticsearch_away_serves_and_says_so(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    proc = _triage_serve(tmp_path, url)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline() if ready else ""
        assert line.startswith("triage API on http://127.0.0.1:"), line
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert f"warning: Elasticsearch at {url} is unreachable" in err and "serving anyway" in err, err
    assert "Traceback" not in err, err


def test_a_login_refused_before_the_last_attempt_still_names_the_credentials(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A broker that refused the login also drops attempts before it (seen on the stack's SASL_SSL
    listener), so the last bootstrap failure kafka-python logs may be a disconnect: the refusal sticks."""
    import logging

    net = logging.getLogger("kafka.net.manager")
    with pytest.raises(SystemExit) as ended, start_guard(kafka="k1:9094"):
        net.warning(
            "Bootstrap connection to bootstrap-0 failed: [Error 58] SaslAuthenticationFailedError: Authentication "
            "failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 (backoff 1.37 secs)"
        )
        net.warning("Bootstrap bootstrap-0 not ready; waiting 1.37 secs")
        net.warning(
            "Bootstrap connection to bootstrap-0 failed: KafkaConnectionError: socket disconnected (backoff 3.2 secs)"
        )
        net.error("Bootstrap failed: KafkaTimeoutError: Unable to bootstrap from ['k1:9094']")
        raise KafkaTimeoutError("Unable to bootstrap from ['k1:9094']")
    assert ended.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("cannot start: Kafka at k1:9094 refused the credentials (") and "invalid credentials" in err
    assert "backoff" not in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "topic"),
    [(["detect", "dead-letters", "list"], "socpipe.deadletter"), (["detect", "quarantine"], "socpipe.quarantine")],
)
def test_reading_a_topic_with_credentials_the_broker_refuses_says_so_not_did_not_answer(
    monkeypatch: pytest.MonkeyPatch, args: list[str], topic: str
) -> None:
    """`detect dead-letters` and `detect quarantine` read with the SOC's Kafka credential: a wrong password
    (kafka-python's bootstrap failures logged, then 'Unable to bootstrap', as on the stack's SASL_SSL
    listener) is named as refused credentials, as `detect run` names it; a silent broker still 'did not answer'."""
    import logging

    def refused(*_: Any, **__: Any) -> list[Any]:
        logging.getLogger("kafka.net.manager").warning(
            "Bootstrap connection to bootstrap-0 failed: [Error 58] SaslAuthenticationFailedError: Authentication "
            "failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 (backoff 1.1 secs)"
        )
        raise KafkaTimeoutError("Unable to bootstrap from ['k1:9094']")

    def silent(*_: Any, **__: Any) -> list[Any]:
        raise KafkaTimeoutError("Unable to bootstrap from ['k1:9094']")

    # the detector configuration is validated whole: a plain Elasticsearch whatever the environment holds
    env = {"SOCPIPE_KAFKA_BOOTSTRAP": "k1:9094", "SOCPIPE_ES_URL": "http://127.0.0.1:9", "SOCPIPE_ES_CA_CERTS": ""}
    monkeypatch.setattr("pipeline.kafka_io.read_records", refused)
    res = CliRunner().invoke(main, args, env=env)
    assert res.exit_code == 1, res.output
    assert res.output.startswith(f"cannot read {topic}: Kafka at k1:9094 refused the credentials ("), res.output
    assert "check kafka.sasl_username" in res.output and res.output.count("\n") == 1
    monkeypatch.setattr("pipeline.kafka_io.read_records", silent)
    res = CliRunner().invoke(main, args, env=env)
    assert res.exit_code == 1 and res.output == (
        f"cannot read {topic}: Kafka at k1:9094 did not answer (KafkaTimeoutError: Unable to bootstrap from ['k1:9094'])\n"
    ), res.output


@pytest.mark.parametrize(
    "args",
    [["detect", "run"], ["detect", "dead-letters", "replay"], ["triage", "serve"], ["alerts", "list"], ["es", "setup"]],
)
def test_a_ca_certificate_for_a_plain_http_elasticsearch_is_a_config_error_naming_the_keys(
    monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    """es.ca_certs with an http:// es.url (the env of a secured stack left over, pointed at a plain one):
    elastic_transport refuses it with a ValueError ('TLS options require scheme to be https'), which was
    a traceback; now a config error naming both keys, the URL's credentials never printed."""
    monkeypatch.setattr("pipeline.kafka_io.read_records", lambda *a, **k: [])
    env = {"SOCPIPE_ES_URL": "http://admin:s3cret@127.0.0.1:9", "SOCPIPE_ES_CA_CERTS": "/nonexistent/ca.pem"}
    res = CliRunner().invoke(main, args, env=env)
    assert res.exit_code in (1, 2) and not isinstance(res.exception, ValueError), res.exception
    assert "es.ca_certs: set, but es.url is http://, not https://" in res.output, res.output
    assert "s3cret" not in res.output and "Traceback" not in res.output


def test_es_setup_against_an_unreachable_elasticsearch_does_not_print_the_url_s_password() -> None:
    env = {"SOCPIPE_ES_URL": "http://admin:s3cret@127.0.0.1:9", "SOCPIPE_ES_CA_CERTS": ""}
    res = CliRunner().invoke(main, ["es", "setup"], env=env)
    assert res.exit_code == 1 and "cannot reach Elasticsearch at http://127.0.0.1:9: " in res.output, res.output
    assert "s3cret" not in res.output and "admin" not in res.output
