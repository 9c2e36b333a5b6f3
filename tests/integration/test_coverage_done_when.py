"""The coverage issue's done-when, over real Kafka, real agent processes and the real Prometheus.

10 agencies, 7 agents (separate processes speaking the wire contract), default heartbeat settings
(15 s, agent_down after 3 missed): one agent is `kill -9`ed, one agency has a silent expected
source. Prometheus must report coverage 5/10 within 60 s of the kill, the killed agency as
agent_down and the other as degraded. A forged heartbeat is rejected, counted, and moves nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid

from collectors.wire import Heartbeat, sign_heartbeat
from pipeline import kafka_io
from pipeline.config import KafkaConfig
from pipeline.devtools.simulate import SimulatedAgent, run_agents, send_batch
from pipeline.enrolment.registry import Registry
from tests.integration.conftest import free_port, promql, wait_for
from tests.integration.coverage_helpers import RunningCoverage, agency, write_inventory

AUTH = {"name": "auth", "path": "*auth.log", "dataset": "system.auth"}
MAIL = {"name": "mail", "path": "/var/log/mail.log", "silent_after": "8h"}


def _value(url: str, query: str) -> float | None:
    r = promql(url, query)
    return float(r[0]["value"][1]) if r else None


def _states(url: str, job: str) -> dict[str, str]:
    return {
        r["metric"]["agency"]: r["metric"]["state"] for r in promql(url, f'socpipe_agency_state{{job="{job}"}} == 1')
    }


def test_kill_9_and_silent_source_seen_by_prometheus_within_60s(
    tmp_path, kafka_bootstrap, prometheus_url, unique, scrape_target
):
    ids = [f"ag{i:02d}" for i in range(10)]
    entries = [agency(i, "district" if n < 3 else "commune", [AUTH]) for n, i in enumerate(ids)]
    entries[6] = agency(ids[6], "commune", [AUTH, MAIL])  # ag06's mail source will stay silent
    inv = write_inventory(tmp_path / "inventory.yaml", entries)
    port, job = free_port(), f"cov-{unique}"
    scrape_target(port, job)
    procs: dict[str, subprocess.Popen] = {}
    with RunningCoverage(tmp_path, kafka_bootstrap, unique, inv, port) as cov:  # default 15 s x 3
        reg = Registry(cov.cfg.registry)
        for agency_id in ids[:7]:
            agent_id, _ = reg.enroll_direct(agency_id, f"srv-{agency_id}")
            args = [
                sys.executable,
                "-m",
                "pipeline.devtools.simulate",
                "--bootstrap",
                kafka_bootstrap,
                "--registry",
                cov.cfg.registry,
                "--agent",
                agent_id,
                "--interval",
                "15",
                "--heartbeat-topic",
                cov.cfg.heartbeat_topic,
                "--raw-topic",
                cov.cfg.raw_topic,
                "--source",
                "/var/log/auth.log",
            ]
            if agency_id == ids[6]:
                args += ["--source", "/var/log/mail.log", "--silent", f"{agent_id}=/var/log/mail.log"]
            procs[agency_id] = subprocess.Popen(
                args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "PYTHONWARNINGS": "ignore"}
            )
        try:
            wait_for(
                lambda: _value(prometheus_url, f'socpipe_coverage_ratio{{job="{job}"}}') == 0.6,
                timeout_s=60,
                what="6/10 monitored before the kill",
            )
            assert _states(prometheus_url, job)[ids[6]] == "degraded"
            procs[ids[5]].kill()  # SIGKILL: no goodbye heartbeat
            killed_at = time.monotonic()
            wait_for(
                lambda: _value(prometheus_url, f'socpipe_coverage_ratio{{job="{job}"}}') == 0.5,
                timeout_s=60,
                interval_s=1,
                what="coverage 5/10 after the kill",
            )
            elapsed = time.monotonic() - killed_at
            states = _states(prometheus_url, job)
            assert states[ids[5]] == "agent_down"
            assert states[ids[6]] == "degraded"
            assert [a for a in ids if states[a] == "never_seen"] == ids[7:]
            assert sorted(a for a in ids if states[a] == "monitored") == ids[:5]
            assert _value(prometheus_url, f'socpipe_agencies_monitored{{job="{job}"}}') == 5
            silent = promql(prometheus_url, f'socpipe_source_delivering{{job="{job}",agency="{ids[6]}"}} == 0')
            assert [r["metric"]["source"] for r in silent] == ["mail"]
            assert elapsed < 60, f"agent_down seen in Prometheus {elapsed:.0f}s after kill -9"
            print(f"\nkill -9 -> agent_down in Prometheus after {elapsed:.1f}s")
        finally:
            for p in procs.values():
                p.terminate()
            for p in procs.values():
                p.wait(timeout=10)


def test_forged_heartbeats_are_rejected_counted_and_move_nothing(
    tmp_path, kafka_bootstrap, prometheus_url, unique, scrape_target
):
    inv = write_inventory(tmp_path / "inventory.yaml", [agency("real", "commune"), agency("victim", "commune")])
    port, job = free_port(), f"cov-{unique}"
    scrape_target(port, job)
    with RunningCoverage(tmp_path, kafka_bootstrap, unique, inv, port, heartbeat_interval_s=1.0) as cov:
        reg = Registry(cov.cfg.registry)
        agent_id, secret = reg.enroll_direct("real", "srv-real")
        reg.enroll_direct("victim", "srv-victim")  # enrolled but its agent never speaks
        producer = kafka_io.producer(KafkaConfig(bootstrap=kafka_bootstrap), linger_ms=5)
        stop = threading.Event()
        honest = SimulatedAgent("real", agent_id, secret, "srv-real")
        sim = threading.Thread(
            target=run_agents,
            args=(producer, [honest], 1.0, stop, cov.cfg.heartbeat_topic, cov.cfg.raw_topic),
            daemon=True,
        )
        sim.start()
        try:
            wait_for(
                lambda: _value(prometheus_url, f'socpipe_coverage_ratio{{job="{job}"}}') == 0.5,
                timeout_s=45,
                what="1/2 monitored",
            )

            def forge(agency_id: str, agent: str, key: str | None) -> bytes:
                hb = Heartbeat(
                    agency_id=agency_id,
                    agent_id=agent,
                    host="evil",
                    version="1",
                    sent_at=time.time(),
                    started_at=time.time(),
                )
                hb.signature = sign_heartbeat(hb, key) if key else ""
                return hb.to_bytes()

            forgeries = [
                forge("victim", agent_id, secret),  # real agent's key, another agency's id
                forge("victim", "agt-" + uuid.uuid4().hex[:12], "guess"),  # unknown agent
                forge("real", agent_id, "wrong-secret"),  # bad signature
                forge("victim", agent_id, None),  # unsigned
                b"\xff not json",
            ]  # garbage
            for _ in range(3):
                for value in forgeries:
                    producer.send(cov.cfg.heartbeat_topic, value=value)
                # raw traffic claiming the victim agency with the real agent's id must not count either
                send_batch(
                    producer,
                    cov.cfg.raw_topic,
                    SimulatedAgent("victim", agent_id, secret, "x").batch("/var/log/auth.log", 3),
                    secret,
                    honest.counter.next(),
                )
                producer.flush()
                time.sleep(1)

            def rejected() -> dict[str, float]:
                return {
                    r["metric"]["reason"]: float(r["value"][1])
                    for r in promql(prometheus_url, f'socpipe_heartbeats_rejected_total{{job="{job}"}}')
                }

            got = wait_for(
                lambda: (lambda r: r if r.get("agency_mismatch", 0) >= 3 and len(r) >= 5 else None)(rejected()),
                timeout_s=30,
                what="rejections counted in Prometheus",
            )
            assert {"agency_mismatch", "unknown_agent", "bad_signature", "unsigned", "malformed"} <= set(got)
            assert all(v >= 3 for v in got.values())
            forged = _value(
                prometheus_url, f'socpipe_raw_records_rejected_total{{job="{job}",reason="agency_mismatch"}}'
            )
            assert forged is not None and forged >= 3
            time.sleep(6)  # one more scrape after the forgeries: nothing moved
            assert _value(prometheus_url, f'socpipe_coverage_ratio{{job="{job}"}}') == 0.5
            assert _states(prometheus_url, job) == {"real": "monitored", "victim": "never_seen"}
            snapshot = cov.service.snapshot
            assert snapshot is not None and snapshot.agencies[1].last_seen is None
        finally:
            stop.set()
            sim.join(timeout=5)
            producer.close(timeout=5)
