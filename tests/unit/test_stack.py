"""The local stack's pure parts: ports from the environment, status and down with nothing started."""

from __future__ import annotations

import pytest

from pipeline.stack import Stack, StackError
from pipeline.stack.servers import Ports, PrerequisiteError, prometheus_command


def test_ports_from_env_moves_only_what_is_named():
    ports = Ports.from_env({"SOCPIPE_STACK_KAFKA_PORT": "29092", "SOCPIPE_STACK_PROMETHEUS_PORT": "29090"})
    assert (ports.kafka, ports.kafka_controller, ports.elasticsearch, ports.prometheus) == (29092, 9093, 9200, 29090)


@pytest.mark.parametrize("value", ["kafka", "0", "70000", "-1"])
def test_bad_port_is_an_error_naming_the_variable(value):
    with pytest.raises(PrerequisiteError, match="SOCPIPE_STACK_KAFKA_PORT"):
        Ports.from_env({"SOCPIPE_STACK_KAFKA_PORT": value})


def test_stack_reports_bad_port_as_stack_error(monkeypatch, tmp_path):
    monkeypatch.setenv("SOCPIPE_STACK_ELASTICSEARCH_PORT", "nope")
    with pytest.raises(StackError, match="SOCPIPE_STACK_ELASTICSEARCH_PORT"):
        Stack(tmp_path)


def test_status_and_down_of_a_stack_never_started(tmp_path):
    stack = Stack(tmp_path, Ports(kafka=1, kafka_controller=2, elasticsearch=3, prometheus=4))
    statuses = stack.status()
    assert [s.name for s in statuses] == ["kafka", "elasticsearch", "prometheus"]
    assert not any(s.running or s.healthy for s in statuses)
    assert stack.down() == []
    assert stack.env()["SOCPIPE_KAFKA_BOOTSTRAP"] == "127.0.0.1:1"


def test_down_ignores_a_stale_pid_file(tmp_path):
    (tmp_path / "kafka.pid").write_text("999999999")
    stack = Stack(tmp_path, Ports(kafka=1, kafka_controller=2, elasticsearch=3, prometheus=4))
    assert stack.down() == []
    assert not (tmp_path / "kafka.pid").exists()


def test_prometheus_config_scrapes_socpipe_targets_and_loads_repo_rules(tmp_path):
    if not __import__("shutil").which("prometheus"):
        pytest.skip("prometheus not installed")
    cmd = prometheus_command(tmp_path, Ports(prometheus=19999))
    config = (tmp_path / "prometheus" / "prometheus.yml").read_text()
    assert "file_sd_configs" in config and "dashboards/prometheus/*.rules.yml" in config
    assert "--web.listen-address=127.0.0.1:19999" in cmd
    assert (tmp_path / "prometheus" / "targets" / "socpipe-detector.json").exists()
