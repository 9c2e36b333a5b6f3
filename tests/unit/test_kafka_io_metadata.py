"""Metadata fetches that end (pipeline.kafka_io.fetch_metadata, partitions_for, subscribe): a broker
that accepts connections and never answers gets a KafkaTimeoutError naming it and the wait, instead
of holding a worker's start forever. kafka-python 3.0.12's own `consumer.topics()` waits for the
metadata future without a timeout, and the future never ends while the client cannot send a request
(here: the refresh loop bootstrapping against the silent broker, without a deadline).

The broker is a fake: a loopback listener that takes connections and reads what comes, never writing.
The consumer is a real kafka-python one; `api_version` is given so its constructor does not bootstrap
(socpipe's consumers do, and fail at construction with a silent broker; a broker that goes silent
after that leaves the same client state, which this builds without a broker that answers first)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kafka import KafkaConsumer
from kafka.errors import KafkaTimeoutError

from pipeline import kafka_io

WAIT_MS = 1500  # the bound under test
GIVE_UP_S = 15  # the test's own: a call still blocked after this never ended


class SilentBroker:
    """Accepts TCP connections on 127.0.0.1 and reads them; answers nothing."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self._conns.append(conn)
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    @staticmethod
    def _drain(conn: socket.socket) -> None:
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass

    def close(self) -> None:
        self._closed = True
        self.sock.close()
        for conn in self._conns:
            conn.close()


@pytest.fixture
def silent() -> Iterator[SilentBroker]:
    broker = SilentBroker()
    yield broker
    broker.close()


@pytest.fixture
def consumer(silent: SilentBroker) -> Iterator[KafkaConsumer]:
    c = KafkaConsumer(
        bootstrap_servers=[silent.address],
        group_id="silent-group",
        api_version=(3, 9),  # no bootstrap in the constructor (see the module's docstring)
        request_timeout_ms=1000,
        fetch_max_wait_ms=100,
        enable_auto_commit=False,
    )
    yield c
    closer = threading.Thread(target=c.close, kwargs={"autocommit": False}, daemon=True)
    closer.start()
    closer.join(10)


def _run_bounded(call: Callable[[], Any]) -> tuple[BaseException | None, float]:
    """Run `call` in a thread; (what it raised, seconds it took). Fails the test if it never returns."""
    out: dict[str, Any] = {}

    def run() -> None:
        started = time.monotonic()
        try:
            call()
        except BaseException as exc:  # handed to the test
            out["exc"] = exc
        out["took"] = time.monotonic() - started

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(GIVE_UP_S)
    assert not t.is_alive(), f"still waiting for metadata after {GIVE_UP_S} s: the fetch has no bound"
    return out.get("exc"), out["took"]


def test_subscribing_against_a_broker_that_never_answers_ends_with_an_error_naming_it(
    silent: SilentBroker, consumer: KafkaConsumer
) -> None:
    exc, took = _run_bounded(lambda: kafka_io.subscribe(consumer, ["raw"], timeout_ms=WAIT_MS))
    assert isinstance(exc, KafkaTimeoutError), exc
    assert silent.address in str(exc) and "1.5 s" in str(exc), str(exc)
    assert WAIT_MS / 1000 - 0.1 <= took < WAIT_MS / 1000 + 5, took
    assert silent.accepted >= 1  # it was reached: connected, then nothing came back
    assert consumer.subscription() == {"raw"}


def test_the_partitions_of_a_topic_are_asked_with_the_same_bound(silent: SilentBroker, consumer: KafkaConsumer) -> None:
    exc, took = _run_bounded(lambda: kafka_io.partitions_for(consumer, "raw", timeout_ms=WAIT_MS))
    assert isinstance(exc, KafkaTimeoutError) and silent.address in str(exc), exc
    assert took < WAIT_MS / 1000 + 5, took


def test_the_default_bound_is_the_consumer_s_request_timeout(silent: SilentBroker, consumer: KafkaConsumer) -> None:
    exc, took = _run_bounded(lambda: kafka_io.fetch_metadata(consumer))
    assert isinstance(exc, KafkaTimeoutError) and "within 1 s" in str(exc), exc
    assert 0.9 <= took < 6, took


class _OtherClient:
    """A consumer without the kafka-python 3.0.12 internals fetch_metadata reads."""

    config = {"request_timeout_ms": 1000, "bootstrap_servers": ["x:1"]}

    def __init__(self) -> None:
        self.calls: list[str] = []

    def subscribe(self, topics: list[str]) -> None:
        self.calls.append("subscribe")

    def topics(self) -> set[str]:
        self.calls.append("topics")
        return {"raw"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        self.calls.append("partitions_for_topic")
        return {0, 1}


def test_without_the_internals_it_falls_back_to_kafka_python_s_own_calls() -> None:
    other = _OtherClient()
    kafka_io.subscribe(other, ["raw"])
    assert kafka_io.partitions_for(other, "raw") == {0, 1}
    assert other.calls == ["subscribe", "topics", "partitions_for_topic"]


def test_a_load_sample_in_the_worker_loop_gives_up_on_a_silent_broker_within_seconds(consumer: KafkaConsumer) -> None:
    """The worker samples both topics' end offsets every few seconds (StageConsumers.sample_loads_if_due);
    a topic not in the consumer's metadata is fetched there, in the loop that moves records: bounded
    (2 s) and skipped like a busy broker, not a loop stalled for good."""
    from pipeline.detector_config import DetectorConfig
    from pipeline.worker.assign import PartitionLoads
    from pipeline.worker.consumers import StageConsumers

    stage = StageConsumers.__new__(StageConsumers)  # its consumers are this test's, not built from a config
    stage.cfg = DetectorConfig(raw_topic="raw", correlation_topic="corr")
    stage.loads, stage._next_load_sample = PartitionLoads(), 0.0
    stage.raw = stage.corr = consumer
    exc, took = _run_bounded(stage.sample_loads_if_due)
    assert exc is None and took < 2 * 2 + 5, (exc, took)
