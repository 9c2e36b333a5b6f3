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
from pathlib import Path

from kafka import TopicPartition
from prometheus_client import CollectorRegistry, start_http_server

from collectors.wire import HEADER_DATASET
from pipeline import kafka_io
from pipeline.coverage.config import CoverageConfig
from pipeline.coverage.history import HistoryStore
from pipeline.coverage.inventory import InventoryFile
from pipeline.coverage.metrics import CoverageCollector, TrafficCounters
from pipeline.coverage.state import CoverageTracker, Snapshot
from pipeline.coverage.status import snapshot_to_dict
from pipeline.coverage.verify import (
    check_heartbeat,
    check_record,
    header_value,
    lines_from_headers,
    parse_heartbeat,
    parse_record_key,
)
from pipeline.enrolment.registry import AgentRecord, Registry

log = logging.getLogger("socpipe.coverage")

REGISTRY_REFRESH_S = 10.0
STATE_SAVE_S = 30.0


class AgentCache:
    """Registry lookups at raw-traffic rate: a full reload every few seconds, one query per unknown id."""

    def __init__(self, registry: Registry):
        self._registry = registry
        self._agents: dict[str, AgentRecord] = {}
        self._missing: set[str] = set()
        self._loaded = 0.0

    def refresh(self, now: float, force: bool = False) -> None:
        if force or now - self._loaded >= REGISTRY_REFRESH_S:
            self._agents = {a.agent_id: a for a in self._registry.agents()}
            self._missing.clear()
            self._loaded = now

    def __call__(self, agent_id: str) -> AgentRecord | None:
        rec = self._agents.get(agent_id)
        if rec is None and agent_id not in self._missing:
            rec = self._registry.agent(agent_id)
            if rec is None:
                if len(self._missing) < 10_000:  # forged ids must not grow memory without bound
                    self._missing.add(agent_id)
            else:
                self._agents[agent_id] = rec
        return rec


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
        self.snapshot: Snapshot | None = None
        self._stop = threading.Event()
        self._consumer = None
        self._http = None
        saved = self.history.get("tracker")
        if saved:
            self.tracker.import_state(saved)

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

    def _connect(self):
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
                ps = consumer.partitions_for_topic(t)
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

    def run(self, serve_metrics: bool = True) -> None:
        if serve_metrics:
            self.start_metrics()
        consumer = self._connect()
        self._consumer = consumer
        now = time.time()
        self.agents.refresh(now, force=True)
        self.tick(now)
        next_tick = now + self.cfg.tick_s
        next_sample = now
        next_save = now + STATE_SAVE_S
        try:
            while not self._stop.is_set():
                timeout_ms = max(0, int((next_tick - time.time()) * 1000))
                batches = consumer.poll(timeout_ms=timeout_ms, max_records=5000)
                now = time.time()
                for tp, records in batches.items():
                    if tp.topic == self.cfg.heartbeat_topic:
                        for r in records:
                            self.handle_heartbeat(r.value, now)
                    else:
                        for r in records:
                            self.handle_raw(r.key, r.headers, now)
                if now >= next_tick:
                    self.agents.refresh(now)
                    snap = self.tick(now)
                    next_tick = now + self.cfg.tick_s
                    if now >= next_sample:
                        self.history.record_sample(snap)
                        next_sample = now + self.cfg.history_interval_s
                    if now >= next_save:
                        self.history.put("tracker", self.tracker.export_state())
                        next_save = now + STATE_SAVE_S
        finally:
            self.history.put("tracker", self.tracker.export_state())
            consumer.close()
            if self._http is not None:
                self._http.shutdown()
                self._http.server_close()

    def handle_heartbeat(self, value: bytes | None, now: float) -> None:
        hb = parse_heartbeat(value)
        if hb is None:
            self.counters.reject_heartbeat("malformed")
            return
        reason = check_heartbeat(hb, self.agents)
        if reason:
            self.counters.reject_heartbeat(reason)
            log.warning(
                "coverage.heartbeat_rejected reason=%s agent=%.40r claimed_agency=%.40r",
                reason,
                hb.agent_id,
                hb.agency_id,
            )
            return
        self.counters.accept_heartbeat()
        try:
            shipped = {str(p): int(s.lines_shipped) for p, s in hb.sources.items()}
            spool = int(hb.spool_bytes)
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
        )

    def handle_raw(self, key: bytes | None, headers, now: float) -> None:
        parts = parse_record_key(key)
        if parts is None:
            self.counters.reject_record("bad_key")
            return
        agency_id, agent_id, source = parts
        reason = check_record(agency_id, agent_id, self.agents)
        if reason:
            self.counters.reject_record(reason)
            return
        dataset = header_value(headers, HEADER_DATASET)[:64] or "unknown"
        self.counters.count_events(agency_id, dataset, lines_from_headers(headers))
        self.tracker.observe_events(agency_id=agency_id, agent_id=agent_id, source=source, now=now)

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
