"""The worker's last dead letters (episode growth given up at a stop: pipeline.worker.sink.flush_at_stop)
are waited for, and a Kafka that does not take them is reported, not taken for written: a real
kafka-python producer against a loopback listener that never answers (tests.unit.test_kafka_io_metadata).
The path where Kafka takes them runs on the real broker in tests/integration/test_detector_stop.py."""

from __future__ import annotations

import time

from kafka import KafkaProducer

from pipeline.worker.outputs import KafkaOutputs
from pipeline.worker_metrics import WorkerMetrics
from tests.unit.test_kafka_io_metadata import SilentBroker


def test_dead_letters_a_silent_kafka_does_not_take_are_reported_within_the_bound() -> None:
    silent = SilentBroker()
    producer = KafkaProducer(
        bootstrap_servers=[silent.address],
        api_version=(3, 9),  # no bootstrap in the constructor: the silence shows at the first send
    )  # max_block_ms: kafka-python's 60 s, as the worker's producer has it
    metrics = WorkerMetrics()
    outputs = KafkaOutputs(
        producer,
        metrics,
        correlation_topic="corr",
        quarantine_topic="quarantine",
        dead_letter_topic="dlq",
        state_topic="state",
    )
    try:
        started = time.monotonic()
        letters = [(b'{"kind":"episode_growth"}', "episode growth given up at stop", [("alert_id", b"a1")])] * 3
        written, error = outputs.dead_letters_confirmed(letters, timeout_s=2.0)
        took = time.monotonic() - started
    finally:
        producer.close(timeout=0)
        silent.close()
    assert written == 0 and error == "no metadata for dlq from Kafka within 2 s", error
    assert took < 5, f"{took:.1f} s: the stop waited for Kafka past its bound"
    assert metrics.registry.get_sample_value("socpipe_detector_dead_letters_total") == 0
