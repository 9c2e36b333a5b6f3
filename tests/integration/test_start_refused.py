"""Services started with credentials the real servers refuse end with one line saying so, exit code 1:
`coverage run` against the secure stack's SASL_SSL Kafka with a wrong password (kafka-python raises only
"Unable to bootstrap"; the refused login is read from its bootstrap log), `detect run` against the
HTTPS Elasticsearch with a wrong password. tests/unit/test_cli_start_errors.py covers unreachable
servers and the wording with fakes."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from pipeline import logs
from pipeline.cli import main
from tests.integration.secure import SecureKafka, secure_kafka  # noqa: F401  (fixture)
from tests.unit.test_cli_start_errors import RULE


@pytest.fixture(autouse=True)
def _quiet_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "setup", lambda *a, **k: None)
    monkeypatch.setattr(signal, "signal", lambda *a, **k: None)


def test_coverage_run_with_a_kafka_password_the_broker_refuses_says_so(
    secure_kafka: SecureKafka,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for client in (KafkaAdminClient, KafkaConsumer, KafkaProducer):  # 30 s in production
        monkeypatch.setitem(client.DEFAULT_CONFIG, "bootstrap_timeout_ms", 10_000)
    env = secure_kafka.soc_env() | {
        "SOCPIPE_KAFKA_SASL_PASSWORD": "not-" + secure_kafka.soc_password,
        "SOCPIPE_METRICS_PORT": "0",
        "SOCPIPE_STATE_DIR": str(tmp_path / "coverage"),
        "SOCPIPE_REGISTRY": str(tmp_path / "registry.db"),
        "SOCPIPE_INVENTORY": str(tmp_path / "inventory.yaml"),
    }
    result = CliRunner().invoke(main, ["coverage", "run"], env=env)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (result.output, result.exception)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"cannot start: Kafka at {secure_kafka.bootstrap} refused the credentials (")
    assert "SaslAuthenticationFailedError" in lines[0] and "kafka.sasl_password" in lines[0]
    assert secure_kafka.soc_password not in result.output


def test_detect_run_with_an_elasticsearch_password_the_cluster_refuses_says_so(tmp_path: Path, es_url: str) -> None:
    if not os.environ.get("SOCPIPE_ES_PASSWORD"):
        pytest.skip("the stack runs without --secure: Elasticsearch takes any request")
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yml").write_text(RULE)
    env = {
        "SOCPIPE_RULES": json.dumps([str(tmp_path / "rules")]),
        "SOCPIPE_REGISTRY": str(tmp_path / "registry.db"),
        "SOCPIPE_INVENTORY": "",
        "SOCPIPE_METRICS_PORT": "0",
        "SOCPIPE_ES_URL": es_url,
        "SOCPIPE_ES_USERNAME": "socpipe-detector",
        "SOCPIPE_ES_PASSWORD": "not-the-password",
        "SOCPIPE_ES_API_KEY": "",
    }
    result = CliRunner().invoke(main, ["detect", "run"], env=env)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (result.output, result.exception)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"cannot start: Elasticsearch at {es_url} refused the credentials (401: ")
    assert "socpipe-detector" in lines[0] and "not-the-password" not in result.output
