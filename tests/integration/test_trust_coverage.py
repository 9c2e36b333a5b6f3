"""Issue #17 on the real broker: after `kill -9` of an agent, replaying its captured heartbeat and raw
record every half second does not keep its agency monitored; the replays are rejected and counted.

The agent is a real process speaking the wire contract (`pipeline.devtools.simulate`); the attacker
copies records it read off the topics (as anyone with Kafka read access could) and writes them back.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

from kafka import KafkaConsumer, KafkaProducer

from pipeline.enrolment.registry import Registry
from tests.integration.conftest import Deadline, free_port, wait_for
from tests.integration.coverage_helpers import RunningCoverage, agency, write_inventory

AUTH = {"name": "auth", "path": "*auth.log", "dataset": "system.auth"}


def _state(cov: RunningCoverage, agency_id: str) -> str | None:
    snap = cov.service.snapshot
    return next((a.state for a in snap.agencies if a.id == agency_id), None) if snap else None


def test_replayed_heartbeat_after_kill_9_leaves_the_agency_agent_down(tmp_path, kafka_bootstrap, unique):
    inv = write_inventory(tmp_path / "inventory.yaml", [agency("xa-replay", "commune", [AUTH])])
    with RunningCoverage(tmp_path, kafka_bootstrap, unique, inv, free_port(), heartbeat_interval_s=1.0) as cov:
        agent_id, _ = Registry(cov.cfg.registry).enroll_direct("xa-replay", "srv-replay")
        sim = subprocess.Popen(
            [sys.executable, "-m", "pipeline.devtools.simulate", "--bootstrap", kafka_bootstrap]
            + ["--registry", cov.cfg.registry, "--agent", agent_id, "--interval", "1"]
            + ["--heartbeat-topic", cov.cfg.heartbeat_topic, "--raw-topic", cov.cfg.raw_topic],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        try:
            wait_for(lambda: _state(cov, "xa-replay") == "monitored", 45, what="monitored before the kill")
            # the attacker's capture, while the agent still runs: its latest heartbeat and raw record
            captured: dict[str, Any] = {}
            consumer = KafkaConsumer(
                cov.cfg.heartbeat_topic,
                cov.cfg.raw_topic,
                bootstrap_servers=kafka_bootstrap,
                auto_offset_reset="latest",
            )
            deadline = Deadline(20)
            while len(captured) < 2 and not deadline.expired():
                for records in consumer.poll(timeout_ms=500).values():
                    for rec in records:
                        captured[rec.topic] = rec
            consumer.close()
            assert set(captured) == {cov.cfg.heartbeat_topic, cov.cfg.raw_topic}
            sim.kill()  # SIGKILL: the agent is gone
            sim.wait(timeout=10)
            producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
            killed_at = time.monotonic()
            down_at = None
            while time.monotonic() - killed_at < 15:  # replay every 0.5 s, well past agent_down (3 x 1 s)
                for rec in captured.values():
                    producer.send(rec.topic, key=rec.key, value=rec.value, headers=rec.headers)
                producer.flush()
                if down_at is None and _state(cov, "xa-replay") == "agent_down":
                    down_at = time.monotonic() - killed_at
                time.sleep(0.5)
            producer.close()
            assert down_at is not None, f"still {_state(cov, 'xa-replay')} while the replay ran"
            assert _state(cov, "xa-replay") == "agent_down"
            hb_rejected = dict(cov.service.counters.heartbeats_rejected)
            assert hb_rejected.get("replayed", 0) + hb_rejected.get("stale", 0) >= 20, hb_rejected
            assert hb_rejected.get("stale", 0) >= 1, hb_rejected  # once older than 2 intervals
            assert cov.service.counters.records_rejected.get("replayed", 0) >= 20
            print(f"\nkill -9 + replay -> agent_down after {down_at:.1f}s; rejected: {hb_rejected}")
        finally:
            if sim.poll() is None:
                sim.kill()
