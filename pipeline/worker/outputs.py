"""What the detector worker writes to Kafka besides its offsets: correlation inputs, quarantined records,
dead letters and state snapshots, through one producer; the runner (pipeline.worker.runner) flushes them
before it commits the offsets of the records they came from, so nothing is lost between the two."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

from pipeline.worker.stages import Rejected, StageResult
from pipeline.worker_metrics import WorkerMetrics

log = logging.getLogger("socpipe.detector")

__all__ = ["KafkaOutputs"]


class KafkaOutputs:
    def __init__(
        self,
        producer: KafkaProducer,
        metrics: WorkerMetrics,
        *,
        correlation_topic: str,
        quarantine_topic: str,
        dead_letter_topic: str,
        state_topic: str,
    ) -> None:
        self.producer, self.metrics = producer, metrics
        self.correlation_topic, self.quarantine_topic = correlation_topic, quarantine_topic
        self.dead_letter_topic, self.state_topic = dead_letter_topic, state_topic
        self.unflushed = False  # dead letters sent since the last flush

    def send(self, out: StageResult) -> None:
        """A stage's correlation inputs, quarantined records and dead letters (not flushed yet)."""
        for fwd in out.forwards:
            self.producer.send(self.correlation_topic, key=fwd.key, value=fwd.value)
        for rej in out.quarantined:
            self.quarantine(rej)
        for dead in out.dead_letters:
            self.dead_letter(dead.payload, dead.reason)

    def quarantine(self, rej: Rejected) -> None:
        """The record as it came (key, headers, value) plus why, for the SOC to investigate."""
        rec, reason, where = rej.record, rej.reason, rej.where
        self.metrics.quarantine(reason).inc()
        log.warning("detector.quarantined reason=%s at=%s key=%.120r", reason, where, rec.key)
        headers = [(k, v) for k, v in (rec.headers or [])[:16] if isinstance(k, str) and isinstance(v, bytes)]
        headers += [("quarantine_reason", reason.encode()), ("quarantine_from", where.encode())]
        self.producer.send(self.quarantine_topic, key=rec.key, value=rec.value, headers=headers)

    def dead_letter(self, payload: bytes, reason: str) -> None:
        self.metrics.dead_letters.inc()
        log.warning("detector.dead_letter reason=%s", reason)
        self.producer.send(self.dead_letter_topic, value=payload, headers=[("reason", reason.encode()[:4000])])
        self.unflushed = True

    def dead_letters_confirmed(
        self, letters: list[tuple[bytes, str, list[tuple[str, bytes]]]], timeout_s: float = 10.0
    ) -> tuple[int, str]:
        """Dead letters (payload, reason, more headers) sent and waited for, `timeout_s` at most: the
        worker's last writes at a stop, when no later flush would notice a failure. (How many Kafka
        acknowledged, the first error or ''.) No per-letter log line: the caller reports them in one.

        The sends run in a thread of their own: kafka-python's `send` blocks up to the producer's
        `max_block_ms` (60 s) for the topic's metadata when it has none yet, and a stop must not wait
        that long for a Kafka that does not answer (the thread is a daemon: it ends with the process)."""
        deadline = time.monotonic() + timeout_s
        futures: list[Any] = []
        errors: list[str] = []

        def send_all() -> None:
            for payload, reason, headers in letters:
                try:
                    futures.append(
                        self.producer.send(
                            self.dead_letter_topic,
                            value=payload,
                            headers=[("reason", reason.encode()[:4000]), *headers],
                        )
                    )
                except KafkaTimeoutError as exc:  # no metadata for the topic within max_block_ms: Kafka away
                    errors.append(f"{type(exc).__name__}: {exc}")
                    return
                except Exception as exc:  # this letter cannot be sent (too large, ...): the others may
                    errors.append(f"{type(exc).__name__}: {exc}")

        sender = threading.Thread(target=send_all, name="dead-letters-at-stop", daemon=True)
        sender.start()
        sender.join(timeout_s)
        if sender.is_alive():
            errors.append(f"no metadata for {self.dead_letter_topic} from Kafka within {timeout_s:g} s")
        try:
            self.producer.flush(timeout=max(0.1, deadline - time.monotonic()))
        except KafkaError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        written = 0
        for future in list(futures):
            if future.is_done and future.succeeded():
                written += 1
            elif future.is_done:
                errors.append(f"{type(future.exception).__name__}: {future.exception}")
            else:
                errors.append("not acknowledged")
        self.metrics.dead_letters.inc(written)
        return written, errors[0] if errors else ""

    def snapshot(self, key: bytes, value: bytes) -> None:
        """A partition's state with its next offset, to the compacted state topic (not flushed yet)."""
        self.producer.send(self.state_topic, key=key, value=value)

    def flush(self) -> None:
        """Everything sent so far is durable in Kafka when this returns."""
        self.producer.flush()
        self.unflushed = False

    def flush_if_needed(self) -> None:
        if self.unflushed:
            self.flush()

    def close(self) -> None:
        self.producer.close(timeout=5)
