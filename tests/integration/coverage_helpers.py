"""Helpers for coverage integration tests: a coverage service in a thread, configured for one test."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import KafkaConfig
from pipeline.coverage.config import CoverageConfig
from pipeline.coverage.service import CoverageService


def write_inventory(path: Path, agencies: list[dict]) -> Path:
    path.write_text(yaml.safe_dump({"agencies": agencies}, allow_unicode=True))
    return path


def agency(agency_id: str, tier: str = "commune", sources: list[dict] | None = None) -> dict:
    entry: dict[str, Any] = {"id": agency_id, "name": f"UBND {agency_id}", "tier": tier}
    if sources is not None:
        entry["sources"] = sources
    return entry


class RunningCoverage:
    """Start the real service (real Kafka, real metrics port) in a thread; stop it on exit."""

    def __init__(self, tmp: Path, bootstrap: str, unique: str, inventory: Path, port: int, **overrides):
        self.cfg = CoverageConfig(
            kafka=KafkaConfig(bootstrap=bootstrap),
            heartbeat_topic=f"test.hb.{unique}",
            raw_topic=f"test.raw.{unique}",
            inventory=str(inventory),
            registry=str(tmp / "registry.db"),
            state_dir=str(tmp / "state"),
            metrics_host="127.0.0.1",
            metrics_port=port,
            **overrides,
        )
        self.service = CoverageService(self.cfg)
        self.thread = threading.Thread(target=self.service.run, name="coverage", daemon=True)

    def __enter__(self) -> RunningCoverage:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.service.stop()
        self.thread.join(timeout=15)
