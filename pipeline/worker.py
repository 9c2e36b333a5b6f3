"""The detector worker: raw lines from Kafka -> ECS events -> Sigma rules / anomaly models -> alerts.

Two stages, each a Kafka consumer group, so that adding workers scales both:

* stage 1 consumes the raw topic (partitioned by agency/agent/source): normalise, match single-event
  rules, emit their alerts, and forward events that feed correlation rules to the correlation topic,
  keyed by the correlation's group-by values (e.g. `source.ip`, not the agency, so one address
  attacking several agencies meets in one worker);
* stage 2 consumes the correlation topic and keeps windowed correlation state per partition. The state
  is written to a compacted state topic (with the next offset) before offsets are committed, and is
  restored when a partition is assigned, so a restart neither misses nor doubles a correlation.

Offsets are committed only after Elasticsearch acknowledged the batch's alerts. Alert ids are
deterministic and written with op_type=create, so a batch replayed after a crash creates nothing new.
While Elasticsearch refuses writes, consumption pauses (the consumer keeps polling to stay in its
group) and resumes when it comes back. Records that cannot be decoded, and alerts Elasticsearch
rejects, go to the dead-letter topic with the reason; nothing is dropped silently.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

from kafka import ConsumerRebalanceListener, TopicPartition
from kafka.errors import CommitFailedError

from detectors.alerts import build_alert
from detectors.normalise import Normaliser
from detectors.sigma import CorrelationInput, Engine, load_rules
from pipeline import kafka_io
from pipeline.detector_config import DetectorConfig
from pipeline.elastic import AlertIndexer, connect
from pipeline.elastic import setup as es_setup
from pipeline.records import LineBatch
from pipeline.worker_metrics import WorkerMetrics

log = logging.getLogger("socpipe.detector")


class RebalanceListener(ConsumerRebalanceListener):
    """Routes kafka-python's rebalance callbacks to stage 2, which owns per-partition state."""

    def __init__(self, on_assigned: Callable[[list], None], on_revoked: Callable[[list], None]):
        self._assigned, self._revoked = on_assigned, on_revoked

    def on_partitions_assigned(self, assigned):
        self._assigned(list(assigned))

    def on_partitions_revoked(self, revoked):
        self._revoked(list(revoked))


@dataclass
class PartitionState:
    """Stage 2's correlation engine of one partition, and the event-time watermark it has seen."""

    engine: Engine
    max_event_ts: float = 0.0
    last_event_wall: float = field(default_factory=time.monotonic)


class DetectorWorker:
    def __init__(self, cfg: DetectorConfig, agency_lookup: Callable[[str], object | None] | None = None):
        self.cfg = cfg.validate()
        self.agency_lookup = agency_lookup or (lambda _agency_id: None)
        loaded = load_rules(cfg.rules)
        for issue in loaded.errors:
            log.warning("rules.load_error %s", issue)
        if not loaded.rules:
            raise ValueError(f"no usable rule in {cfg.rules}")
        self.rules = loaded.rules
        self.stage1 = Engine(self.rules, allowed_lateness=cfg.allowed_lateness_s)
        self.partitions: dict[int, PartitionState] = {}
        self.normaliser = Normaliser(default_timezone=cfg.timezone)
        self.metrics = WorkerMetrics()
        self.metrics.rules_loaded.set(len(self.rules))
        es = connect(cfg.es)
        setup_report = es_setup(es, cfg.es, cfg.es.index_prefix)  # idempotent: templates before the first alert
        log.info("detector.es_setup %s", setup_report)
        self.indexer = AlertIndexer(es, prefix=cfg.es.index_prefix)
        kafka_io.ensure_topics(cfg.kafka, {
            cfg.raw_topic: {"partitions": cfg.topic_partitions},
            cfg.correlation_topic: {"partitions": cfg.topic_partitions},
            cfg.state_topic: {"partitions": 1, "config": {"cleanup.policy": "compact"}},
            cfg.dead_letter_topic: {"partitions": 1},
        })
        self.producer = kafka_io.producer(cfg.kafka)
        self.raw = kafka_io.consumer(cfg.kafka, cfg.group_id)
        self.raw.subscribe([cfg.raw_topic])
        self.corr = kafka_io.consumer(cfg.kafka, cfg.group_id + ".correlation")
        self.corr.subscribe([cfg.correlation_topic], listener=RebalanceListener(self._assigned, self._revoked))
        log.info("detector.start group=%s rules=%d rule_errors=%d", cfg.group_id, len(self.rules), len(loaded.errors))

    # --- main loop ---------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                self.poll_once()
        finally:
            self.close()

    def poll_once(self) -> None:
        self._stage1(self.raw.poll(timeout_ms=self.cfg.poll_timeout_ms, max_records=self.cfg.max_batch_records))
        # A zero timeout never lets kafka-python finish a group join: give stage 2 a short slice.
        self._stage2(self.corr.poll(timeout_ms=max(20, self.cfg.poll_timeout_ms // 4),
                                    max_records=self.cfg.max_batch_records))

    def close(self) -> None:
        for c in (self.raw, self.corr):
            try:
                c.close(autocommit=False)
            except Exception:  # closing must not hide the reason we are stopping
                log.exception("detector.close_consumer_failed")
        self.producer.close(timeout=5)

    # --- stage 1 -----------------------------------------------------------------------------
    def _stage1(self, polled: dict) -> None:
        if not polled:
            # Idle: auditd records still waiting for their siblings are complete by now.
            pending = [a for e in self.normaliser.flush() for a in self._match(e)]
            if pending:
                self.producer.flush()
                self._index(pending, self.raw)
            return
        started = time.perf_counter()
        alerts: list[dict] = []
        for tp, records in polled.items():
            for rec in records:
                try:
                    batch = LineBatch.from_bytes(rec.value)
                except Exception as exc:  # a record we cannot read must not stop the others
                    self._dead_letter(rec.value, f"undecodable raw record at {tp.topic}/{tp.partition}@{rec.offset}: {exc}")
                    continue
                self.metrics.lines.inc(len(batch.lines))
                for event in self.normaliser.normalise_batch(batch):
                    alerts.extend(self._match(event))
        self.producer.flush()  # correlation inputs are durable before raw offsets move
        self._index(alerts, self.raw)
        self._commit(self.raw)
        self.metrics.batch_seconds.labels(stage="1").observe(time.perf_counter() - started)

    def _match(self, event: dict) -> list[dict]:
        self.metrics.count_event(event)
        result = self.stage1.match(event)
        for item in result.inputs:
            self.producer.send(self.cfg.correlation_topic, key=item.partition_key.encode(),
                               value=json.dumps(item.to_dict(), separators=(",", ":"), default=str).encode())
        return [self._alert(d) for d in result.detections]

    def _alert(self, detection) -> dict:
        self.metrics.detections.labels(rule=detection.rule_id, kind=detection.kind).inc()
        agencies = getattr(detection, "agencies", None) or []
        agency = self.agency_lookup(agencies[0]) if len(agencies) == 1 else None
        return build_alert(detection, agency=agency)

    # --- stage 2 -----------------------------------------------------------------------------
    def _stage2(self, polled: dict) -> None:
        alerts: list[dict] = []
        now = time.monotonic()
        for tp, records in polled.items():
            state = self.partitions.get(tp.partition)
            if state is None:  # assignment raced the poll: restore first
                self._assigned([tp])
                state = self.partitions[tp.partition]
            for rec in records:
                try:
                    item = CorrelationInput.from_dict(json.loads(rec.value))
                except Exception as exc:
                    self._dead_letter(rec.value, f"undecodable correlation input at {tp.partition}@{rec.offset}: {exc}")
                    continue
                alerts.extend(self._alert(d) for d in state.engine.correlate(item))
                state.max_event_ts = max(state.max_event_ts, item.ts)
                state.last_event_wall = now
        # Event-time watermark per partition; an idle partition advances by wall clock so a
        # window whose last event has been seen still closes.
        for state in self.partitions.values():
            idle = now - state.last_event_wall
            watermark = state.max_event_ts + (idle if idle >= self.cfg.idle_advance_s else 0.0)
            if watermark > 0:
                alerts.extend(self._alert(d) for d in state.engine.advance(watermark))
        if not polled and not alerts:
            return
        self._index(alerts, self.corr)
        self._save_state([TopicPartition(self.cfg.correlation_topic, p) for p in self.partitions])
        self._commit(self.corr)

    def _assigned(self, partitions: list) -> None:
        snapshots = self._read_snapshots()
        for tp in partitions:
            engine = Engine(self.rules, allowed_lateness=self.cfg.allowed_lateness_s)
            state = PartitionState(engine)
            snap = snapshots.get(tp.partition)
            if snap is not None:
                engine.restore(bytes.fromhex(snap["state"]))
                state.max_event_ts = snap["max_event_ts"]
                self.corr.seek(tp, snap["offset"])  # offsets committed after the snapshot: resume exactly there
                log.info("detector.state.restored partition=%d offset=%d", tp.partition, snap["offset"])
            self.partitions[tp.partition] = state

    def _revoked(self, partitions: list) -> None:
        for tp in partitions:
            self.partitions.pop(tp.partition, None)

    def _state_key(self, partition: int) -> bytes:
        return f"{self.cfg.group_id}|{self.cfg.correlation_topic}|{partition}".encode()

    def _save_state(self, tps: list) -> None:
        for tp in tps:
            state = self.partitions.get(tp.partition)
            if state is None:
                continue
            value = {"offset": self.corr.position(tp), "max_event_ts": state.max_event_ts,
                     "state": state.engine.snapshot().hex()}
            self.producer.send(self.cfg.state_topic, key=self._state_key(tp.partition), value=json.dumps(value).encode())
        self.producer.flush()

    def _read_snapshots(self) -> dict[int, dict]:
        """Read the compacted state topic to its end; the last value per key wins."""
        reader = kafka_io.consumer(self.cfg.kafka, group_id=None, enable_auto_commit=False)
        try:
            tp = TopicPartition(self.cfg.state_topic, 0)
            reader.assign([tp])
            reader.seek_to_beginning(tp)
            end = reader.end_offsets([tp])[tp]
            found: dict[int, dict] = {}
            prefix = f"{self.cfg.group_id}|{self.cfg.correlation_topic}|".encode()
            while reader.position(tp) < end:
                for records in reader.poll(timeout_ms=1000).values():
                    for rec in records:
                        if rec.key and rec.key.startswith(prefix) and rec.value:
                            found[int(rec.key[len(prefix):])] = json.loads(rec.value)
            return found
        finally:
            reader.close()

    # --- sinks -------------------------------------------------------------------------------
    def _index(self, alerts: list[dict], consumer) -> None:
        """Index until Elasticsearch has acknowledged every alert; pause consumption meanwhile."""
        pending = alerts
        backoff = 0.5
        paused = False
        while pending:
            result = self.indexer.index(pending)
            self.metrics.alerts_indexed.inc(len(result.created))
            self.metrics.alerts_duplicate.inc(len(result.duplicates))
            for doc, reason in result.rejected:
                self._dead_letter(json.dumps(doc, default=str).encode(), f"elasticsearch rejected alert: {reason}")
            pending = result.retry
            if not pending:
                break
            if not paused:
                consumer.pause(*consumer.assignment())
                paused = True
                self.metrics.paused.set(1)
                log.warning("detector.es_unavailable pending=%d action=pause", len(pending))
            self.metrics.index_retries.inc()
            time.sleep(backoff)
            consumer.poll(timeout_ms=0)  # stay in the group while paused
            backoff = min(backoff * 2, self.cfg.retry_backoff_max_s)
        if paused:
            consumer.resume(*consumer.assignment())
            self.metrics.paused.set(0)
            log.info("detector.es_available action=resume")

    def _commit(self, consumer) -> None:
        try:
            consumer.commit()
        except CommitFailedError as exc:
            # Evicted by a rebalance: the batch will be redelivered; idempotent writes absorb it.
            self.metrics.commit_failures.inc()
            log.warning("detector.commit_failed reason=%s", exc)

    def _dead_letter(self, payload: bytes, reason: str) -> None:
        self.metrics.dead_letters.inc()
        log.warning("detector.dead_letter reason=%s", reason)
        self.producer.send(self.cfg.dead_letter_topic, value=payload, headers=[("reason", reason.encode()[:4000])])
