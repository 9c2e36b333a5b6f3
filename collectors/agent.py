"""The agent: inputs -> per-source batches -> spool -> Kafka, plus heartbeats and self-metrics.

Threads: this loop (reads files, drains the listeners' inbox (collectors/listener_inputs.py), hands
what it read to the `Batcher` (collectors/batcher.py: per-source batches -> signed spool records, each
with its checkpoint), saves checkpoints), the shipper (spool -> Kafka), the heartbeat sender, one per
listener.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from collectors.batcher import Batcher
from collectors.config import AgentConfig, own_state_paths
from collectors.file_input import FileInput
from collectors.flood import TokenBucket
from collectors.health import OK
from collectors.identity import Identity
from collectors.listener_inputs import Inbox, ListenerInputs
from collectors.shipper import Shipper
from collectors.spool import Spool, write_json_atomic
from collectors.stats import AgentStats, build_heartbeat, start_metrics_server
from collectors.status import STATUS_FILE, status_document
from collectors.tailer import FileSource
from collectors.version import __version__
from collectors.wire import MessageCounter

log = logging.getLogger("socpipe.agent")

CHECKPOINT_EVERY_S = 5.0
STATUS_EVERY_S = 2.0  # <state_dir>/status.json, read by `socpipe-agent status`
LISTENER_RETRY_S = 30.0  # a listener whose bind failed is retried this often
READ_BUDGET = 1024 * 1024  # bytes per source per loop: bounds memory and keeps sources fair


class Agent:
    def __init__(
        self, config: AgentConfig, identity: Identity, host: str | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        self.config = config
        self.env = os.environ if env is None else env  # SOCPIPE_KAFKA_* win over identity.json
        self.identity = identity
        self.host = host or config.host or socket.gethostname()
        self.stats = AgentStats()
        self.state_dir = Path(config.state_dir)
        self._buckets: dict[str, TokenBucket] = {}
        self.inputs = ListenerInputs(config, self.stats, self._bucket)  # syslog, Windows, journald
        self.listeners = self.inputs.listeners
        self.listen_ports = self.inputs.listen_ports  # listener source name -> bound port (0 in config = any)
        self.ready = threading.Event()  # set once inputs are open (listeners bound)
        self._journal_cursor = ""
        self.counter = MessageCounter()  # persisted in the state dir once run() has it

    # --- public ------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Blocking; returns when `stop` is set, after flushing what was read into the spool."""
        c = self.config
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.counter = MessageCounter(self.state_dir / "counter")
        spool = Spool(
            self.state_dir / "spool", c.spool.segment_bytes, c.spool.max_bytes, c.spool.fsync, c.spool.fsync_interval_s
        )
        positions = self._load_checkpoints()
        positions.update(spool.recover())
        self.stats.spool_corrupt = spool.corrupt
        self._batcher = batcher = Batcher(c, self.identity, self.host, self.counter, spool, positions)
        spool.on_before_delete = self._save_checkpoints

        file_inputs = [
            FileInput(
                f,
                positions,
                c.fingerprint_bytes,
                c.flood.max_line_bytes,
                c.flood.partial_line_timeout_s,
                c.close_inactive_s,
                own_state_paths(c),
            )
            for f in c.files
        ]
        inbox: Inbox = queue.Queue(maxsize=20000)
        stop_inputs = threading.Event()
        journal = self.inputs.start(positions, inbox, stop_inputs)

        kafka_kwargs = self._kafka_kwargs()
        shipper_stop = threading.Event()
        shipper = Shipper(
            spool,
            kafka_kwargs,
            c.topic,
            self.stats,
            shipper_stop,
            client_id=f"socpipe-agent-{self.identity.agent_id}",
            sign=batcher.sign,
        )
        shipper.start()
        hb_thread = threading.Thread(target=self._heartbeats, args=(shipper, stop), name="agent-heartbeat", daemon=True)
        hb_thread.start()
        metrics_server = None
        if c.metrics.enabled:
            metrics_server = start_metrics_server(self.stats, c.metrics.host, c.metrics.port)
        log.info(
            "agent.started agency_id=%s agent_id=%s host=%s files=%d listeners=%d journald=%s",
            self.identity.agency_id,
            self.identity.agent_id,
            self.host,
            len(c.files),
            len(self.listeners),
            journal is not None,
        )
        self.ready.set()
        try:
            self._loop(stop, file_inputs, inbox, spool)
        finally:
            stop_inputs.set()
            for lst in self.listeners:
                lst.close()
            if journal is not None:
                journal.close()
            self.inputs.drain(inbox, time.time(), batcher)
            batcher.flush_all()
            shipper_stop.set()
            shipper.join(shipper.drain_on_stop_s + 5)
            self.stats.spool_bytes = spool.pending_bytes
            self._write_status(spool, running=False)
            spool.close()
            self._save_checkpoints()
            for fi in file_inputs:
                for src in fi.sources.values():
                    src.close()
            if metrics_server is not None:
                metrics_server[0].shutdown()
            log.info("agent.stopped")

    # --- main loop ---------------------------------------------------------------------------------
    def _loop(self, stop: threading.Event, file_inputs: list[FileInput], inbox: Inbox, spool: Spool) -> None:
        c = self.config
        next_refresh = 0.0
        next_checkpoint = time.monotonic() + CHECKPOINT_EVERY_S
        next_status = 0.0
        next_bind_retry = time.monotonic() + LISTENER_RETRY_S
        sources: list[FileSource] = []
        while not stop.is_set():
            now = time.monotonic()
            wall = time.time()
            if now >= next_refresh:
                for fi in file_inputs:
                    for src in fi.discover():
                        self._batcher.track(src.name, src.position())
                sources = [s for fi in file_inputs for s in fi.sources.values()]
                for src in sources:
                    src.refresh(now)
                    sc = self.stats.source(src.name)
                    sc.lag_bytes = src.lag_bytes
                self._report_files(file_inputs, sources)
                next_refresh = now + c.poll_interval_s
            busy = False
            if not spool.full:
                for src in sources:
                    bucket = self._bucket(src.name)
                    if bucket is not None and not bucket.available(now):
                        continue
                    before = src.seq_next
                    lines = src.read(now, wall, READ_BUDGET)
                    if lines:
                        busy = True
                        n = src.seq_next - before
                        sc = self.stats.source(src.name)
                        sc.lines_read += n
                        sc.bytes_read += sum(map(len, lines))
                        sc.last_read_at = wall
                        if bucket is not None:
                            bucket.take(n, now)
                        self._batcher.add(src.name, src.dataset, lines, src.position(), now)
                    elif src.files and any(f.splitter and f.splitter.pending_bytes for f in src.files):
                        pass
                busy |= self.inputs.drain(inbox, wall, self._batcher)
            self._batcher.flush_lingering(now)
            spool.maybe_sync()
            self.stats.spool_bytes = spool.pending_bytes
            self.stats.spool_corrupt = spool.corrupt
            self.stats.dropped = sum(lst.dropped for lst in self.listeners)
            if now >= next_checkpoint:
                self._save_checkpoints()
                next_checkpoint = now + CHECKPOINT_EVERY_S
            if now >= next_status:
                self._write_status(spool)
                if self.inputs.unbound and now >= next_bind_retry:
                    self.inputs.retry_unbound()
                    next_bind_retry = now + LISTENER_RETRY_S
                next_status = now + STATUS_EVERY_S
            if not busy:
                stop.wait(min(c.poll_interval_s, c.batch.linger_s))

    def _bucket(self, source: str) -> TokenBucket | None:
        rate = self.config.flood.rate_lines_per_s
        if rate <= 0:
            return None
        b = self._buckets.get(source)
        if b is None:
            b = self._buckets[source] = TokenBucket(rate, self.config.flood.burst_lines or rate)
        return b

    # --- state ---------------------------------------------------------------------------------------
    def _load_checkpoints(self) -> dict[str, dict[str, Any]]:
        path = self.state_dir / "checkpoints.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("checkpoints.unreadable path=%s error=%s (spooled positions still apply)", path, exc)
            return {}
        return data if isinstance(data, dict) else {}

    def _save_checkpoints(self) -> None:
        write_json_atomic(
            self.state_dir / "checkpoints.json", self._batcher.spooled_positions(), self.config.spool.fsync != "never"
        )

    # --- inputs and outputs -------------------------------------------------------------------------
    def _report_files(self, file_inputs: list[FileInput], sources: list[FileSource]) -> None:
        health = self.stats.health
        for src in sources:
            health.set_input(src.name, src.state, src.detail)
        for fi in file_inputs:
            for pattern in fi.cfg.paths:
                if pattern in fi.unmatched:
                    self.stats.source(pattern)
                    health.set_input(pattern, *fi.unmatched[pattern])
                elif pattern in health.inputs and pattern not in fi.sources:
                    health.set_input(pattern, OK)
                    health.forget(pattern)
                    with self.stats.lock:
                        self.stats.sources.pop(pattern, None)

    def _write_status(self, spool: Spool, running: bool = True) -> None:
        doc = status_document(
            self.stats,
            self.identity.agency_id,
            self.identity.agent_id,
            self.host,
            __version__,
            spool.pending_bytes,
            running=running,
        )
        try:
            write_json_atomic(self.state_dir / STATUS_FILE, doc, False)
        except OSError as exc:
            log.warning("status.write_failed error=%s", exc)

    def _kafka_kwargs(self) -> dict[str, Any]:
        from collectors.config import check_kafka_transport, effective_kafka

        merged = effective_kafka(self.config.kafka, self.identity.kafka, self.env)
        check_kafka_transport(merged, self.config.allow_plaintext_remote)
        return merged.client_kwargs()

    def _heartbeats(self, shipper: Shipper, stop: threading.Event) -> None:
        from kafka.errors import KafkaError

        c = self.config
        config_hash = c.config_hash()
        shipper.ready.wait()
        while not stop.is_set():
            hb = build_heartbeat(
                self.stats,
                self.identity.agency_id,
                self.identity.agent_id,
                self.host,
                __version__,
                config_hash,
                self.identity.secret,
                time.time(),
                self.counter.next(),
            )
            try:
                shipper.producer.send(
                    c.heartbeat_topic,
                    value=hb.to_bytes(),
                    key=f"{self.identity.agency_id}|{self.identity.agent_id}".encode(),
                )
                self.stats.heartbeats_sent += 1
            except (KafkaError, AttributeError) as exc:
                log.warning("heartbeat.send_failed error=%s", type(exc).__name__)
            stop.wait(c.heartbeat_interval_s)
