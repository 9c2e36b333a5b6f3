"""`socpipe detect run`: one detector worker (scale by starting more with the same group)."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import click
from prometheus_client import start_http_server

from pipeline import logs
from pipeline.config import ConfigError, load_config
from pipeline.detector_config import DetectorConfig

if TYPE_CHECKING:
    from detectors.alerts import AgencyInfo


def _load(config_path: str | None, extra_rules: tuple[str, ...] = ()) -> DetectorConfig:
    """The config, with `--rules` paths added after those of `rules:` (each path once)."""
    try:
        cfg = load_config(DetectorConfig, config_path)
        cfg.rules = list(dict.fromkeys([*cfg.rules, *extra_rules]))
        return cfg.validate()
    except ConfigError as exc:
        click.echo(f"config error: {exc}", err=True)
        sys.exit(2)


@click.group()
def detect() -> None:
    """Detector workers: Kafka -> ECS -> Sigma rules and anomaly models -> alerts in Elasticsearch."""


@detect.command("run")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="detector.yaml (every key has a default; SOCPIPE_* variables override).",
)
@click.option(
    "--rules",
    "extra_rules",
    multiple=True,
    type=click.Path(exists=True),
    help="More Sigma rule files or folders, added to `rules:` of the config; repeatable. E.g. SigmaHQ's "
    "Windows rules for agencies that forward Windows events: --rules ../shared/sigma/rules-windows",
)
@click.option("--log-level", default="INFO", show_default=True)
def run(config_path: str | None, extra_rules: tuple[str, ...], log_level: str) -> None:
    """Run a worker until SIGTERM/SIGINT."""
    logs.setup(log_level)
    cfg = _load(config_path, extra_rules)
    from pipeline.cli.startup import fail, start_guard
    from pipeline.worker import DetectorWorker  # heavy imports only once the config is valid

    try:
        with start_guard(kafka=cfg.kafka.bootstrap, es=cfg.es.url):  # unreachable, refused credentials
            worker = DetectorWorker(cfg, agency_lookup=_agency_lookup(cfg.inventory))
    except ConfigError as exc:
        click.echo(f"config error: {exc}", err=True)
        sys.exit(2)
    if cfg.metrics_port:
        try:
            start_http_server(cfg.metrics_port, addr=cfg.metrics_host, registry=worker.metrics.registry)
        except OSError as exc:
            worker.close()
            fail(f"metrics endpoint {cfg.metrics_host}:{cfg.metrics_port}: {exc}")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    worker.run(stop)


def _agency_lookup(inventory_path: str) -> Callable[[str], AgencyInfo] | None:
    """Agency name and tier for alerts, from the coverage inventory when one is configured."""
    if not inventory_path:
        return None
    from detectors.alerts import AgencyInfo
    from pipeline.coverage.inventory import InventoryFile

    inventory = InventoryFile(inventory_path)  # re-read when the file changes, like the coverage service

    def lookup(agency_id: str) -> AgencyInfo:
        inventory.refresh(time.time())
        agency = inventory.current.by_id().get(agency_id)
        return AgencyInfo(agency_id, agency.name, agency.tier) if agency else AgencyInfo(agency_id)

    return lookup


@detect.command("quarantine")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="detector.yaml (the quarantine topic and Kafka settings; SOCPIPE_* variables override).",
)
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True, help="The latest N records.")
@click.option("--reason", default=None, help="Only this reason (bad_mac, agency_mismatch, unknown_agent ...).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def quarantine(config_path: str | None, limit: int, reason: str | None, as_json: bool) -> None:
    """Raw records the detector refused to trust, latest last: when, why, from which offset, and the
    agency and agent they claimed (as claimed: never trusted)."""
    import json

    from pipeline import kafka_io
    from pipeline.cli.output import clean, clean_json
    from pipeline.cli.startup import start_guard
    from pipeline.worker.intake import quarantine_row

    cfg = _load(config_path)
    # without --reason, only the last `limit` of each partition can be among the latest `limit`; a Kafka
    # that refuses the credentials is named so (not 'did not answer')
    with start_guard(kafka=cfg.kafka.bootstrap, doing=f"read {cfg.quarantine_topic}"):
        records = kafka_io.read_records(cfg.kafka, cfg.quarantine_topic, tail=None if reason else limit)
    rows = [quarantine_row(r.timestamp, r.key, r.headers, r.value) for r in records]
    rows = sorted((r for r in rows if reason is None or r["reason"] == reason), key=lambda r: r["time"])[-limit:]
    if as_json:
        for r in rows:
            click.echo(clean_json(json.dumps(r, ensure_ascii=False)))
        return
    if not rows:
        click.echo(f"no quarantined records in {cfg.quarantine_topic}" + (f" with reason {reason}" if reason else ""))
        return
    click.echo(
        f"{'TIME':<24}  {'REASON':<18}  {'CLAIMED AGENCY':<24}  {'CLAIMED AGENT':<20}  {'LINES':>5}  FROM / SOURCE"
    )
    for r in rows:
        click.echo(
            f"{r['time']:<24}  {clean(r['reason']):<18}  {clean(r['claimed_agency'])[:24]:<24}  "
            f"{clean(r['claimed_agent'])[:20]:<20}  {clean(r['lines']):>5}  {clean(r['from'])}  {clean(r['source'])[:80]}"
        )


def _add_dead_letters() -> None:
    from pipeline.cli.dead_letters import dead_letters

    detect.add_command(dead_letters)


_add_dead_letters()
COMMANDS: list[click.Command] = [detect]
