"""`socpipe detect run`: one detector worker (scale by starting more with the same group)."""

from __future__ import annotations

import signal
import sys
import threading
import time

import click
from prometheus_client import start_http_server

from pipeline import logs
from pipeline.config import ConfigError, load_config
from pipeline.detector_config import DetectorConfig


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
@click.option("--log-level", default="INFO", show_default=True)
def run(config_path: str | None, log_level: str) -> None:
    """Run a worker until SIGTERM/SIGINT."""
    logs.setup(log_level)
    try:
        cfg = load_config(DetectorConfig, config_path).validate()
    except ConfigError as exc:
        click.echo(f"config error: {exc}", err=True)
        sys.exit(2)
    from kafka.errors import KafkaError

    from pipeline.worker import DetectorWorker  # heavy imports only once the config is valid

    try:
        worker = DetectorWorker(cfg, agency_lookup=_agency_lookup(cfg.inventory))
    except ConfigError as exc:
        click.echo(f"config error: {exc}", err=True)
        sys.exit(2)
    except KafkaError as exc:
        click.echo(f"cannot start: Kafka at {cfg.kafka.bootstrap} did not answer ({exc})", err=True)
        sys.exit(1)
    if cfg.metrics_port:
        start_http_server(cfg.metrics_port, addr=cfg.metrics_host, registry=worker.metrics.registry)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    worker.run(stop)


def _agency_lookup(inventory_path: str):
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


COMMANDS: list[click.Command] = [detect]
