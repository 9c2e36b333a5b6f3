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


def test_a_running_stack_is_found_with_its_recorded_ports_from_a_new_shell(tmp_path, monkeypatch):
    """`status` without the SOCPIPE_STACK_*_PORT variables probes the ports the stack was started on."""
    import json
    import os

    moved = Ports(kafka=19092, kafka_controller=19093, elasticsearch=19200, elasticsearch_transport=19300, prometheus=1)
    (tmp_path / "stack.json").write_text(json.dumps({"ports": moved.__dict__, "options": {"secure": False}}))
    (tmp_path / "elasticsearch.pid").write_text(str(os.getpid()))  # a live pid stands for a running server
    for name in Ports.__dataclass_fields__:
        monkeypatch.delenv(f"SOCPIPE_STACK_{name.upper()}_PORT", raising=False)
    stack = Stack(tmp_path)
    assert stack.ports == moved
    assert stack.env()["SOCPIPE_ES_URL"] == "http://127.0.0.1:19200"
    assert stack.env()["SOCPIPE_STACK_ELASTICSEARCH_TRANSPORT_PORT"] == "19300"
    # once nothing runs there any more, the environment decides again
    (tmp_path / "elasticsearch.pid").write_text("999999999")
    assert Stack(tmp_path).ports == Ports()


def test_unpack_keeps_exec_bits(tmp_path):
    import zipfile

    from pipeline.stack.elasticsearch import unpack_zip

    archive = tmp_path / "d.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, mode in (("es/bin/elasticsearch", 0o755), ("es/config/jvm.options", 0o644)):
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100000 | mode) << 16
            zf.writestr(info, "x")
    unpack_zip(archive, tmp_path / "out")
    assert (tmp_path / "out/es/bin/elasticsearch").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "out/es/config/jvm.options").stat().st_mode & 0o777 == 0o644


def test_state_under_a_private_directory_is_not_reachable_by_the_server_user(tmp_path):
    from pipeline.stack.elasticsearch import reachable_by_others

    private = tmp_path / "home"
    (private / "repo").mkdir(parents=True)
    private.chmod(0o700)
    try:
        assert not reachable_by_others(private / "repo")
    finally:
        private.chmod(0o755)
    assert reachable_by_others(private / "repo") == reachable_by_others(tmp_path)


def test_elasticsearch_config_binds_localhost_on_the_stack_ports(tmp_path):
    from pipeline.stack.elasticsearch import config_yaml
    from pipeline.stack.servers import StackOptions

    text = config_yaml(Ports(elasticsearch=19200, elasticsearch_transport=19300), tmp_path, StackOptions())
    lines = set(text.splitlines())
    assert {'network.host: "127.0.0.1"', "http.port: 19200", "transport.port: 19300"} <= lines
    assert 'discovery.type: "single-node"' in lines
    assert f'path.data: "{tmp_path / "data"}"' in lines


def test_prometheus_scrapes_the_metrics_ports_of_the_plan(tmp_path):
    if not __import__("shutil").which("prometheus"):
        pytest.skip("prometheus not installed")
    import json

    ports = Ports.from_env(
        {"SOCPIPE_STACK_DETECTOR_METRICS_PORT": "29464", "SOCPIPE_STACK_COVERAGE_METRICS_PORT": "29465"}
    )
    prometheus_command(tmp_path, ports)
    targets = tmp_path / "prometheus" / "targets"
    assert json.loads((targets / "socpipe-detector.json").read_text())[0]["targets"] == ["127.0.0.1:29464"]
    assert json.loads((targets / "socpipe-coverage.json").read_text())[0]["targets"] == ["127.0.0.1:29465"]
    assert json.loads((targets / "socpipe-agent.json").read_text())[0]["targets"] == ["127.0.0.1:9466"]


def test_service_env_puts_each_role_on_the_plan_ports():
    """The overrides are what each role's config loader reads (same key names, one process each)."""
    from pipeline.config import load_config
    from pipeline.coverage.config import CoverageConfig
    from pipeline.detector_config import DetectorConfig

    ports = Ports(kafka=19092, elasticsearch=19200, detector_metrics=19464, coverage_metrics=19465, enrolment=19765)
    det = load_config(DetectorConfig, "config/detector.yaml", env=ports.service_env("detector"))
    assert (det.metrics_port, det.kafka.bootstrap, det.es.url) == (19464, "127.0.0.1:19092", "http://127.0.0.1:19200")
    cov = load_config(CoverageConfig, "config/coverage.yaml", env=ports.service_env("coverage"))
    assert (cov.metrics_port, cov.enrolment.listen_port) == (19465, 19765)
    # agents enrolled there are told the Kafka address the stack listens on
    assert cov.enrolment.kafka.bootstrap == "127.0.0.1:19092"
    with pytest.raises(ValueError, match="unknown role"):
        ports.service_env("kibana")


def test_enrolment_handout_keeps_an_agency_facing_address():
    from pipeline.config import load_config
    from pipeline.coverage.config import CoverageConfig

    env = {"SOCPIPE_KAFKA_BOOTSTRAP": "10.0.0.5:9092", "SOCPIPE_ENROLMENT_KAFKA_BOOTSTRAP": "kafka.soc.example:9093"}
    cov = load_config(CoverageConfig, "config/coverage.yaml", env=env)
    assert cov.enrolment.kafka.bootstrap == "kafka.soc.example:9093"
