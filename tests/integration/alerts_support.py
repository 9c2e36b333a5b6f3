"""Shared helpers for the alert integration tests: a sample detection and an ES env with a unique prefix."""

from __future__ import annotations

import pytest
from elasticsearch import Elasticsearch

from detectors.sigma.detection import make_detection
from detectors.sigma.model import RuleMeta
from pipeline.elastic import connect, setup
from tests.integration.conftest import es_config


def detection(user: str, ts: float, ip: str = "203.0.113.7"):
    meta = RuleMeta(
        id="0d8d5b0c-1111-4c3c-9d2f-aaaaaaaaaaaa",
        title="SSH brute force",
        level="high",
        tags=["attack.credential_access", "attack.t1110.001"],
        references=["https://example.org/r"],
    )
    events = [
        {
            "@timestamp": "2026-11-28T01:02:03.123Z",
            "event.dataset": "system.auth",
            "source.ip": ip,
            "user.name": user,
            "host.name": "web01",
            "organization.id": "so-tc",
        }
    ]
    return make_detection(meta, "event_count", {"source.ip": ip}, [ts, ts + 5], events, 12, ts)


@pytest.fixture
def es_env(es_url, unique):
    cfg = es_config(es_url, index_prefix=f"t{unique}")
    es = connect(cfg)
    setup(es, cfg)
    yield cfg, es
    cleanup(es, cfg.index_prefix)


def cleanup(es: Elasticsearch, prefix: str) -> None:
    for pattern in (f"{prefix}-alerts-*", f"{prefix}-events-*", f"{prefix}-incidents-*"):
        for name in es.indices.get(index=pattern, ignore_unavailable=True, allow_no_indices=True):
            es.indices.delete(index=name)
    for kind in ("alerts", "events", "incidents"):
        es.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-{kind}")
