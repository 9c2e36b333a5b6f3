"""The detector worker's runner: builds the clients, wires the parts, moves records, commits.

    raw topic --Stage1--> plan --AlertSink--> Elasticsearch          (pipeline.worker.stages / .sink)
              \\--forwards--> correlation topic --Stage2--> plan --AlertSink--> Elasticsearch
    created alerts --NotificationQueue (own thread)--> webhook / bot   (pipeline.notify)

Two stages, each a Kafka consumer group, so that adding workers scales both:

* stage 1 consumes the raw topic (partitioned by agency/agent/source): verify and deduplicate,
  normalise, match single-event rules, feed anomaly models, and forward events that feed correlation
  rules to the correlation topic, keyed by the correlation's group-by values (e.g. `source.ip`, not the
  agency, so one address attacking several agencies meets in one worker). Its dedup state is saved to
  the compacted state topic with the offsets, and restored on assignment.
* stage 2 consumes the correlation topic and keeps windowed correlation state per partition. The state
  (with its suppression state) is written to the state topic (with the next offset) before offsets are
  committed, and is restored when a partition is assigned, so a restart neither misses nor doubles a
  correlation.

Offsets are committed only after Elasticsearch acknowledged the batch's alerts (`AlertSink.deliver`
returns then) and after correlation inputs, quarantined records and dead letters are durable in Kafka.
Records that fail verification go to the quarantine topic; records that cannot be decoded and alerts
Elasticsearch rejects go to the dead-letter topic, with the reason; nothing is dropped silently.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from elasticsearch import AuthorizationException
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError

from detectors.alerts import AgencyInfo
from detectors.normalise import Normaliser
from detectors.sigma import Engine, load_rules
from pipeline import kafka_io
from pipeline.config import ConfigError
from pipeline.detector_config import DetectorConfig
from pipeline.elastic import AlertIndexer, EventIndexer, connect
from pipeline.elastic import setup as es_setup
from pipeline.elastic.episodes import EpisodeWriter
from pipeline.elastic.incidents import IncidentStore
from pipeline.elastic.setup import MappingConflict
from pipeline.enrolment.registry import AgentCache, Registry
from pipeline.notify import NotificationQueue, Notifier
from pipeline.worker.alerting import AlertPlan, EpisodeSettings
from pipeline.worker.consumers import StageConsumers
from pipeline.worker.intake import Intake
from pipeline.worker.models import ModelSet
from pipeline.worker.outputs import KafkaOutputs
from pipeline.worker.rebalance import Rebalance, stage_partitions
from pipeline.worker.sink import AlertSink, Stopping
from pipeline.worker.stages import Detected, Stage1, Stage2, new_suppressor
from pipeline.worker.state import SnapshotReader
from pipeline.worker_metrics import WorkerMetrics

log = logging.getLogger("socpipe.detector")

CORR_SLICE_EVERY_S = 0.25  # while stage 1 is busy, stage 2's blocking poll at least this often

__all__ = ["DetectorWorker"]


def _open_registry(path: str) -> Registry:
    """The enrolment registry (written by `socpipe enrol`/`coverage`, shared with them). A missing one is
    created empty (the enrolment server may start a moment later), loudly: with no agents known, every
    raw record is quarantined."""
    if not Path(path).is_file():
        log.warning(
            "detector.registry_missing path=%s action=create_empty (every record quarantined until agents enrol)", path
        )
    registry = Registry(path)
    log.info("detector.registry path=%s agents=%d", path, len(registry.agents()))
    return registry


class DetectorWorker:
    def __init__(self, cfg: DetectorConfig, agency_lookup: Callable[[str], AgencyInfo | None] | None = None):
        self.cfg = cfg = cfg.validate()
        # Rules and models first: a config error stops the worker before it connects to anything.
        loaded = load_rules(cfg.rules)
        for issue in loaded.errors:
            log.warning("rules.load_error %s", issue)
        if not loaded.rules:
            first = f"; first: {loaded.errors[0]}" if loaded.errors else ""
            raise ConfigError(f"rules: no usable rule in {cfg.rules} ({len(loaded.errors)} errors{first})")
        self.rules = loaded.rules
        self.metrics = WorkerMetrics()
        self.metrics.rules_loaded.set(len(self.rules))
        self.models = ModelSet(cfg.models, check_every_s=cfg.model_check_s)
        self._model_metrics()
        self.agents = AgentCache(_open_registry(cfg.registry), refresh_s=cfg.registry_refresh_s)
        self.intake = Intake(self.agents, cfg.max_seq_ahead)  # verification + dedup per raw partition
        detected = Detected(self.metrics)
        self.detected = detected
        episodes = EpisodeSettings(cfg.episode_quiet_s, cfg.episode_max_s)
        self.stage1 = Stage1(
            Engine(self.rules, allowed_lateness=cfg.allowed_lateness_s),
            Normaliser(default_timezone=cfg.timezone, max_processes=cfg.process_context_max),
            self.intake,
            self.models,
            new_suppressor(cfg.suppression_window_s, cfg.suppression_max_keys),
            self.metrics,
            detected,
            anomaly_lateness_s=cfg.anomaly_lateness_s,
            anomaly_idle_flush_s=cfg.anomaly_idle_flush_s,
            idle_flush_s=cfg.idle_flush_s,
            keep_events=cfg.es.index_events,
            episodes=episodes,
        )
        self.stage2 = Stage2(
            lambda: Engine(self.rules, allowed_lateness=cfg.allowed_lateness_s),
            lambda: new_suppressor(cfg.suppression_window_s, cfg.suppression_max_keys),
            detected,
            idle_advance_s=cfg.idle_advance_s,
            episodes=episodes,
        )
        self.notifications: NotificationQueue | None = None
        if cfg.notify.enabled:
            self.notifications = NotificationQueue(
                Notifier(cfg.notify), cfg.notify.max_pending, on_drop=self.metrics.notifications_dropped.inc
            )
        self._stop = threading.Event()  # run()'s: the sink stops waiting for Elasticsearch when it is set
        self.progress = {"raw_records": 0, "lines": 0, "inputs_sent": 0, "corr_records": 0, "detections": 0}
        self._next_progress_log = time.monotonic() + cfg.progress_log_s

        es = connect(cfg.es)
        try:
            setup_report = es_setup(es, cfg.es, cfg.es.index_prefix)  # idempotent: templates before the first alert
            log.info("detector.es_setup %s", setup_report)
        except AuthorizationException:
            # A least-privilege detector credential may not manage templates: `socpipe es setup` (with
            # the setup credential) installs them; the detector only writes documents.
            log.warning("detector.es_setup skipped=no_privilege hint='run socpipe es setup with the setup credential'")
        except MappingConflict as exc:
            # Templates are in place; an existing daily index maps a field differently. Alerts it
            # rejects go to the dead-letter topic with the reason; the worker keeps running.
            log.warning(
                "detector.es_setup mapping_conflict=%r hint='alerts this index rejects go to the dead-letter topic'",
                str(exc),
            )
        # es.index_events: every normalised event also lands in <prefix>-events-YYYY.MM.DD (Kibana's
        # socpipe-events data view), written before the raw offsets move, deterministic ids on replay
        self.event_indexer = (
            EventIndexer(es, prefix=cfg.es.index_prefix, chunk_docs=cfg.bulk_docs) if cfg.es.index_events else None
        )
        indexer = AlertIndexer(es, prefix=cfg.es.index_prefix, chunk_docs=cfg.bulk_docs)
        self.sink = AlertSink(
            indexer,
            self.metrics,
            lambda payload, reason: self.outputs.dead_letter(payload, reason),  # alerts Elasticsearch rejects
            episodes=EpisodeWriter(es, indexer, cfg.episode_quiet_s, cfg.episode_max_s),
            episode_update_s=cfg.episode_update_s,
            incidents=(
                IncidentStore(es, cfg.es.index_prefix, cfg.incident_window_s) if cfg.incident_window_s > 0 else None
            ),
            agency_lookup=agency_lookup,
            notify=self.notifications.offer if self.notifications else None,
            retry_backoff_max_s=cfg.retry_backoff_max_s,
            sleep=self._wait,  # a stop ends an outage's backoff at once ...
            stopping=self._stopping,  # ... and gives the batch up (sink.Stopping)
        )
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
        self.outputs = KafkaOutputs(
            kafka_io.producer(cfg.kafka),
            self.metrics,
            correlation_topic=cfg.correlation_topic,
            quarantine_topic=cfg.quarantine_topic,
            dead_letter_topic=cfg.dead_letter_topic,
            state_topic=cfg.state_topic,
        )
        # The two stages' consumers, their assignors and the load samples the assignors read
        # (pipeline.worker.consumers).
        self.consumers = StageConsumers(cfg)
        self.raw, self.corr, self.loads = self.consumers.raw, self.consumers.corr, self.consumers.loads
        self._corr_slice_due = 0.0
        # Which partitions each stage holds, and their restore from the state topic after a rebalance
        # (pipeline.worker.rebalance): stage 1's dedup state, stage 2's correlation state.
        self.part1, self.part2 = stage_partitions(
            self.metrics,
            cfg.group_id,
            raw=self.raw,
            raw_topic=cfg.raw_topic,
            intake=self.intake,
            corr=self.corr,
            correlation_topic=cfg.correlation_topic,
            stage2=self.stage2,
            generations=self.consumers.generations(),
        )
        snapshots = SnapshotReader(cfg.kafka, cfg.state_topic, (self.part1.prefix, self.part2.prefix))
        self.rebalance = Rebalance(snapshots, (self.part1, self.part2), self.metrics, cfg.state_topic)
        self.consumers.subscribe(self.part1.listener(), self.part2.listener())
        log.info(
            "detector.start group=%s rules=%d rule_errors=%d models=%d model_errors=%d suppression_window_s=%s",
            cfg.group_id,
            len(self.rules),
            len(loaded.errors),
            len(self.models.loaded),
            len(self.models.errors),
            cfg.suppression_window_s,
        )

    def _model_metrics(self) -> None:
        self.metrics.models_loaded.set(len(self.models.loaded))
        self.metrics.model_errors.set(len(self.models.errors))

    # --- main loop ---------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        self._stop = stop
        try:
            while not stop.is_set():
                self.poll_once()
        except Stopping as exc:
            log.warning(
                "detector.stopped_during_es_outage %s action=leave_groups_uncommitted "
                "(the partitions' next owner reads the batch again; alerts are idempotent)",
                exc,
            )
        finally:
            self.close()

    def _stopping(self) -> bool:
        return self._stop.is_set()

    def _wait(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def poll_once(self) -> None:
        self.agents.refresh(time.monotonic())  # revocations and new enrolments within registry_refresh_s
        polled = kafka_io.poll(self.raw, self.cfg.poll_timeout_ms, self._raw_records_per_poll())
        busy = bool(polled)
        self._stage1(self.rebalance.restore_assigned(self.part1, polled))
        # Stage 2 needs a real slice: with 0 kafka-python never finished a group join (a join completed
        # between two polls was thrown away: kafka_io.poll now takes it in, and both
        # consumers are polled through it), and with 10 ms
        # (tried, to save stage-1 time) the stage-2 consumer sometimes never delivered fetched records
        # on this loaded box (1 in ~5 e2e runs lost the correlation); 50 ms passed 10 of 10. While stage 1
        # drains a backlog, that wait after every batch was most of the wall time, so it gets the slice
        # at least every CORR_SLICE_EVERY_S and otherwise only takes what has already arrived.
        now = time.monotonic()
        if busy and now < self._corr_slice_due:
            slice_ms = 0
        else:
            slice_ms = max(20, self.cfg.poll_timeout_ms // 4)
            self._corr_slice_due = now + CORR_SLICE_EVERY_S
        polled = kafka_io.poll(self.corr, slice_ms, self.cfg.max_batch_records)
        self._stage2(self.rebalance.restore_assigned(self.part2, polled))
        self.sink.flush_due()  # episode growth held back by the bounded update rate
        self.consumers.sample_loads_if_due()
        if self.models.maybe_reload():
            self._model_metrics()
        if time.monotonic() >= self._next_progress_log:
            self._next_progress_log = time.monotonic() + self.cfg.progress_log_s
            self.progress["detections"] = self.detected.count
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
        per_record = max(1.0, self.stage1.lines_per_record)
        return max(1, min(self.cfg.max_batch_records, int(self.cfg.max_batch_lines / per_record)))

    def close(self) -> None:
        # Leave both groups first (LeaveGroup: the others take the partitions over at once, not after
        # a session timeout); nothing here needs them: offsets are committed after each batch only.
        self.consumers.close()
        try:  # deferred episode growth, once more; what Elasticsearch does not take now is dead-lettered
            self.sink.flush_at_stop(self.outputs.dead_letters_confirmed)
        except Exception:  # Elasticsearch errors are sorted inside the flush: this is a bug, with its trace
            log.exception("detector.stop_flush_failed")
        self.outputs.close()
        if self.notifications is not None:
            self.notifications.close()

    # --- stage 1 -----------------------------------------------------------------------------
    def _stage1(self, polled: dict[TopicPartition, list[Any]]) -> None:
        if not polled:
            idle = self.stage1.idle()
            self.outputs.send(idle)
            if idle.forwards:
                self.outputs.flush()
            self._deliver(idle.plan, self.raw)
            self._index_events(idle.events)
            self.outputs.flush_if_needed()
            return
        started = time.perf_counter()
        out = self.stage1.process(rec for records in polled.values() for rec in records)
        self.progress["raw_records"] += out.records
        self.progress["lines"] += out.lines
        for partition, (records, lines) in out.by_partition.items():
            self.loads.observe(self.cfg.raw_topic, partition, records, lines)
        self.progress["inputs_sent"] += len(out.forwards)
        self.outputs.send(out)
        if out.forwards or out.quarantined:
            self.outputs.flush()  # correlation inputs and quarantined records are durable before offsets move
        self._deliver(out.plan, self.raw)
        self._index_events(out.events)
        self.outputs.flush_if_needed()
        self._save_seen([tp for tp in polled if tp.partition in self.intake.seen])
        self._commit(self.raw)
        self.metrics.batch_seconds_stage1.observe(time.perf_counter() - started)

    def _deliver(self, plan: AlertPlan, consumer: KafkaConsumer) -> None:
        blocked = self.sink.deliver(plan, self.rebalance.hold(self.part1 if consumer is self.raw else self.part2))
        if blocked > 0:
            self.stage1.shift_idle(blocked)
            self.stage2.shift_idle(blocked)

    def _index_events(self, events: list[dict[str, Any]]) -> None:
        if self.event_indexer is None or not events:
            return
        blocked = self.sink.deliver_events(self.event_indexer, events, self.rebalance.hold(self.part1))
        if blocked > 0:
            self.stage1.shift_idle(blocked)
            self.stage2.shift_idle(blocked)

    def _save_seen(self, tps: list[TopicPartition]) -> None:
        """Dedup state of the partitions a batch touched, with their next offsets, before the commit."""
        for tp in tps:
            offset = self.raw.position(tp)
            value = self.intake.snapshot(tp.partition, offset)
            self.outputs.snapshot(self.part1.key(tp.partition), value)
            self.part1.saved(tp, offset)
        if tps:
            self.outputs.flush()

    # --- stage 2 -----------------------------------------------------------------------------
    def _stage2(self, polled: dict[TopicPartition, list[Any]]) -> None:
        started = time.perf_counter()
        out = self.stage2.process({tp.partition: records for tp, records in polled.items()})
        if not out.records and not out.plan:
            return
        self.progress["corr_records"] += out.records
        self.outputs.send(out)
        self._deliver(out.plan, self.corr)
        self.outputs.flush_if_needed()
        self._save_state([TopicPartition(self.cfg.correlation_topic, p) for p in self.stage2.partitions])
        self._commit(self.corr)
        self.metrics.batch_seconds_stage2.observe(time.perf_counter() - started)

    def _save_state(self, tps: list[TopicPartition]) -> None:
        for tp in tps:
            offset = self.corr.position(tp)
            snap = self.stage2.snapshot(tp.partition, offset)
            if snap is not None:
                self.outputs.snapshot(self.part2.key(tp.partition), snap)
                self.part2.saved(tp, offset)
        self.outputs.flush()

    def _commit(self, consumer: KafkaConsumer) -> None:
        try:
            consumer.commit()
        except CommitFailedError as exc:
            # Evicted by a rebalance: the batch will be redelivered; idempotent writes absorb it.
            self.metrics.commit_failures.inc()
            log.warning("detector.commit_failed reason=%s", exc)
