"""The agent over the real Kafka broker: `socpipe agent run --config` ships files and heartbeats."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from kafka import KafkaConsumer

from collectors.identity import Identity, save_identity
from collectors.wire import HEADER_DATASET, HEADER_LINES, Heartbeat, LineBatch, verify_heartbeat
from pipeline.dedup import SeenSequences
from pipeline.enrolment.registry import AgentRecord
from pipeline.verify import verify_batch
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

SECRET = "test-secret"


def write_agent_config(tmp: Path, bootstrap: str, topic: str, **extra) -> Path:
    identity = tmp / "identity.json"
    save_identity(identity, Identity("agency-test", "agent-" + topic[-6:], SECRET))
    cfg = {
        "state_dir": str(tmp / "state"),
        "identity_file": str(identity),
        "host": "agency-host-1",
        "topic": topic,
        "heartbeat_topic": topic + ".hb",
        "heartbeat_interval_s": 1,
        "kafka": {"bootstrap": bootstrap},
        **extra,
    }
    path = tmp / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def start_agent(config: Path, log: Path) -> subprocess.Popen:
    # SOCPIPE_* variables would override the config file (e.g. the stack's SOCPIPE_KAFKA_BOOTSTRAP)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOCPIPE_")}
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "agent", "run", "--config", str(config)],
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
    )


def stop_agent(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


class TopicReader:
    """Reads everything on a topic from the beginning, incrementally."""

    def __init__(self, bootstrap: str, topic: str):
        self.consumer = KafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
            consumer_timeout_ms=500,
            metadata_max_age_ms=1000,
        )
        self.messages: list[Any] = []  # kafka-python's ConsumerRecords

    def poll(self) -> list:
        got = self.consumer.poll(timeout_ms=500, max_records=5000)
        for recs in got.values():
            self.messages.extend(recs)
        return self.messages

    def close(self) -> None:
        self.consumer.close()


def batches(messages) -> list[LineBatch]:
    return [LineBatch.from_bytes(m.value) for m in messages]


def test_agent_cli_ships_files_and_signed_heartbeats(tmp_path, kafka_bootstrap, unique):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "auth.log").write_bytes(b"".join(f"auth line {i}\n".encode() for i in range(1, 3001)))
    (logs / "app.log").write_bytes(b"app one\napp \xff bad\n" + b"x" * 5000 + b"\nno newline yet")
    topic = f"test.agent.{unique}"
    config = write_agent_config(
        tmp_path,
        kafka_bootstrap,
        topic,
        files=[{"paths": [str(logs / "*.log")], "dataset": "system.auth"}],
        flood={"max_line_bytes": 1024, "partial_line_timeout_s": 1.0},
        batch={"max_lines": 500},
    )
    proc = start_agent(config, tmp_path / "agent.log")
    reader, hb_reader = TopicReader(kafka_bootstrap, topic), TopicReader(kafka_bootstrap, topic + ".hb")
    try:

        def lines_seen():
            return sum(len(b.lines) for b in batches(reader.poll()))

        wait_for(lambda: lines_seen() >= 3004, 60, what="all lines on Kafka")
        with open(logs / "auth.log", "ab") as f:  # appended later: picked up by the running agent
            f.write(b"auth line 3001\n")
        wait_for(lambda: lines_seen() >= 3005, 30, what="the appended line")
        wait_for(lambda: len(hb_reader.poll()) >= 2, 30, what="two heartbeats")
    finally:
        stop_agent(proc)
        reader.close()
        hb_reader.close()
    assert proc.returncode == 0, (tmp_path / "agent.log").read_text()[-3000:]

    by_source: dict[str, list] = {}
    agent = AgentRecord("agent-" + topic[-6:], "agency-test", "agency-host-1", SECRET, "", 0.0, False)
    counters = []
    for m in reader.messages:
        b = LineBatch.from_bytes(m.value)
        assert m.key == b.key()
        # every record is signed: the SOC's verification accepts it with the agent's secret only
        verified, reason = verify_batch(m.key, m.headers, m.value, {agent.agent_id: agent}.get)
        assert reason == "" and verified == b
        wrong = replace(agent, secret="wrong-secret")
        assert verify_batch(m.key, m.headers, m.value, {agent.agent_id: wrong}.get) == (None, "bad_mac")
        counters.append(int(dict(m.headers)["ctr"]))
        headers = dict(m.headers)
        assert int(headers[HEADER_LINES]) == len(b.lines)
        assert headers[HEADER_DATASET] == b"system.auth"
        assert (b.agency_id, b.agent_id, b.host, b.dataset) == (
            "agency-test",
            "agent-" + topic[-6:],
            "agency-host-1",
            "system.auth",
        )
        assert len(b.lines) <= 500
        by_source.setdefault(b.source, []).extend(b.lines)
    auth = by_source[str(logs / "auth.log")]
    assert [ln.text for ln in auth] == [f"auth line {i}" for i in range(1, 3002)]
    assert [ln.seq for ln in auth] == list(range(1, 3002))
    assert [ln.line_no for ln in auth] == list(range(1, 3002))
    offsets = [0]
    for ln in auth[:-1]:
        offsets.append(offsets[-1] + len(ln.text) + 1)
    assert [ln.offset for ln in auth] == offsets
    app = by_source[str(logs / "app.log")]
    assert [ln.text[:7] for ln in app] == ["app one", "app \ufffd b", "x" * 7, "no newl"]
    assert app[1].flags == ["invalid_utf8"]
    assert app[2].flags == ["truncated"] and len(app[2].text) == 1024
    assert app[3].flags == ["partial"]  # shipped after the partial-line timeout
    assert app[3].offset == len(b"app one\napp \xff bad\n") + 5001

    assert len(set(counters)) == len(counters)  # one counter per record
    beats = [Heartbeat.from_bytes(m.value) for m in hb_reader.messages]
    assert all(b.counter < a.counter for b, a in zip(beats, beats[1:], strict=False))
    assert all(verify_heartbeat(hb, SECRET) for hb in beats)
    assert not verify_heartbeat(beats[-1], "wrong-secret")
    last = beats[-1]
    assert last.host == "agency-host-1" and last.agency_id == "agency-test" and last.config_hash
    assert last.sources[str(logs / "auth.log")].lines_read >= 3000


def test_agent_restart_resumes_without_gaps_or_duplicates(tmp_path, kafka_bootstrap, unique):
    """SIGTERM, more lines, restart: every line once, seqs continue (checkpoints survive)."""
    log = tmp_path / "a.log"
    log.write_text("".join(f"first {i}\n" for i in range(2000)))
    topic = f"test.agent.restart.{unique}"
    config = write_agent_config(tmp_path, kafka_bootstrap, topic, files=[{"paths": [str(log)]}])
    reader = TopicReader(kafka_bootstrap, topic)
    total = lambda: sum(len(b.lines) for b in batches(reader.poll()))  # noqa: E731
    try:
        proc = start_agent(config, tmp_path / "agent.log")
        wait_for(lambda: total() >= 2000, 60, what="first run's lines")
        stop_agent(proc)
        with open(log, "a") as f:
            f.write("".join(f"second {i}\n" for i in range(1000)))
        proc = start_agent(config, tmp_path / "agent.log")
        wait_for(lambda: total() >= 3000, 60, what="second run's lines")
        time.sleep(1.0)
        stop_agent(proc)
        reader.poll()
    finally:
        reader.close()
    seen = SeenSequences()
    texts = []
    for b in batches(reader.messages):
        for ln in b.lines:
            if seen.add(b.agent_id, b.source, ln.seq):
                texts.append(ln.text)
    assert texts == [f"first {i}" for i in range(2000)] + [f"second {i}" for i in range(1000)]
    assert seen.duplicates == 0  # a clean stop acks everything before exiting
    state = json.loads((tmp_path / "state" / "checkpoints.json").read_text())
    assert state[str(log)]["q"] == 3001
