"""The detector worker: raw lines from Kafka -> ECS events -> Sigma rules / anomaly models -> alerts.

Two stages, each a Kafka consumer group, so that adding workers scales both:

* stage 1 consumes the raw topic (partitioned by agency/agent/source): drop lines an agent re-sent
  (same agent, source, seq), normalise, match single-event rules, feed anomaly models, emit their
  alerts, and forward events that feed correlation rules to the correlation topic, keyed by the
  correlation's group-by values (e.g. `source.ip`, not the agency, so one address attacking several
  agencies meets in one worker);
* stage 2 consumes the correlation topic and keeps windowed correlation state per partition. The state
  (with its suppression state) is written to a compacted state topic (with the next offset) before
  offsets are committed, and is restored when a partition is assigned, so a restart neither misses
  nor doubles a correlation.

Every detection goes through suppression (`alerting.plan_alerts`): repeats of an open alert's dedup key
inside the window bump its count instead of creating alerts. Offsets are committed only after
Elasticsearch acknowledged the batch's alerts. Alert ids are deterministic and written with
op_type=create, so a batch replayed after a crash creates nothing new. While Elasticsearch refuses
writes, consumption pauses (the consumer keeps polling to stay in its group) and resumes when it comes
back. Records that cannot be decoded, and alerts Elasticsearch rejects, go to the dead-letter topic
with the reason; nothing is dropped silently.
"""

from __future__ import annotations

import logging
import threading
import time

from elasticsearch import ApiError, TransportError
from kafka import TopicPartition
from kafka.errors import CommitFailedError

from collectors import wire
from detectors.alerts import AgencyInfo, build_alert
from detectors.common.times import iso_ms, to_epoch
from detectors.finding import Finding
from detectors.normalise import Normaliser
from detectors.notify import Notifier
from detectors.sigma import CorrelationInput, Engine, Suppressor, load_rules
from pipeline import kafka_io
from pipeline.config import ConfigError
from pipeline.detector_config import DetectorConfig
from pipeline.elastic import AlertIndexer, connect
from pipeline.elastic import setup as es_setup
from pipeline.enrolment.registry import AgentCache, Registry
from pipeline.worker.alerting import AlertPlan, Candidate, plan_alerts, reopen, with_repeats
from pipeline.worker.intake import Intake, sequence_anomaly_event
from pipeline.worker.models import ModelSet
from pipeline.worker.state import PartitionState, RebalanceListener, read_snapshots
from pipeline.worker_metrics import EventTally, WorkerMetrics

log = logging.getLogger("socpipe.detector")

__all__ = ["DetectorWorker", "PartitionState", "RebalanceListener"]


def _await_partitions(consumer, topic: str, timeout_s: float = 30.0) -> None:
    """Join only once the topic's partitions are in metadata: a group that joins while a just-created
    topic has none gets no assignment, and kafka-python did not rebalance onto it later."""
    deadline = time.monotonic() + timeout_s
    while not consumer.partitions_for_topic(topic):
        if time.monotonic() > deadline:
            log.warning(
                "detector.topic_without_partitions topic=%s waited_s=%.0f action=subscribe_anyway", topic, timeout_s
            )
            return
        time.sleep(0.2)


def _open_registry(path: str) -> Registry:
    """The enrolment registry (written by `socpipe enrol`/`coverage`, shared with them). A missing one is
    created empty (the enrolment server may start a moment later), loudly: with no agents known, every
    raw record is quarantined."""
    from pathlib import Path

    if not Path(path).is_file():
        log.warning(
            "detector.registry_missing path=%s action=create_empty (every record quarantined until agents enrol)", path
        )
    registry = Registry(path)
    log.info("detector.registry path=%s agents=%d", path, len(registry.agents()))
    return registry


class DetectorWorker:
    def __init__(self, cfg: DetectorConfig, agency_lookup=None):
        self.cfg = cfg.validate()
        self.agency_lookup = agency_lookup or (lambda _agency_id: None)
        loaded = load_rules(cfg.rules)
        for issue in loaded.errors:
            log.warning("rules.load_error %s", issue)
        if not loaded.rules:
            first = f"; first: {loaded.errors[0]}" if loaded.errors else ""
            raise ConfigError(f"rules: no usable rule in {cfg.rules} ({len(loaded.errors)} errors{first})")
        self.rules = loaded.rules
        self.stage1 = Engine(self.rules, allowed_lateness=cfg.allowed_lateness_s)
        self.suppress1 = self._suppressor()
        self.partitions: dict[int, PartitionState] = {}
        self.normaliser = Normaliser(default_timezone=cfg.timezone)
        self.agents = AgentCache(_open_registry(cfg.registry), refresh_s=cfg.registry_refresh_s)
        self.intake = Intake(self.agents, cfg.max_seq_ahead)  # verification + dedup per raw partition
        self.metrics = WorkerMetrics()
        self.tally = EventTally()
        self.metrics.rules_loaded.set(len(self.rules))
        self.models = ModelSet(cfg.models, check_every_s=cfg.model_check_s)
        self._model_metrics()
        self.notifier = Notifier(cfg.notify)
        self.progress = {"raw_records": 0, "lines": 0, "inputs_sent": 0, "corr_records": 0, "detections": 0}
        self._next_progress_log = time.monotonic() + cfg.progress_log_s
        self.lines_per_record = 1.0  # moving average, sizes stage-1 polls (see _raw_records_per_poll)
        self.max_event_ts1 = 0.0  # stage 1 event-time high-water mark (anomaly windows)
        self.last_raw_wall = time.monotonic()
        self.flushed_idle = True
        es = connect(cfg.es)
        setup_report = es_setup(es, cfg.es, cfg.es.index_prefix)  # idempotent: templates before the first alert
        log.info("detector.es_setup %s", setup_report)
        self.indexer = AlertIndexer(es, prefix=cfg.es.index_prefix, chunk_docs=cfg.bulk_docs)
        kafka_io.ensure_topics(
            cfg.kafka,
            {
                cfg.raw_topic: {"partitions": cfg.topic_partitions},
                cfg.correlation_topic: {"partitions": cfg.topic_partitions},
                # compacted; segments roll every 10 min so compaction keeps the restart read short
                cfg.state_topic: {"partitions": 1, "config": {"cleanup.policy": "compact", "segment.ms": "600000"}},
                cfg.dead_letter_topic: {"partitions": 1},
                cfg.quarantine_topic: {"partitions": 1},
            },
        )
        self.producer = kafka_io.producer(cfg.kafka)
        # A topic created moments ago may have no partition metadata yet at the first join; refresh
        # metadata often enough that the group rebalances onto it within seconds, not the 5-min default.
        self.raw = kafka_io.consumer(cfg.kafka, cfg.group_id, metadata_max_age_ms=5000)
        _await_partitions(self.raw, cfg.raw_topic)
        self.raw.subscribe([cfg.raw_topic], listener=RebalanceListener(self._assigned1, self._revoked1))
        self.corr = kafka_io.consumer(cfg.kafka, cfg.group_id + ".correlation", metadata_max_age_ms=5000)
        _await_partitions(self.corr, cfg.correlation_topic)
        self.corr.subscribe([cfg.correlation_topic], listener=RebalanceListener(self._assigned, self._revoked))
        log.info(
            "detector.start group=%s rules=%d rule_errors=%d models=%d model_errors=%d suppression_window_s=%s",
            cfg.group_id,
            len(self.rules),
            len(loaded.errors),
            len(self.models.loaded),
            len(self.models.errors),
            cfg.suppression_window_s,
        )

    def _suppressor(self) -> Suppressor | None:
        w = self.cfg.suppression_window_s
        return Suppressor(window=w, max_keys=self.cfg.suppression_max_keys) if w > 0 else None

    def _model_metrics(self) -> None:
        self.metrics.models_loaded.set(len(self.models.loaded))
        self.metrics.model_errors.set(len(self.models.errors))

    # --- main loop ---------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                self.poll_once()
        finally:
            self.close()

    def poll_once(self) -> None:
        self.agents.refresh(time.monotonic())  # revocations and new enrolments within registry_refresh_s
        self._stage1(self.raw.poll(timeout_ms=self.cfg.poll_timeout_ms, max_records=self._raw_records_per_poll()))
        # Stage 2 needs a real slice: with 0 kafka-python never finishes a group join, and with 10 ms
        # (tried, to save stage-1 time) the stage-2 consumer sometimes never delivered fetched records
        # on this loaded box (1 in ~5 e2e runs lost the correlation); 50 ms passed 10 of 10.
        slice_ms = max(20, self.cfg.poll_timeout_ms // 4)
        self._stage2(self.corr.poll(timeout_ms=slice_ms, max_records=self.cfg.max_batch_records))
        if self.models.maybe_reload():
            self._model_metrics()
        if time.monotonic() >= self._next_progress_log:
            self._next_progress_log = time.monotonic() + self.cfg.progress_log_s
            log.info(
                "detector.progress %s partitions1=%d partitions2=%d",
                " ".join(f"{k}={v}" for k, v in self.progress.items()),
                len(self.raw.assignment()),
                len(self.corr.assignment()),
            )

    def _raw_records_per_poll(self) -> int:
        """Records per stage-1 poll so a batch holds about `max_batch_lines` lines: alerts are written
        and offsets committed per batch, so a 500-record poll of 100-line records (50k lines) held a
        trigger's alert back for seconds."""
        per_record = max(1.0, self.lines_per_record)
        return max(1, min(self.cfg.max_batch_records, int(self.cfg.max_batch_lines / per_record)))

    def close(self) -> None:
        for c in (self.raw, self.corr):
            try:
                c.close(autocommit=False)
            except Exception:  # closing must not hide the reason we are stopping
                log.exception("detector.close_consumer_failed")
        self.producer.close(timeout=5)

    # --- stage 1 -----------------------------------------------------------------------------
    def _stage1(self, polled: dict) -> None:
        now = time.monotonic()
        if not polled:
            self._stage1_idle(now)
            return
        started = time.perf_counter()
        self.last_raw_wall, self.flushed_idle = now, False
        candidates: list[Candidate] = []
        sent = lines = n_records = quarantined = 0
        for tp, records in polled.items():
            n_records += len(records)
            for rec in records:
                got = self._accept(tp, rec)
                if got is None:
                    quarantined += 1
                    continue
                lines += got.lines_in
                if got.far_ahead:  # reported as an event of the agency: a rule makes it an alert
                    sent += self._match(sequence_anomaly_event(got, time.time()), candidates)
                for event in self.normaliser.normalise_batch(got.batch):
                    sent += self._match(event, candidates)
        self.metrics.lines.inc(lines)
        self.progress["raw_records"] += n_records
        self.progress["lines"] += lines
        self.progress["inputs_sent"] += sent
        self.tally.flush_to(self.metrics)
        self.lines_per_record = 0.7 * self.lines_per_record + 0.3 * (lines / max(1, n_records))
        candidates += self._advance_models(self.max_event_ts1 - self.cfg.anomaly_lateness_s)
        if sent or quarantined:
            self.producer.flush()  # correlation inputs and quarantined records are durable before offsets move
        self._deliver(plan_alerts(self.suppress1, candidates), self.raw)
        self._save_seen([tp for tp in polled if tp.partition in self.intake.seen])
        self._commit(self.raw)
        self.metrics.batch_seconds_stage1.observe(time.perf_counter() - started)

    def _stage1_idle(self, now: float) -> None:
        """No raw records: complete pending auditd records, close anomaly windows, on idle timers."""
        idle = now - self.last_raw_wall
        candidates: list[Candidate] = []
        sent = 0
        if not self.flushed_idle and idle >= self.cfg.idle_flush_s:
            self.flushed_idle = True
            for e in self.normaliser.flush():
                sent += self._match(e, candidates)
        if self.models and idle >= self.cfg.anomaly_idle_flush_s:
            candidates += self._advance_models(float("inf"))
        self.tally.flush_to(self.metrics)
        if sent:
            self.producer.flush()
        if candidates:
            self._deliver(plan_alerts(self.suppress1, candidates), self.raw)

    def _accept(self, tp, rec):
        """The record's verified batch with its new lines, or None (quarantined)."""
        got = self.intake.accept(tp.partition, rec.key, rec.headers, rec.value)
        if isinstance(got, str):  # forged, revoked, tampered or unreadable: never reaches detection
            self._quarantine(rec, got, f"{tp.topic}/{tp.partition}@{rec.offset}")
            return None
        if got.duplicates:
            self.metrics.duplicate_lines.inc(got.duplicates)
        if got.far_ahead:
            self.metrics.sequence_anomalies.inc(got.far_ahead)
            b = got.batch
            log.warning(
                "detector.sequence_anomaly agency=%s agent=%s source=%.200r lines=%d stream_high=%d",
                b.agency_id,
                b.agent_id,
                b.source,
                got.far_ahead,
                got.stream_high,
            )
        return got

    def _assigned1(self, partitions: list) -> None:
        """Stage-1 partitions: restore their dedup state and resume at the offset saved with it."""
        log.info("detector.stage1.assigned partitions=%s", sorted(tp.partition for tp in partitions))
        snapshots = read_snapshots(self.cfg.kafka, self.cfg.state_topic, self._seen_prefix())
        for tp in partitions:
            offset = self.intake.restore(tp.partition, snapshots.get(tp.partition))
            if offset is not None:
                self.raw.seek(tp, offset)
                log.info("detector.dedup.restored partition=%d offset=%d", tp.partition, offset)

    def _revoked1(self, partitions: list) -> None:
        log.info("detector.stage1.revoked partitions=%s", sorted(tp.partition for tp in partitions))
        for tp in partitions:
            self.intake.drop(tp.partition)

    def _seen_prefix(self) -> bytes:
        return f"{self.cfg.group_id}|{self.cfg.raw_topic}|".encode()

    def _save_seen(self, tps: list) -> None:
        """Dedup state of the partitions a batch touched, with their next offsets, before the commit."""
        for tp in tps:
            key = self._seen_prefix() + str(tp.partition).encode()
            self.producer.send(
                self.cfg.state_topic, key=key, value=self.intake.snapshot(tp.partition, self.raw.position(tp))
            )
        if tps:
            self.producer.flush()

    def _match(self, event: dict, candidates: list[Candidate]) -> int:
        """Rules and models on one event; returns how many correlation inputs were produced."""
        self.tally.add(event)
        result = self.stage1.match(event)
        for item in result.inputs:
            self.producer.send(
                self.cfg.correlation_topic,
                key=item.partition_key.encode(),
                value=wire.encode(item.to_dict()),
            )
        candidates.extend(self._detected(d) for d in result.detections)
        if self.models:
            ts = to_epoch(event.get("@timestamp"))
            if ts is not None and ts > self.max_event_ts1:
                self.max_event_ts1 = ts
            try:
                candidates.extend(self._findings(self.models.scorer.process(event)))
            except Exception as exc:  # a model must never stop the stream; the rules keep working
                self.metrics.model_failures.inc()
                log.error("anomaly.process_failed error=%r event_dataset=%s", exc, event.get("event.dataset"))
        return len(result.inputs)

    def _detected(self, det) -> Candidate:
        self.metrics.detection(det.rule_id, det.kind).inc()
        self.progress["detections"] += 1
        return Candidate.of(det)

    def _advance_models(self, watermark: float) -> list[Candidate]:
        if not self.models or watermark <= 0:
            return []
        return self._findings(self.models.scorer.advance(watermark))

    def _findings(self, findings: list) -> list[Candidate]:
        out = []
        for f in findings:
            self.metrics.anomaly_finding(f.model, bool(f.shadow)).inc()
            if f.shadow:  # shadow models report; they never alert
                log.info("anomaly.shadow_finding model=%s entity=%s score=%.3f", f.model, f.entity, f.score)
                continue
            out.append(Candidate.of(f))
        return out

    # --- stage 2 -----------------------------------------------------------------------------
    def _stage2(self, polled: dict) -> None:
        now = time.monotonic()
        started = time.perf_counter()
        found: dict[int, list[Candidate]] = {}
        for tp, records in polled.items():
            state = self.partitions.get(tp.partition)
            if state is None:  # assignment raced the poll: restore first
                self._assigned([tp])
                state = self.partitions[tp.partition]
            mine = found.setdefault(tp.partition, [])
            self.progress["corr_records"] += len(records)
            for rec in records:
                try:
                    item = CorrelationInput.from_dict(wire.decode(rec.value))
                except Exception as exc:
                    self._dead_letter(rec.value, f"undecodable correlation input at {tp.partition}@{rec.offset}: {exc}")
                    continue
                mine.extend(self._detected(d) for d in state.engine.correlate(item))
                state.max_event_ts = max(state.max_event_ts, item.ts)
                state.last_event_wall = now
        # Event-time watermark per partition; an idle partition advances by wall clock so a
        # window whose last event has been seen still closes.
        for partition, state in self.partitions.items():
            idle = now - state.last_event_wall
            watermark = state.max_event_ts + (idle if idle >= self.cfg.idle_advance_s else 0.0)
            if watermark > 0:
                closed = state.engine.advance(watermark)
                if closed:
                    found.setdefault(partition, []).extend(self._detected(d) for d in closed)
        if not polled and not any(found.values()):
            return
        plan = AlertPlan()
        for partition, candidates in found.items():  # a dedup key's correlations meet in one partition
            state = self.partitions.get(partition)
            plan.extend(plan_alerts(state.suppressor if state else None, candidates))
        self._deliver(plan, self.corr)
        self._save_state([TopicPartition(self.cfg.correlation_topic, p) for p in self.partitions])
        self._commit(self.corr)
        self.metrics.batch_seconds_stage2.observe(time.perf_counter() - started)

    def _assigned(self, partitions: list) -> None:
        log.info("detector.stage2.assigned partitions=%s", sorted(tp.partition for tp in partitions))
        prefix = f"{self.cfg.group_id}|{self.cfg.correlation_topic}|".encode()
        snapshots = read_snapshots(self.cfg.kafka, self.cfg.state_topic, prefix)
        for tp in partitions:
            state = PartitionState(Engine(self.rules, allowed_lateness=self.cfg.allowed_lateness_s), self._suppressor())
            snap = snapshots.get(tp.partition)
            if snap is not None:
                offset = state.restore(snap)
                self.corr.seek(tp, offset)  # offsets committed after the snapshot: resume exactly there
                log.info("detector.state.restored partition=%d offset=%d", tp.partition, offset)
            self.partitions[tp.partition] = state

    def _revoked(self, partitions: list) -> None:
        for tp in partitions:
            self.partitions.pop(tp.partition, None)

    def _save_state(self, tps: list) -> None:
        for tp in tps:
            state = self.partitions.get(tp.partition)
            if state is None:
                continue
            key = f"{self.cfg.group_id}|{self.cfg.correlation_topic}|{tp.partition}".encode()
            self.producer.send(self.cfg.state_topic, key=key, value=state.snapshot(self.corr.position(tp)))
        self.producer.flush()

    # --- sinks -------------------------------------------------------------------------------
    def _deliver(self, plan: AlertPlan, consumer) -> None:
        """Write new alerts and count updates until Elasticsearch acknowledged all; pause meanwhile."""
        if not plan:
            return
        docs = self._docs(plan.new)
        updates = list(plan.updates)
        backoff, paused, paused_at = 0.5, False, 0.0
        while True:
            retry_docs = self._write(docs) if docs else []
            left, reopened = self._update_counts(updates) if updates and not retry_docs else (updates, [])
            docs, updates = retry_docs + self._docs(reopened), left
            if not docs and not updates:
                break
            if not retry_docs and not left:
                continue  # only alerts reopened after their open one was closed: write them now
            if not paused:
                consumer.pause(*consumer.assignment())
                paused, paused_at = True, time.monotonic()
                self.metrics.paused.set(1)
                log.warning(
                    "detector.es_unavailable pending_alerts=%d pending_updates=%d action=pause", len(docs), len(updates)
                )
            self.metrics.index_retries.inc()
            time.sleep(backoff)
            consumer.poll(timeout_ms=0)  # stay in the group while paused
            backoff = min(backoff * 2, self.cfg.retry_backoff_max_s)
        if paused:
            consumer.resume(*consumer.assignment())
            self.metrics.paused.set(0)
            # Time spent blocked on Elasticsearch is not idleness: without this shift, an outage longer
            # than allowed_lateness advanced every watermark by wall clock, and the events queued in
            # Kafka meanwhile arrived "late" and missed their windows (lost alerts after a 60 s outage).
            blocked = time.monotonic() - paused_at
            self.last_raw_wall += blocked
            for state in self.partitions.values():
                state.last_event_wall += blocked
            log.info("detector.es_available action=resume blocked_s=%.1f", blocked)

    def _docs(self, new_alerts: list) -> list[dict]:
        docs = []
        for n in new_alerts:
            item = n.candidate.item
            try:
                doc = build_alert(item, agency=self._agency(item))
            except (ValueError, TypeError, KeyError) as exc:  # one bad detection must not stop the batch
                self._dead_letter(wire.encode(item.to_dict()), f"cannot build alert: {exc}")
                continue
            docs.append(with_repeats(doc, n.repeats, iso_ms(n.last_ts) if n.repeats else None))
            if n.repeats:
                self.metrics.suppressed.inc(n.repeats)
        return docs

    def _agency(self, item: Finding) -> AgencyInfo | None:
        agencies = item.agencies
        return self.agency_lookup(agencies[0]) if len(agencies) == 1 else None

    def _write(self, docs: list[dict]) -> list[dict]:
        """Bulk-create; rejected documents go to the dead-letter topic; returns those to retry."""
        result = self.indexer.index(docs)
        self.metrics.alerts_indexed.inc(len(result.created))
        self.metrics.alerts_duplicate.inc(len(result.duplicates))
        for doc, reason in result.rejected:
            self._dead_letter(wire.encode(doc), f"elasticsearch rejected alert: {reason}")
        if result.rejected:
            self.producer.flush()
        if self.cfg.notify.enabled and result.created:
            created = set(result.created)
            self.notifier.offer([d for d in docs if d.get("_id") in created])
        return result.retry

    def _update_counts(self, updates: list) -> tuple[list, list]:
        """Add repeats to open alerts; (updates to retry later, new alerts for keys whose alert is gone)."""
        left, reopened = [], []
        for u in updates:
            try:
                got = self.indexer.update_suppressed(
                    u.candidate.dedup_key, u.repeats, iso_ms(u.last_ts), since=iso_ms(u.window_start)
                )
            except (TransportError, RuntimeError) as exc:  # ES down, or conflicting writers: try again
                log.warning("detector.suppression_update_failed key=%s error=%s retry=yes", u.candidate.dedup_key, exc)
                left.append(u)
                continue
            except ApiError as exc:
                if exc.meta.status == 429 or exc.meta.status >= 500:
                    left.append(u)
                else:
                    log.error(
                        "detector.suppression_update_rejected key=%s status=%s error=%s repeats_lost=%d",
                        u.candidate.dedup_key,
                        exc.meta.status,
                        exc.message,
                        u.repeats,
                    )
                continue
            if got is None:
                reopened.append(reopen(u))
            else:
                self.metrics.suppressed.inc(u.repeats)
        return left, reopened

    def _commit(self, consumer) -> None:
        try:
            consumer.commit()
        except CommitFailedError as exc:
            # Evicted by a rebalance: the batch will be redelivered; idempotent writes absorb it.
            self.metrics.commit_failures.inc()
            log.warning("detector.commit_failed reason=%s", exc)

    def _quarantine(self, rec, reason: str, where: str) -> None:
        """The record as it came (key, headers, value) plus why, for the SOC to investigate."""
        self.metrics.quarantine(reason).inc()
        log.warning("detector.quarantined reason=%s at=%s key=%.120r", reason, where, rec.key)
        headers = [(k, v) for k, v in (rec.headers or [])[:16] if isinstance(k, str) and isinstance(v, bytes)]
        headers += [("quarantine_reason", reason.encode()), ("quarantine_from", where.encode())]
        self.producer.send(self.cfg.quarantine_topic, key=rec.key, value=rec.value, headers=headers)

    def _dead_letter(self, payload: bytes, reason: str) -> None:
        self.metrics.dead_letters.inc()
        log.warning("detector.dead_letter reason=%s", reason)
        self.producer.send(self.cfg.dead_letter_topic, value=payload, headers=[("reason", reason.encode()[:4000])])
