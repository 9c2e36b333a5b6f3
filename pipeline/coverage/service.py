"""The coverage service: consume heartbeats and count raw traffic, evaluate on the wall clock, export.

One consumer is assigned every partition of both topics and starts at their end: coverage is about
now, and replaying a backlog would make dead sources look fresh. Raw records are counted from their
key and headers only, never decoded. Every `tick_s` (whether or not messages arrived) the inventory
is re-checked, states are evaluated, `status.json` is written for `socpipe coverage status`, and
transitions and ratio samples go to the history store.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import replace
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from kafka import KafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry, start_http_server

from collectors.wire import HEADER_DATASET
from pipeline import kafka_io
from pipeline.coverage.config import CoverageConfig
from pipeline.coverage.history import HistoryStore
from pipeline.coverage.inventory import InventoryFile
from pipeline.coverage.metrics import CoverageCollector, TrafficCounters
from pipeline.coverage.state import CoverageTracker, Snapshot
from pipeline.coverage.status import snapshot_to_dict
from pipeline.enrolment.registry import AgentCache, Registry
from pipeline.verify import (
    HeartbeatGuard,
    RecordHeaders,
    StreamCounters,
    check_heartbeat,
    check_raw,
    header_value,
    lines_from_headers,
    parse_heartbeat,
)

log = logging.getLogger("socpipe.coverage")

STATE_SAVE_S = 30.0


class CoverageService:
    def __init__(self, cfg: CoverageConfig):
        self.cfg = cfg
        self.state_dir = Path(cfg.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.inventory = InventoryFile(cfg.inventory)
        self.registry = Registry(cfg.registry)
        self.agents = AgentCache(self.registry)
        self.tracker = CoverageTracker(cfg.thresholds())
        self.history = HistoryStore(self.state_dir / "history.db")
        self.counters = TrafficCounters()
        # ~2 intervals by default (5 s at least, for Kafka's own delay): an older heartbeat only proves
        # the agent was alive back then
        self.heartbeat_guard = HeartbeatGuard(max_age_s=cfg.heartbeat_max_age())
        self.record_counters = StreamCounters()
        self.snapshot: Snapshot | None = None
        self._stop = threading.Event()
        self._consumer: KafkaConsumer | None = None
        self._http: WSGIServer | None = None
        saved = self.history.get("tracker")
        if saved:
            self.tracker.import_state(saved)
        self.heartbeat_guard.load(self.history.get("heartbeat_counters") or {})
        self.record_counters.load((self.history.get("record_counters") or {}).get("streams") or [])

    def stop(self) -> None:
        self._stop.set()

    def start_metrics(self) -> CollectorRegistry:
        reg = CollectorRegistry(auto_describe=False)
        reg.register(
            CoverageCollector(
                lambda: self.snapshot,
                self.counters,
                lambda: (len(self.inventory.current.errors), self.inventory.loaded_at),
            )
        )
        self._http, _ = start_http_server(self.cfg.metrics_port, addr=self.cfg.metrics_host, registry=reg)
        log.info("coverage.metrics_listening host=%s port=%d", self.cfg.metrics_host, self.cfg.metrics_port)
        return reg

    def _connect(self) -> KafkaConsumer:
        topics = [self.cfg.heartbeat_topic, self.cfg.raw_topic]
        kafka_io.ensure_topics(
            self.cfg.kafka, {self.cfg.heartbeat_topic: {"partitions": 1}, self.cfg.raw_topic: {"partitions": 4}}
        )
        consumer = kafka_io.consumer(
            self.cfg.kafka, group_id=None, enable_auto_commit=False, auto_offset_reset="latest"
        )
        deadline = time.monotonic() + 30
        parts: list[TopicPartition] = []
        while time.monotonic() < deadline:
            parts = []
            for t in topics:
                ps = kafka_io.partitions_for(consumer, t)  # KafkaTimeoutError: the brokers do not answer
                if not ps:
                    break
                parts += [TopicPartition(t, p) for p in ps]
            else:
                break
            time.sleep(0.2)
        consumer.assign(parts)
        consumer.seek_to_end(*parts)
        for tp in parts:  # resolve the end offsets now, so nothing sent after start-up is skipped
            consumer.position(tp)
        log.info("coverage.consuming partitions=%d", len(parts))
        return consumer

    def start(self, serve_metrics: bool = True) -> None:
        """Serve the metrics and connect to Kafka (`run` does it if not done). Raises what stopped it:
        OSError (the metrics port), KafkaError (the brokers); nothing is left listening then."""
        if serve_metrics:
            self.start_metrics()
        try:
            self._consumer = self._connect()
        except BaseException:
            self._close_metrics()
            raise

    def _close_metrics(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def run(self, serve_metrics: bool = True) -> None:
        if self._consumer is None:
            self.start(serve_metrics)
        consumer = self._consumer
        assert consumer is not None
        now = time.time()
        self.agents.refresh(now, force=True)
        self.tick(now)
        next_tick = now + self.cfg.tick_s
        next_sample = now
        next_save = now + STATE_SAVE_S
        try:
            while not self._stop.is_set():
                timeout_ms = max(0, int((next_tick - time.time()) * 1000))
                batches = kafka_io.poll(consumer, timeout_ms, 5000)
                now = time.time()
                for tp, records in batches.items():
                    if tp.topic == self.cfg.heartbeat_topic:
                        for r in records:
                            self.handle_heartbeat(r.value, now)
                    else:
                        for r in records:
                            self.handle_raw(r.key, r.headers, now, r.value)
                if now >= next_tick:
                    self.agents.refresh(now)
                    snap = self.tick(now)
                    next_tick = now + self.cfg.tick_s
                    if now >= next_sample:
                        self.history.record_sample(snap)
                        next_sample = now + self.cfg.history_interval_s
                    if now >= next_save:
                        self._save_state()
                        next_save = now + STATE_SAVE_S
        finally:
            self._save_state()
            consumer.close()
            self._close_metrics()

    def _save_state(self) -> None:
        self.history.put("tracker", self.tracker.export_state())
        self.history.put("heartbeat_counters", self.heartbeat_guard.export())
        self.history.put("record_counters", {"streams": self.record_counters.export()})

    def handle_heartbeat(self, value: bytes | None, now: float) -> None:
        hb = parse_heartbeat(value)
        if hb is None:
            self.counters.reject_heartbeat("malformed")
            return
        reason = check_heartbeat(hb, self.agents) or self.heartbeat_guard.check(hb, now)
        if reason:
            self.counters.reject_heartbeat(reason)
            log.warning(
                "coverage.heartbeat_rejected reason=%s agent=%.40r claimed_agency=%.40r counter=%d sent_at=%.0f",
                reason,
                hb.agent_id,
                hb.agency_id,
                hb.counter,
                hb.sent_at,
            )
            return
        self.heartbeat_guard.accept(hb)
        self.counters.accept_heartbeat()
        try:
            shipped = {str(p): int(s.lines_shipped) for p, s in hb.sources.items()}
            problems = {str(p): str(s.reason or s.state) for p, s in hb.sources.items() if s.state != "ok"}
            spool = int(hb.spool_bytes)
            kafka_problem = str(hb.kafka_reason or hb.kafka_state or "")  # sent only while not connected
        except (TypeError, ValueError, AttributeError):
            self.counters.reject_heartbeat("malformed")
            return
        self.tracker.observe_heartbeat(
            agency_id=hb.agency_id,
            agent_id=hb.agent_id,
            host=str(hb.host)[:255],
            version=str(hb.version)[:64],
            spool_bytes=spool,
            shipped=shipped,
            now=now,
            input_problems=problems,
            kafka_problem=kafka_problem,
        )

    def handle_raw(self, key: bytes | None, headers: RecordHeaders, now: float, value: bytes | None = None) -> None:
        """Count a raw record's lines for its agency if it is genuine (MAC checked; value not decoded)
        and not a replay of a record already counted."""
        verdict = check_raw(key, headers, value, self.agents)
        if verdict.reason is None and verdict.agent is not None:
            if not self.record_counters.fresh(verdict.agent.agent_id, verdict.source, verdict.counter):
                verdict = replace(verdict, reason="replayed")
        if verdict.reason or verdict.agent is None:
            self.counters.reject_record(verdict.reason or "unknown_agent")
            return
        agency_id = verdict.agent.agency_id
        dataset = header_value(headers, HEADER_DATASET)[:64] or "unknown"
        self.counters.count_events(agency_id, dataset, lines_from_headers(headers))
        self.tracker.observe_events(
            agency_id=agency_id, agent_id=verdict.agent.agent_id, source=verdict.source, now=now
        )

    def tick(self, now: float) -> Snapshot:
        self.inventory.refresh(now)
        snap = self.tracker.evaluate(self.inventory.current, now)
        self.snapshot = snap
        self.history.record_transitions(snap)
        self._write_status(snap)
        return snap

    def _write_status(self, snap: Snapshot) -> None:
        path = self.state_dir / "status.json"
        tmp = path.with_suffix(".tmp")
        data = snapshot_to_dict(snap)
        data["inventory_errors"] = list(self.inventory.current.errors)
        data["inventory_file_error"] = self.inventory.file_error
        tmp.write_text(json.dumps(data, ensure_ascii=False))
        os.replace(tmp, path)
