"""The agent's counters, and the two views of them: heartbeats (to the SOC) and Prometheus (local).

Counters are plain ints bumped by the owning thread; readers tolerate a slightly stale value. The
Prometheus collector reads them at scrape time, so the hot path pays nothing for metrics.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from collectors.health import Health
from collectors.wire import Heartbeat, SourceStatus, sign_heartbeat


@dataclass
class SourceCounters:
    lines_read: int = 0
    bytes_read: int = 0
    lines_shipped: int = 0
    overflow: int = 0  # lines over the source's rate limit (still spooled, never dropped silently)
    last_read_at: float = 0.0
    lag_bytes: int = 0


@dataclass
class AgentStats:
    started_at: float = field(default_factory=time.time)
    sources: dict[str, SourceCounters] = field(default_factory=dict)
    dropped: int = 0  # UDP datagrams that found the spool full
    send_errors: int = 0
    records_shipped: int = 0
    last_ack_at: float = 0.0
    spool_bytes: int = 0
    spool_corrupt: int = 0
    heartbeats_sent: int = 0
    last_ack_source: str = ""  # the last batch Kafka acknowledged: its source and line count
    last_ack_lines: int = 0
    health: Health = field(default_factory=Health)  # input and Kafka connection states (loud failures)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def source(self, name: str) -> SourceCounters:
        s = self.sources.get(name)
        if s is None:
            with self.lock:
                s = self.sources.setdefault(name, SourceCounters())
        return s


def build_heartbeat(
    stats: AgentStats,
    agency_id: str,
    agent_id: str,
    host: str,
    version: str,
    config_hash: str,
    secret: str,
    now: float,
    counter: int,
) -> Heartbeat:
    sources = {
        name: SourceStatus(
            last_read_at=c.last_read_at, lag_bytes=c.lag_bytes, lines_read=c.lines_read, lines_shipped=c.lines_shipped
        )
        for name, c in list(stats.sources.items())
    }
    for name, st in list(stats.health.inputs.items()):  # every input's state, also those never read
        s = sources.setdefault(name, SourceStatus())
        s.state, s.reason = st.state, st.reason
    hb = Heartbeat(
        agency_id=agency_id,
        agent_id=agent_id,
        host=host,
        version=version,
        sent_at=now,
        started_at=stats.started_at,
        sources=sources,
        spool_bytes=stats.spool_bytes,
        dropped=stats.dropped,
        corrupt=stats.spool_corrupt,
        config_hash=config_hash,
        counter=counter,
    )
    if stats.health.kafka_reason:
        hb.kafka_state, hb.kafka_reason = stats.health.kafka_state, stats.health.kafka_reason
    hb.signature = sign_heartbeat(hb, secret)
    return hb


def start_metrics_server(stats: AgentStats, host: str, port: int) -> Any:
    """Expose the counters on http://host:port/metrics (prometheus_client imported only when on)."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    class Collector:
        def collect(self) -> Any:
            per_source = [
                ("socpipe_agent_lines_read", "Lines read per source", "lines_read", CounterMetricFamily),
                ("socpipe_agent_bytes_read", "Bytes read per source", "bytes_read", CounterMetricFamily),
                (
                    "socpipe_agent_lines_shipped",
                    "Lines acknowledged by Kafka per source",
                    "lines_shipped",
                    CounterMetricFamily,
                ),
                ("socpipe_agent_overflow_lines", "Lines over the source's rate limit", "overflow", CounterMetricFamily),
                (
                    "socpipe_agent_source_lag_bytes",
                    "Bytes written to a file but not read yet",
                    "lag_bytes",
                    GaugeMetricFamily,
                ),
                (
                    "socpipe_agent_source_last_read_timestamp_seconds",
                    "Unix time a line was last read",
                    "last_read_at",
                    GaugeMetricFamily,
                ),
            ]
            items = list(stats.sources.items())
            for name, doc, attr, kind in per_source:
                m = kind(name, doc, labels=["source"])
                for src, c in items:
                    m.add_metric([src], getattr(c, attr))
                yield m
            yield GaugeMetricFamily(
                "socpipe_agent_spool_bytes", "Bytes in the spool not acked by Kafka", value=stats.spool_bytes
            )
            yield CounterMetricFamily(
                "socpipe_agent_spool_corrupt_records", "Spool records skipped as corrupt", value=stats.spool_corrupt
            )
            yield CounterMetricFamily("socpipe_agent_dropped", "UDP messages dropped (spool full)", value=stats.dropped)
            yield CounterMetricFamily(
                "socpipe_agent_send_errors", "Kafka send failures (records are retried)", value=stats.send_errors
            )
            yield GaugeMetricFamily(
                "socpipe_agent_last_ack_timestamp_seconds", "Unix time of the last Kafka ack", value=stats.last_ack_at
            )
            yield GaugeMetricFamily(
                "socpipe_agent_start_time_seconds", "Unix time the agent started", value=stats.started_at
            )

    registry = CollectorRegistry()
    registry.register(Collector())
    return start_http_server(port, addr=host, registry=registry)
