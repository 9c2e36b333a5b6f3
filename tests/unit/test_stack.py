"""The local stack's pure parts: ports from the environment, status and down with nothing started."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from pipeline.stack import Stack, StackError, elasticsearch_secure, kafka_secure
from pipeline.stack.manager import Server
from pipeline.stack.plan import Ports, PrerequisiteError
from pipeline.stack.servers import prometheus_command


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
    from pipeline.stack.plan import StackOptions

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


def test_service_env_gives_every_broker_of_a_cluster():
    """A service bootstraps from any live node: with the first broker down, a list of one never connects."""
    ports = Ports(kafka=26092)
    want = "127.0.0.1:26092,127.0.0.1:26095,127.0.0.1:26098"
    for role in ("detector", "coverage", "agent"):
        assert ports.service_env(role, brokers=3)["SOCPIPE_KAFKA_BOOTSTRAP"] == want
    assert "SOCPIPE_KAFKA_BOOTSTRAP" not in ports.service_env("triage", brokers=3)


def test_enrolment_handout_keeps_an_agency_facing_address():
    from pipeline.config import load_config
    from pipeline.coverage.config import CoverageConfig

    env = {"SOCPIPE_KAFKA_BOOTSTRAP": "10.0.0.5:9092", "SOCPIPE_ENROLMENT_KAFKA_BOOTSTRAP": "kafka.soc.example:9093"}
    cov = load_config(CoverageConfig, "config/coverage.yaml", env=env)
    assert cov.enrolment.kafka.bootstrap == "kafka.soc.example:9093"


# --- `stack up --brokers 3`: the three-node KRaft cluster ------------------------------------------


def test_kafka_nodes_take_the_next_three_ports_each_and_all_are_bootstrap():
    moved = Ports.from_env({"SOCPIPE_STACK_KAFKA_PORT": "26092", "SOCPIPE_STACK_KAFKA_CONTROLLER_PORT": "26093"})
    nodes = [moved.kafka_node(i) for i in range(3)]
    assert [(n.kafka, n.kafka_controller) for n in nodes] == [(26092, 26093), (26095, 26096), (26098, 26099)]
    assert [n.kafka_secure for n in (Ports().kafka_node(i) for i in range(3))] == [9094, 9097, 9100]
    assert nodes[1].elasticsearch == moved.elasticsearch  # only Kafka's ports move per node
    assert moved.kafka_bootstrap(3) == "127.0.0.1:26092,127.0.0.1:26095,127.0.0.1:26098"
    assert moved.kafka_bootstrap() == "127.0.0.1:26092"


def test_a_port_planned_twice_across_nodes_is_an_error_naming_both():
    from pipeline.stack.plan import StackOptions

    ports = Ports(elasticsearch=9098)  # Kafka node 3's port with --brokers 3
    ports.check(StackOptions(brokers=1))
    with pytest.raises(
        PrerequisiteError, match=r"port 9098 is planned twice \(kafka of Kafka node 3 and elasticsearch\)"
    ):
        ports.check(StackOptions(brokers=3))
    Ports(kafka_secure=9095).check(StackOptions(brokers=3))  # SASL_SSL ports are unused without --secure
    with pytest.raises(PrerequisiteError, match="9095"):
        Ports(kafka_secure=9095).check(StackOptions(brokers=3, secure=True))


@pytest.mark.parametrize("count", [0, 2, 4, 7])
def test_broker_count_is_an_odd_quorum(count):
    from pipeline.stack.plan import StackOptions

    with pytest.raises(PrerequisiteError, match="brokers"):
        StackOptions(brokers=count)


def test_three_node_properties_are_a_static_quorum_with_rf3_and_min_isr2(tmp_path):
    from pipeline.stack.plan import StackOptions
    from pipeline.stack.servers import kafka_listener_lines, kafka_properties

    ports, opts = Ports(kafka=26092, kafka_controller=26093), StackOptions(brokers=3)
    own = ports.kafka_node(1)
    text = kafka_properties(ports, 2, opts, tmp_path / "data", kafka_listener_lines(tmp_path, own, False))
    props = dict(line.split("=", 1) for line in text.splitlines() if line)
    assert props["node.id"] == "2" and props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:26093,2@127.0.0.1:26096,3@127.0.0.1:26099"
    assert "controller.quorum.bootstrap.servers" not in props
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:26095,CONTROLLER://127.0.0.1:26096"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:26095"
    for key in (
        "default.replication.factor",
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "share.coordinator.state.topic.replication.factor",
    ):
        assert props[key] == "3", key
    for key in ("min.insync.replicas", "transaction.state.log.min.isr", "share.coordinator.state.topic.min.isr"):
        assert props[key] == "2", key
    assert props["unclean.leader.election.enable"] == "false"
    single = kafka_properties(ports, 1, StackOptions(), tmp_path / "data", [])
    assert "controller.quorum.bootstrap.servers=127.0.0.1:26093" in single.splitlines()
    assert "default.replication.factor=1" in single.splitlines() and "min.insync.replicas=1" in single.splitlines()


def test_a_three_broker_stack_lists_each_node_and_bootstraps_from_all(tmp_path):
    stack = Stack(tmp_path, Ports(kafka=26092, kafka_controller=26093, elasticsearch=3, prometheus=4), brokers=3)
    statuses = stack.status()
    assert [(s.name, s.endpoint) for s in statuses][:3] == [
        ("kafka", "127.0.0.1:26092"),
        ("kafka-2", "127.0.0.1:26095"),
        ("kafka-3", "127.0.0.1:26098"),
    ]
    assert [s.name for s in statuses][3:] == ["elasticsearch", "prometheus"]
    assert not any(s.running for s in statuses) and stack.down() == []
    assert stack.env()["SOCPIPE_KAFKA_BOOTSTRAP"] == "127.0.0.1:26092,127.0.0.1:26095,127.0.0.1:26098"


def test_kafka_data_remembers_its_node_count(tmp_path):
    import json

    from pipeline.stack.servers import _kafka_cluster_id

    for node in ("kafka", "kafka-2", "kafka-3"):
        (tmp_path / node / "data").mkdir(parents=True)
        (tmp_path / node / "data" / "meta.properties").write_text("node.id=1\n")
    (tmp_path / "kafka-cluster.json").write_text(json.dumps({"cluster_id": "I1SrskB9QxSDon7Ep1VlHA", "brokers": 3}))
    assert Stack(tmp_path).options.brokers == 3  # a stopped 3-broker stack comes back with 3 nodes
    assert _kafka_cluster_id(tmp_path, 3) == "I1SrskB9QxSDon7Ep1VlHA"
    with pytest.raises(PrerequisiteError, match="belongs to a 3-broker cluster; start it with `--brokers 3`"):
        _kafka_cluster_id(tmp_path, 1)


def test_a_data_dir_from_before_the_record_is_one_node(tmp_path):
    from pipeline.stack.servers import _kafka_cluster_id, formatted_brokers

    assert formatted_brokers(tmp_path) is None
    new_id = _kafka_cluster_id(tmp_path, 3)
    assert len(new_id) == 22 and not new_id.startswith("-")
    (tmp_path / "kafka-cluster.json").unlink()
    (tmp_path / "kafka" / "data").mkdir(parents=True)
    (tmp_path / "kafka" / "data" / "meta.properties").write_text("node.id=1\n")
    assert formatted_brokers(tmp_path) == 1
    with pytest.raises(PrerequisiteError, match="1-broker cluster"):
        _kafka_cluster_id(tmp_path, 3)


def test_a_running_stack_keeps_its_broker_count(tmp_path):
    import json
    import os

    (tmp_path / "stack.json").write_text(
        json.dumps({"ports": Ports().__dict__, "options": {"secure": False, "brokers": 1}, "servers": ["kafka"]})
    )
    (tmp_path / "kafka.pid").write_text(str(os.getpid()))
    assert Stack(tmp_path).options.brokers == 1
    with pytest.raises(StackError, match="has 1 broker.*stack down.*--brokers 3"):
        Stack(tmp_path, brokers=3)


def test_a_secured_three_broker_stack_hands_out_every_sasl_ssl_listener(tmp_path):
    stack = Stack(tmp_path, Ports(kafka=26092, kafka_controller=26093, kafka_secure=26094), secure=True, brokers=3)
    assert stack.env()["SOCPIPE_STACK_KAFKA_SECURE_BOOTSTRAP"] == "127.0.0.1:26094,127.0.0.1:26097,127.0.0.1:26100"
    assert [s.endpoint for s in stack.status()][1] == "127.0.0.1:26095, SASL_SSL 127.0.0.1:26097"


def test_stack_status_from_a_new_shell_lists_every_kafka_node(tmp_path, monkeypatch):
    import json
    import os

    from click.testing import CliRunner

    from pipeline.cli import main

    ports = Ports(kafka=26092, kafka_controller=26093, elasticsearch=26290, prometheus=26291)
    names = ["kafka", "kafka-2", "kafka-3", "elasticsearch", "prometheus"]
    record = {"ports": ports.__dict__, "options": {"secure": False, "brokers": 3}, "servers": names}
    (tmp_path / "stack.json").write_text(json.dumps(record))
    (tmp_path / "kafka-2.pid").write_text(str(os.getpid()))  # a live pid stands for a running node
    for name in Ports.__dataclass_fields__:
        monkeypatch.delenv(f"SOCPIPE_STACK_{name.upper()}_PORT", raising=False)
    res = CliRunner().invoke(main, ["stack", "status", "--state-dir", str(tmp_path)])
    assert res.exit_code == 1  # nothing answers on those ports
    rows = {line.split()[0]: line for line in res.output.splitlines()[1:]}
    assert list(rows) == names
    assert "127.0.0.1:26095" in rows["kafka-2"] and str(os.getpid()) in rows["kafka-2"]
    assert "127.0.0.1:26098" in rows["kafka-3"]
    bad = CliRunner().invoke(main, ["stack", "up", "--brokers", "2", "--state-dir", str(tmp_path)])
    assert bad.exit_code == 2 and "'2' is not one of '1', '3', '5'" in bad.output


def test_integration_tests_reach_elasticsearch_with_the_stacks_credentials():
    """make test runs the secured stack (HTTPS + credentials): a client built from the bare URL fails there
    only, late in CI. Tests use tests.integration.conftest.es_client / es_config instead."""
    import re
    from pathlib import Path

    bare = re.compile(r"Elasticsearch\(\s*es_url\s*\)|ElasticsearchConfig\(\s*url\s*=\s*es_url\b")
    root = Path(__file__).resolve().parents[1]
    offenders = [
        f"{p.relative_to(root)}:{n}"
        for p in [*root.glob("integration/*.py"), *root.glob("bench/*.py")]
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if bare.search(line) and "test_secure_elasticsearch" not in p.name
    ]
    assert not offenders, f"use es_client(es_url)/es_config(es_url): {offenders}"


# --- credential files (`stack up --secure`): JSON that is not an object is an error naming the file ---
NOT_OBJECTS = ["[]", '["admin"]', '"secret"', "null", "42", "true"]
CREDENTIAL_FILES = {
    "elasticsearch": (lambda state: elasticsearch_secure.credentials_file(state), elasticsearch_secure.credentials),
    "kafka": (lambda state: state / "kafka" / "soc-credentials.json", kafka_secure.soc_credentials),
}
UNUSED = Ports(kafka=1, kafka_controller=2, kafka_secure=5, elasticsearch=3, elasticsearch_transport=6, prometheus=4)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("which", sorted(CREDENTIAL_FILES))
@pytest.mark.parametrize("text", NOT_OBJECTS)
def test_a_credential_file_holding_json_that_is_not_an_object_is_an_error_naming_it(tmp_path, which, text):
    where, read = CREDENTIAL_FILES[which]
    path = _write(where(tmp_path), text)
    with pytest.raises(
        StackError, match=re.escape(f"{path}: holds JSON ") + ".*not the object of credentials.*put that object back"
    ):
        read(tmp_path)
    assert path.read_text() == text  # left as it is: not silently replaced by new passwords


@pytest.mark.parametrize("which", sorted(CREDENTIAL_FILES))
def test_a_credential_file_cut_short_gets_new_credentials_kept_0600(tmp_path, which):
    where, read = CREDENTIAL_FILES[which]
    path = _write(where(tmp_path), '{"username": "socpipe-')  # a write cut short
    creds = read(tmp_path)
    assert read(tmp_path) == creds and path.stat().st_mode & 0o777 == 0o600
    assert not list(path.parent.glob("*.tmp"))


@pytest.mark.parametrize("which", sorted(CREDENTIAL_FILES))
def test_stack_up_stops_on_it_before_starting_anything(tmp_path, which):
    where, _ = CREDENTIAL_FILES[which]
    path = _write(where(tmp_path), "[]")
    with pytest.raises(StackError, match=re.escape(str(path))):
        Stack(tmp_path, UNUSED, secure=True).up()
    assert not list(tmp_path.glob("*.pid")) and not list(tmp_path.glob("*.log"))


def test_stack_status_shows_it_as_the_servers_problem(tmp_path, monkeypatch):
    """A running broker whose SOC credential file was broken afterwards: `status` says why, no traceback."""
    path = _write(tmp_path / "kafka" / "soc-credentials.json", '"oops"')
    stack = Stack(tmp_path, UNUSED, secure=True)
    # the secure probe reads the SOC credentials as `kafka_secure.setup_and_probe` does
    probe = Server(
        "kafka", "127.0.0.1:5", lambda state, ports: [], lambda p: str(kafka_secure.client_kwargs(tmp_path, 5)), 1.0
    )
    monkeypatch.setattr(stack, "servers", [probe])
    (tmp_path / "kafka.pid").write_text(str(os.getpid()))
    [status] = stack.status()
    assert status.running and not status.healthy and f"{path}: holds JSON a string" in status.detail
