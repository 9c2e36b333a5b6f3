"""Spool -> Kafka, in order, advancing the spool's ack pointer only over acknowledged records.

acks=all + idempotence: the broker removes duplicates from the producer's own retries. What remains
is at-least-once across agent restarts (records sent but not yet marked acked are sent again, with the
same per-source `seq`); the SOC side removes those with `pipeline.dedup.SeenSequences`.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from collectors.health import KAFKA_CONNECTED, KAFKA_UNREACHABLE
from collectors.kafka_probe import classify, probe
from collectors.kafka_settings import AGENT_PRODUCER
from collectors.spool import Spool, SpoolRecord
from collectors.stats import AgentStats
from collectors.wire import record_headers

log = logging.getLogger("socpipe.agent.shipper")

PRODUCER_SETTINGS = AGENT_PRODUCER


BOOTSTRAP_TIMEOUT_MS = 10000
PROBE_EVERY_S = 30.0  # an unexplained failure walks TCP/TLS/SASL itself at most this often


class Shipper:
    def __init__(
        self,
        spool: Spool,
        kafka_kwargs: dict[str, Any],
        topic: str,
        stats: AgentStats,
        stop: threading.Event,
        max_inflight: int = 16,
        client_id: str = "socpipe-agent",
        sign: Callable[[dict[str, Any], bytes], None] | None = None,
    ):
        self.spool = spool
        self.kafka_kwargs = kafka_kwargs
        self.topic = topic
        self.stats = stats
        self.stop = stop
        self.max_inflight = max_inflight
        self.client_id = client_id
        self.sign = sign  # fills meta "c"/"m" of records spooled before batches were signed
        self.producer: Any = None  # a kafka-python KafkaProducer once connected (untyped library)
        self.ready = threading.Event()
        self._inflight: collections.deque[tuple[SpoolRecord, Any]] = collections.deque()  # (record, future)
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.drain_on_stop_s = 5.0
        self._probed: tuple[float, tuple[str, str] | None] = (-PROBE_EVERY_S, None)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="agent-shipper", daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread:
            self._thread.join(timeout)

    def _connect(self) -> bool:
        from kafka import KafkaProducer

        bootstrap = ",".join(self.kafka_kwargs.get("bootstrap_servers", []))
        extra = {}
        if "bootstrap_timeout_ms" in KafkaProducer.DEFAULT_CONFIG:  # report "unreachable" after 10 s, not 30
            extra["bootstrap_timeout_ms"] = BOOTSTRAP_TIMEOUT_MS
        try:
            self.producer = KafkaProducer(client_id=self.client_id, **PRODUCER_SETTINGS, **extra, **self.kafka_kwargs)
        except Exception as exc:  # unreachable broker, bad credentials: keep spooling and retry
            self._failed(exc)  # logged once per change
            self.stats.send_errors += 1
            return False
        self.ready.set()
        self.stats.health.set_kafka(KAFKA_CONNECTED, "", bootstrap)
        return True

    def _run(self) -> None:
        backoff = 0.5
        last_ack_save = time.monotonic()
        while True:
            stopping = self.stop.is_set()
            if self.producer is None:
                if stopping or not self._connect():
                    if stopping:
                        break
                    self.stop.wait(backoff)
                    backoff = min(backoff * 2, 10.0)
                    continue
            if stopping and (not self._inflight or time.monotonic() > self._stop_deadline()):
                break
            self._collect_acks()
            if not stopping and len(self._inflight) < self.max_inflight:
                records = self.spool.read(
                    self.max_inflight - len(self._inflight), timeout_s=0.05 if self._inflight else 0.2
                )
                for rec in records:
                    if not self._send(rec):
                        break
            else:
                self._wake.wait(0.05)
                self._wake.clear()
            if time.monotonic() - last_ack_save >= 0.5:
                self.spool.save_ack()
                last_ack_save = time.monotonic()
        self._collect_acks()
        self.spool.save_ack()
        if self.producer is not None:
            try:
                self.producer.close(timeout=2)
            except Exception:
                pass

    def _bootstrap(self) -> str:
        return ",".join(self.kafka_kwargs.get("bootstrap_servers", []))

    def _failed(self, exc: BaseException, what: str = "") -> None:
        """Say why delivery fails: credentials refused, not authorized, TLS, or really unreachable.
        kafka-python reports the first two and TLS at bootstrap only as a timeout: then `probe` looks."""
        state, message = classify(exc, self._bootstrap(), self.topic)
        if state == KAFKA_UNREACHABLE:
            at, found = self._probed
            if time.monotonic() - at >= PROBE_EVERY_S:
                found = probe(self.kafka_kwargs)
                self._probed = (time.monotonic(), found)
            state, message = found or (state, what + message)
        self.stats.health.set_kafka(state, message, self._bootstrap())

    def _stop_deadline(self) -> float:
        if not hasattr(self, "_deadline"):
            self._deadline = time.monotonic() + self.drain_on_stop_s
        return self._deadline

    def _send(self, rec: SpoolRecord) -> bool:
        meta = rec.meta
        if "m" not in meta and self.sign is not None:
            self.sign(meta, rec.value)
        headers = record_headers(meta.get("n", 0), meta.get("d") or "", meta.get("c", 0), str(meta.get("m") or ""))
        try:
            fut = self.producer.send(self.topic, value=rec.value, key=meta["k"].encode(), headers=headers)
        except Exception as exc:
            self._failed(exc, "send failed: ")
            self.stats.send_errors += 1
            self._wait_inflight()
            self.spool.rewind()
            self.stop.wait(1.0)
            return False
        fut.add_both(lambda *_: self._wake.set())
        self._inflight.append((rec, fut))
        return True

    def _collect_acks(self) -> None:
        last = None
        failed = False
        while self._inflight and self._inflight[0][1].is_done:
            rec, fut = self._inflight[0]
            if fut.failed():
                failed = True
                self._failed(fut.exception, "delivery failed: ")
                self.stats.send_errors += 1
                break
            self._inflight.popleft()
            last = rec
            src = self.stats.source(rec.meta["s"])
            src.lines_shipped += int(rec.meta.get("n", 0))
            self.stats.records_shipped += 1
        if last is not None:
            self.stats.last_ack_at = time.time()
            self.stats.last_ack_source, self.stats.last_ack_lines = last.meta["s"], int(last.meta.get("n", 0))
            self.stats.health.set_kafka(KAFKA_CONNECTED, "", self._bootstrap())
            self.spool.ack(last.segment, last.end)
        if failed:  # resend from the first unacked record, in order
            self._wait_inflight()
            self._inflight.clear()
            self.spool.rewind()

    def _wait_inflight(self) -> None:
        for _rec, fut in list(self._inflight):
            try:
                fut.get(timeout=30)
            except Exception:
                pass
        # keep the acked prefix, drop the rest (it will be re-read from the spool)
        last = None
        while self._inflight and self._inflight[0][1].is_done and not self._inflight[0][1].failed():
            last = self._inflight.popleft()[0]
        if last is not None:
            self.spool.ack(last.segment, last.end)
        self._inflight.clear()
