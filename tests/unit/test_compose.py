"""docker-compose.yml cannot run here (no Docker): validate it against the Compose specification's JSON
schema (vendored by the check-jsonschema package, never fetched at test time) and check it against the
code: image tags, volumes, environment overrides, ports, state paths."""

from __future__ import annotations

import importlib
import typing
from dataclasses import fields, is_dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_valid_against_the_compose_specification_schema():
    import json
    from importlib.resources import files

    import jsonschema

    schema_file = files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(COMPOSE), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:10])
    # the schema does bite: a misspelt key or a wrong shape is refused
    broken = {**COMPOSE, "services": {**SERVICES, "kafka": {**SERVICES["kafka"], "restart_policy": "always"}}}
    assert not validator.is_valid(broken)
    assert not validator.is_valid({**COMPOSE, "volumes": ["kafka-data"]})


def test_production_shaped_services_present():
    assert {
        "kafka",
        "elasticsearch",
        "kibana",
        "prometheus",
        "alertmanager",
        "grafana",
        "es-setup",
        "detector",
        "coverage",
        "enrolment",
        "agent-demo",
    } <= set(SERVICES)
    assert SERVICES["kibana"]["environment"]["ELASTICSEARCH_HOSTS"] == "http://elasticsearch:9200"


def test_server_images_are_the_versions_the_code_runs():
    from pipeline.stack.elasticsearch import ES_VERSION
    from pipeline.stack.servers import KAFKA_VERSION

    assert SERVICES["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"
    assert SERVICES["elasticsearch"]["image"] == f"docker.elastic.co/elasticsearch/elasticsearch:{ES_VERSION}"
    assert SERVICES["kibana"]["image"] == f"docker.elastic.co/kibana/kibana:{ES_VERSION}"
    for name, svc in SERVICES.items():
        tag = svc.get("image", "x:local").rsplit(":", 1)[-1]
        assert tag not in ("", "latest"), f"{name}: pin an image tag"


def test_kafka_keeps_its_data_on_its_volume_with_a_fixed_cluster_and_a_host_listener():
    kafka = SERVICES["kafka"]
    env = kafka["environment"]
    log_dirs = env["KAFKA_LOG_DIRS"]
    assert any(v.split(":")[1] == log_dirs and v.split(":")[0] in COMPOSE["volumes"] for v in kafka["volumes"])
    assert len(env["CLUSTER_ID"]) == 22  # a base64 UUID, as kafka-storage random-uuid prints
    listeners = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert listeners["INTERNAL"] == "kafka:9092" and listeners["HOST"].startswith("127.0.0.1:")
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] == "INTERNAL"


def test_every_published_port_is_on_localhost():
    """Elasticsearch and Kibana run without security in this file: nothing may be published beyond the host."""
    for name, svc in SERVICES.items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port} is published on every interface"


def test_named_volumes_are_declared_and_socpipe_state_paths_absolute_on_volumes():
    for name, svc in SERVICES.items():
        for vol in svc.get("volumes", []):
            src, dst = vol.split(":")[:2]
            if not src.startswith(("./", "/")):
                assert src in COMPOSE["volumes"], f"{name}: volume {src} is not declared"
            assert dst.startswith("/")
        mounts = [v.split(":")[1] for v in svc.get("volumes", [])]
        for var, value in (svc.get("environment") or {}).items():
            if var in ("SOCPIPE_REGISTRY", "SOCPIPE_STATE_DIR"):
                assert value.startswith("/"), f"{name}: {var} must be absolute"
                assert any(value.startswith(m + "/") or value == m for m in mounts), f"{name}: {var} not on a volume"


def test_socpipe_services_restart_and_report_health():
    for name in ("detector", "coverage", "enrolment"):
        svc = SERVICES[name]
        assert svc["restart"] == "unless-stopped"
        assert "healthcheck" in svc, name
    assert SERVICES["es-setup"]["restart"] == "no"
    assert SERVICES["detector"]["depends_on"]["es-setup"] == {"condition": "service_completed_successfully"}


def test_demo_agent_enrols_against_the_enrolment_service_then_ships():
    script = SERVICES["agent-demo"]["command"][0]
    port = SERVICES["enrolment"]["environment"]["SOCPIPE_ENROLMENT_LISTEN_PORT"]
    assert f"agent enroll --server http://enrolment:{port}" in script
    assert "agency token create" in script and script.rstrip().endswith("agent.yaml")
    assert SERVICES["enrolment"]["environment"]["SOCPIPE_ENROLMENT_KAFKA_BOOTSTRAP"] == "kafka:9092"


def test_prometheus_alerts_go_to_alertmanager_and_grafana_gets_the_dashboards():
    prom = yaml.safe_load((ROOT / "config" / "prometheus.compose.yml").read_text())
    am_port = SERVICES["alertmanager"]["ports"][0].rsplit(":", 1)[-1]
    targets = prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == [f"alertmanager:{am_port}"]
    grafana = {v.split(":")[1]: v.split(":")[0] for v in SERVICES["grafana"]["volumes"]}
    provider = yaml.safe_load((ROOT / "config" / "compose" / "grafana-dashboards.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert grafana[path] == "./dashboards/grafana" and list((ROOT / "dashboards" / "grafana").glob("*.json"))


def test_bind_mounts_and_build_context_exist():
    for name, svc in SERVICES.items():
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("./"):
                assert (ROOT / src).exists(), f"{name}: mounts missing {src}"
        if "build" in svc:
            assert (ROOT / svc["build"] / "Dockerfile").exists()


def test_socpipe_commands_reference_shipped_configs():
    for name in ("detector", "coverage", "enrolment", "es-setup"):
        cmd = SERVICES[name]["command"]
        cfg = cmd[cmd.index("--config") + 1]
        assert cfg.startswith("/opt/socpipe/config/")
        assert (ROOT / "config" / Path(cfg).name).exists(), f"{name}: {cfg} is not in config/"


def _env_keys(cls, prefix="SOCPIPE_") -> set[str]:
    keys = set()
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        typ = hints[f.name]
        if is_dataclass(typ):
            keys |= _env_keys(typ, f"{prefix}{f.name.upper()}_")
        else:
            keys.add(f"{prefix}{f.name.upper()}")
    return keys


def test_environment_overrides_are_real_config_keys():
    roles = {
        "detector": ("pipeline.detector_config", "DetectorConfig"),
        "es-setup": ("pipeline.detector_config", "DetectorConfig"),
        "coverage": ("pipeline.coverage.config", "CoverageConfig"),
        "enrolment": ("pipeline.coverage.config", "CoverageConfig"),
    }
    for service, (module, cls_name) in roles.items():
        cls = getattr(importlib.import_module(module), cls_name)
        known = _env_keys(cls)
        for var in SERVICES[service].get("environment", {}):
            if var.startswith("SOCPIPE_"):
                assert var in known, f"{service}: {var} overrides no key of {cls_name}"


def test_kafka_and_es_endpoints_point_at_services():
    for name in ("detector", "coverage", "enrolment"):
        env = SERVICES[name]["environment"]
        assert env["SOCPIPE_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert SERVICES["detector"]["environment"]["SOCPIPE_ES_URL"] == "http://elasticsearch:9200"


def test_prometheus_scrapes_the_ports_services_expose():
    prom = yaml.safe_load((ROOT / "config" / "prometheus.compose.yml").read_text())
    targets = {t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    for name in ("detector", "coverage"):
        port = SERVICES[name]["expose"][0]
        assert f"{name}:{port}" in targets
        assert SERVICES[name]["environment"]["SOCPIPE_METRICS_PORT"] == port  # the port it really listens on


def test_metrics_listen_beyond_the_container_only_where_compose_says_so():
    """Metrics are plain HTTP without auth: the services default to loopback, so compose (where Prometheus
    scrapes over the compose network) must open them explicitly, and the sample configs stay on loopback."""
    from pipeline.coverage.config import CoverageConfig
    from pipeline.detector_config import DetectorConfig

    assert CoverageConfig().metrics_host == DetectorConfig().metrics_host == "127.0.0.1"
    for name, sample in (("detector", "detector.yaml"), ("coverage", "coverage.yaml")):
        assert SERVICES[name]["environment"]["SOCPIPE_METRICS_HOST"] == "0.0.0.0", name
        shipped = yaml.safe_load((ROOT / "config" / sample).read_text()) or {}
        assert shipped.get("metrics_host", "127.0.0.1") == "127.0.0.1", sample
