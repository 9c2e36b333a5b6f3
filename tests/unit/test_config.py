"""The config loader: defaults, YAML, environment overrides, and errors that name the key."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from pipeline.config import ConfigError, ElasticsearchConfig, KafkaConfig, load_config
from pipeline.detector_config import DetectorConfig


@dataclass
class Item:
    name: str = "x"
    weight: float = 1.0


@dataclass
class Sample:
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    es: ElasticsearchConfig = field(default_factory=ElasticsearchConfig)
    paths: list[str] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    enabled: bool = False
    interval_s: float = 15.0
    limit: int = 10
    note: str | None = None


def write(tmp_path, text: str):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_defaults_without_file():
    cfg = load_config(Sample, None, env={})
    assert cfg.kafka.bootstrap == "127.0.0.1:9092" and cfg.interval_s == 15.0 and cfg.items == []


def test_yaml_then_env_override(tmp_path):
    p = write(tmp_path, "kafka: {bootstrap: 'k1:9092'}\nlimit: 3\nitems: [{name: a, weight: 2}]\n")
    cfg = load_config(
        Sample,
        p,
        env={"SOCPIPE_KAFKA_BOOTSTRAP": "k2:9092,k3:9092", "SOCPIPE_ENABLED": "true", "SOCPIPE_PATHS": "a, b"},
    )
    assert cfg.kafka.bootstrap == "k2:9092,k3:9092"
    assert cfg.kafka.client_kwargs()["bootstrap_servers"] == ["k2:9092", "k3:9092"]
    assert cfg.limit == 3 and cfg.enabled is True and cfg.paths == ["a", "b"]
    assert cfg.items == [Item("a", 2.0)]


@pytest.mark.parametrize(
    "text, key",
    [
        ("limti: 3\n", "limti"),
        ("kafka: {bootstrapp: x}\n", "kafka.bootstrapp"),
        ("limit: many\n", "limit"),
        ("limit: 2.5\n", "limit"),
        ("enabled: 'yes please'\n", "enabled"),
        ("items: [{name: a, weight: heavy}]\n", "items[0].weight"),
        ("kafka: 3\n", "kafka"),
    ],
)
def test_errors_name_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError) as err:
        load_config(Sample, write(tmp_path, text), env={})
    assert str(err.value).startswith(key)


def test_env_error_names_the_variable():
    with pytest.raises(ConfigError, match="SOCPIPE_LIMIT"):
        load_config(Sample, None, env={"SOCPIPE_LIMIT": "lots"})


def test_broken_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Sample, write(tmp_path, "kafka: [unclosed\n"), env={})
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(Sample, tmp_path / "nope.yaml", env={})


def test_shipped_detector_config_is_valid():
    cfg = load_config(DetectorConfig, "config/detector.yaml", env={}).validate()
    assert cfg.rules == ["rules"] and cfg.metrics_port == 9464


def test_detector_validation_names_key():
    with pytest.raises(ConfigError, match="max_batch_records"):
        DetectorConfig(max_batch_records=0).validate()
    with pytest.raises(ConfigError, match="process_context_max"):
        DetectorConfig(process_context_max=-1).validate()
    cfg = load_config(DetectorConfig, None, env={"SOCPIPE_PROCESS_CONTEXT_MAX": "0"}).validate()
    assert cfg.process_context_max == 0  # off


def test_worker_without_usable_rules_is_a_config_error_naming_rules(tmp_path):
    """Checked before any connection is made: a wrong rules path must not look like a Kafka problem."""
    from pipeline.worker import DetectorWorker

    bad = tmp_path / "broken.yml"
    bad.write_text("title: [unclosed\n")
    with pytest.raises(ConfigError, match=r"^rules: no usable rule"):
        DetectorWorker(DetectorConfig(rules=[str(bad), str(tmp_path / "missing")]))


@pytest.mark.parametrize(
    "name, cls_path",
    [
        ("detector.yaml", "pipeline.detector_config:DetectorConfig"),
        ("triage.yaml", "pipeline.triage.config:TriageConfig"),
        ("coverage.yaml", "pipeline.coverage.config:CoverageConfig"),
    ],
)
def test_shipped_configs_show_every_credential_key_with_its_default_and_env_name(tmp_path, name, cls_path):
    """An operator securing Kafka/Elasticsearch finds every key of those sections in the sample config,
    commented with its true default and the SOCPIPE_* variable that sets it."""
    import dataclasses
    import importlib
    import re
    from pathlib import Path

    module, cls_name = cls_path.split(":")
    cls = getattr(importlib.import_module(module), cls_name)
    text = (Path(__file__).resolve().parents[2] / "config" / name).read_text()
    commented = re.compile(r"^  # (\w+): (\S+)\s+# (SOCPIPE_\w+)", re.M)
    sections = {f.name: f.type for f in dataclasses.fields(cls) if f.name in ("kafka", "es")}
    assert sections, name
    for section in sections:
        body = re.search(rf"^{section}:\n((?:  .*\n)+)", text, re.M)
        assert body, f"{name}: no {section} section"
        sub = {"kafka": KafkaConfig, "es": ElasticsearchConfig}[section]
        wanted = [f.name for f in dataclasses.fields(sub)]
        if section == "es" and name != "detector.yaml":  # only the detector writes indices and sets them up
            wanted = ["url", "index_prefix", "api_key", "username", "password", "ca_certs", "verify_certs"]
        missing = [key for key in wanted if not re.search(rf"^  (# )?{key}:", body[1], re.M)]
        assert missing == [], f"{name}: {section}: {missing}"
        for key, _, env in commented.findall(body[1]):
            assert env == f"SOCPIPE_{section.upper()}_{key.upper()}", (name, key)
    # uncommenting them changes nothing: the values shown are the defaults, and the keys are real
    original = write(tmp_path, text)
    shown = tmp_path / "uncommented.yaml"
    shown.write_text(commented.sub(lambda m: m[0].replace("  # ", "  ", 1), text))
    assert shown.read_text() != text
    assert load_config(cls, shown, env={}) == load_config(cls, original, env={})
