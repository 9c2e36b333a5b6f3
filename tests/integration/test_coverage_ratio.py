"""The coverage ratio, computed from real heartbeats and raw records on Kafka, read back from Prometheus."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import yaml

from pipeline import kafka_io
from pipeline.config import KafkaConfig
from pipeline.devtools.simulate import SimulatedAgent, run_agents
from pipeline.enrolment.registry import Registry
from tests.integration.conftest import free_port, promql, wait_for
from tests.integration.coverage_helpers import RunningCoverage, agency, write_inventory


def _value(prometheus_url: str, query: str) -> float | None:
    result = promql(prometheus_url, query)
    return float(result[0]["value"][1]) if result else None


def test_three_of_four_agencies_monitored_reads_075_in_prometheus(
    tmp_path, kafka_bootstrap, prometheus_url, unique, scrape_target
):
    auth = [{"name": "auth", "path": "*auth.log", "dataset": "system.auth"}]
    inv = write_inventory(
        tmp_path / "inventory.yaml",
        [
            agency("dept-a", "department", auth),
            agency("district-b", "district", auth),
            agency("commune-c", "commune"),  # no sources listed: any source of the agency counts
            agency("commune-d", "commune", auth),
        ],
    )
    port = free_port()
    job = f"cov-{unique}"
    scrape_target(port, job)
    with RunningCoverage(tmp_path, kafka_bootstrap, unique, inv, port, heartbeat_interval_s=1.0) as cov:
        reg = Registry(cov.cfg.registry)
        agents = []
        for agency_id in ("dept-a", "district-b", "commune-c"):
            agent_id, secret = reg.enroll_direct(agency_id, f"host-{agency_id}")
            agents.append(SimulatedAgent(agency_id, agent_id, secret, f"host-{agency_id}"))
        producer = kafka_io.producer(KafkaConfig(bootstrap=kafka_bootstrap), linger_ms=5)
        stop = threading.Event()
        sim = threading.Thread(
            target=run_agents,
            args=(producer, agents, 1.0, stop, cov.cfg.heartbeat_topic, cov.cfg.raw_topic),
            daemon=True,
        )
        sim.start()
        try:
            ratio = wait_for(
                lambda: _value(prometheus_url, f'socpipe_coverage_ratio{{job="{job}"}}') == 0.75 or None,
                timeout_s=60,
                what="coverage ratio 0.75 in Prometheus",
            )
            assert ratio
            assert _value(prometheus_url, f'socpipe_agencies_total{{job="{job}"}}') == 4
            assert _value(prometheus_url, f'socpipe_agencies_monitored{{job="{job}"}}') == 3
            never = promql(prometheus_url, f'socpipe_agency_state{{job="{job}",state="never_seen"}} == 1')
            assert [r["metric"]["agency"] for r in never] == ["commune-d"]
            lines = _value(prometheus_url, f'sum(socpipe_events_received_total{{job="{job}",agency="dept-a"}})')
            assert lines and lines >= 5
            # hot reload: a fifth agency (and one broken entry, reported by key) without a restart
            entries = yaml.safe_load(inv.read_text())["agencies"]
            entries += [agency("commune-e", "commune", auth), {"id": "commune-f", "name": "F", "tier": "hamlet"}]
            write_inventory(inv, entries)
            wait_for(
                lambda: _value(prometheus_url, f'socpipe_agencies_total{{job="{job}"}}') == 5,
                timeout_s=30,
                what="inventory reloaded (5 agencies)",
            )
            assert _value(prometheus_url, f'socpipe_coverage_ratio{{job="{job}"}}') == 0.6
            assert _value(prometheus_url, f'socpipe_inventory_invalid_entries{{job="{job}"}}') == 1
        finally:
            stop.set()
            sim.join(timeout=5)
            producer.close(timeout=5)


def test_every_dashboard_query_is_valid_promql_for_the_real_prometheus(prometheus_url):
    dash = json.loads((Path(__file__).resolve().parents[2] / "dashboards/grafana/socpipe-coverage.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert exprs
    for expr in exprs:
        promql(prometheus_url, expr)  # raises on a parse error (HTTP 400)
