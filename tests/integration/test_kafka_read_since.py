"""`kafka_io.read_since` (behind `socpipe model train --from-kafka`) on the real broker: records from
a point in time onwards, every partition read to its end, nothing older."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from kafka import KafkaProducer

from pipeline import kafka_io
from pipeline.config import KafkaConfig
from tests.integration.test_detector_e2e import brute_force_batches, produce


def test_reads_every_partition_from_a_time_to_its_end(kafka_bootstrap, unique):
    cfg = KafkaConfig(bootstrap=kafka_bootstrap)
    topic = f"test.read-since.{unique}"
    kafka_io.ensure_topics(cfg, {topic: {"partitions": 3}})
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    old_ms = int((time.time() - 3600) * 1000)
    for i in range(3):  # an hour old: before the start
        producer.send(topic, value=f"old-{i}".encode(), partition=i, timestamp_ms=old_ms)
    start = time.time() - 1
    for i in range(30):
        producer.send(topic, value=f"new-{i}".encode(), partition=i % 3)
    producer.flush()
    producer.close()

    got = list(kafka_io.read_since(cfg, topic, start))
    assert sorted(v.decode() for _, _, v in got) == sorted(f"new-{i}" for i in range(30))
    assert {p for p, _, _ in got} == {0, 1, 2} and all(o >= 1 for _, o, _ in got)
    assert [v for _, _, v in kafka_io.read_since(cfg, topic, time.time() + 60)] == []


def test_model_train_from_kafka_reads_the_topic(kafka_bootstrap, unique, tmp_path):
    """`socpipe model train --from-kafka` end to end (it crashed on loading its config before)."""
    topic = f"test.train.{unique}"
    kafka_io.ensure_topics(KafkaConfig(bootstrap=kafka_bootstrap), {topic: {"partitions": 2}})
    produce(kafka_bootstrap, topic, brute_force_batches("city-a", attackers=1, tries=900, lines_per_batch=50))
    out = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "model", "train", "--from-kafka", "--topic", topic, "--since", "10m"]
        + ["--dataset", "auth", "--out", str(tmp_path / "m")],
        env={**os.environ, "SOCPIPE_KAFKA_BOOTSTRAP": kafka_bootstrap},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout)
    assert summary["events"] == 900 and summary["windows"] == 30  # 900 lines 2 s apart: 30 one-minute windows
    inputs = json.loads((tmp_path / "m" / "metadata.json").read_text()).get("inputs")
    assert inputs == [{"kafka": topic, "since": "10m"}], inputs
