"""docker-compose.yml cannot run here; check that it is consistent with the code and the repo."""

from __future__ import annotations

import importlib
import typing
from dataclasses import fields, is_dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_production_shaped_services_present():
    assert {"kafka", "elasticsearch", "kibana", "prometheus", "detector", "coverage", "agent-demo"} <= set(SERVICES)
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:")
    assert "elasticsearch/elasticsearch:8" in SERVICES["elasticsearch"]["image"]
    assert SERVICES["kibana"]["environment"]["ELASTICSEARCH_HOSTS"] == "http://elasticsearch:9200"


def test_bind_mounts_and_build_context_exist():
    for name, svc in SERVICES.items():
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("./"):
                assert (ROOT / src).exists(), f"{name}: mounts missing {src}"
        if "build" in svc:
            assert (ROOT / svc["build"] / "Dockerfile").exists()


def test_socpipe_commands_reference_shipped_configs():
    for name in ("detector", "coverage", "agent-demo"):
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
        "coverage": ("pipeline.coverage.config", "CoverageConfig"),
        "agent-demo": ("collectors.config", "AgentConfig"),
    }
    for service, (module, cls_name) in roles.items():
        cls = getattr(importlib.import_module(module), cls_name)
        known = _env_keys(cls)
        for var in SERVICES[service].get("environment", {}):
            if var.startswith("SOCPIPE_"):
                assert var in known, f"{service}: {var} overrides no key of {cls_name}"


def test_kafka_and_es_endpoints_point_at_services():
    for name in ("detector", "coverage", "agent-demo"):
        env = SERVICES[name]["environment"]
        assert env["SOCPIPE_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert SERVICES["detector"]["environment"]["SOCPIPE_ES_URL"] == "http://elasticsearch:9200"


def test_prometheus_scrapes_the_ports_services_expose():
    prom = yaml.safe_load((ROOT / "config" / "prometheus.compose.yml").read_text())
    targets = {t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    for name in ("detector", "coverage"):
        port = SERVICES[name]["expose"][0]
        assert f"{name}:{port}" in targets
