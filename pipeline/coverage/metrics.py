"""Prometheus exposition of coverage, rendered from the latest snapshot at scrape time.

Cardinality is bounded by the inventory (agencies x expected sources), the tier list, a capped set
of datasets per agency and a capped set of agent versions; never by IPs, hosts or raw source paths.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pipeline.coverage.inventory import TIERS
from pipeline.coverage.state import MONITORED, STATES, Snapshot

MAX_DATASETS_PER_AGENCY = 16
MAX_VERSIONS = 32
OTHER = "other"


class TrafficCounters:
    """Monotonic counters fed by the consumer thread, read at scrape time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.heartbeats_accepted = 0
        self.heartbeats_rejected: Counter[str] = Counter()
        self.records_rejected: Counter[str] = Counter()
        self.lines: Counter[tuple[str, str]] = Counter()  # (agency, dataset) -> lines
        self.records: Counter[tuple[str, str]] = Counter()
        self._datasets: dict[str, set[str]] = {}

    def count_events(self, agency_id: str, dataset: str, lines: int) -> None:
        with self._lock:
            known = self._datasets.setdefault(agency_id, set())
            if dataset not in known:
                if len(known) >= MAX_DATASETS_PER_AGENCY:
                    dataset = OTHER
                else:
                    known.add(dataset)
            self.lines[(agency_id, dataset)] += lines
            self.records[(agency_id, dataset)] += 1

    def reject_heartbeat(self, reason: str) -> None:
        with self._lock:
            self.heartbeats_rejected[reason] += 1

    def accept_heartbeat(self) -> None:
        with self._lock:
            self.heartbeats_accepted += 1

    def reject_record(self, reason: str) -> None:
        with self._lock:
            self.records_rejected[reason] += 1


class CoverageCollector(Collector):
    def __init__(
        self,
        snapshot: Callable[[], Snapshot | None],
        counters: TrafficCounters,
        inventory_status: Callable[[], tuple[int, float]],
    ):
        self._snapshot = snapshot
        self._counters = counters
        self._inventory_status = inventory_status

    def collect(self) -> Iterable[Metric]:
        snap = self._snapshot()
        if snap is not None:
            yield from self._coverage(snap)
        yield from self._traffic()
        invalid, loaded_at = self._inventory_status()
        yield GaugeMetricFamily(
            "socpipe_inventory_invalid_entries",
            "Inventory entries rejected at the last load (see the service log, by key)",
            value=invalid,
        )
        yield GaugeMetricFamily(
            "socpipe_inventory_loaded_timestamp_seconds", "When the inventory was last (re)loaded", value=loaded_at
        )

    def _coverage(self, snap: Snapshot) -> Iterable[Metric]:
        counted = snap.counted()
        monitored = sum(a.state == MONITORED for a in counted)
        yield GaugeMetricFamily(
            "socpipe_agencies_total", "Agencies in the inventory that count (not decommissioned)", value=len(counted)
        )
        yield GaugeMetricFamily(
            "socpipe_agencies_monitored",
            "Agencies with an alive agent and every expected source delivering",
            value=monitored,
        )
        yield GaugeMetricFamily(
            "socpipe_coverage_ratio",
            "Monitored / total agencies, all tiers (0 when the inventory is empty)",
            value=snap.ratio(),
        )
        by_tier_total = GaugeMetricFamily(
            "socpipe_tier_agencies_total", "Agencies that count, by tier", labels=["tier"]
        )
        by_tier_mon = GaugeMetricFamily(
            "socpipe_tier_agencies_monitored", "Monitored agencies, by tier", labels=["tier"]
        )
        by_tier_ratio = GaugeMetricFamily("socpipe_tier_coverage_ratio", "Coverage ratio by tier", labels=["tier"])
        by_state = GaugeMetricFamily(
            "socpipe_agencies_by_state", "Agencies in each state, by tier", labels=["tier", "state"]
        )
        for tier in TIERS:
            pool = [a for a in counted if a.tier == tier]
            by_tier_total.add_metric([tier], len(pool))
            by_tier_mon.add_metric([tier], sum(a.state == MONITORED for a in pool))
            by_tier_ratio.add_metric([tier], snap.ratio(tier) if pool else 0.0)
            states = Counter(a.state for a in snap.agencies if a.tier == tier)
            for st in STATES:
                by_state.add_metric([tier, st], states.get(st, 0))
        yield from (by_tier_total, by_tier_mon, by_tier_ratio, by_state)

        agency_state = GaugeMetricFamily(
            "socpipe_agency_state",
            "1 for the agency's current state, 0 for the others",
            labels=["agency", "tier", "state"],
        )
        last_seen = GaugeMetricFamily(
            "socpipe_agency_last_seen_timestamp_seconds",
            "SOC receipt time of the agency's latest verified heartbeat (agencies seen at least once)",
            labels=["agency"],
        )
        expected = GaugeMetricFamily(
            "socpipe_agency_sources_expected", "Expected sources of the agency ('*' counts as one)", labels=["agency"]
        )
        reporting = GaugeMetricFamily(
            "socpipe_agency_sources_reporting", "Expected sources delivering within their threshold", labels=["agency"]
        )
        spool = GaugeMetricFamily(
            "socpipe_agency_spool_bytes", "Bytes spooled on disk by the agency's alive agents", labels=["agency"]
        )
        failing = GaugeMetricFamily(
            "socpipe_agency_inputs_failing",
            "Inputs the agency's alive agents report not ok (missing, permission denied, rotated away, bind failed)",
            labels=["agency"],
        )
        src_last = GaugeMetricFamily(
            "socpipe_source_last_event_timestamp_seconds",
            "SOC receipt time of the latest delivery of an expected source (sources seen at least once)",
            labels=["agency", "source"],
        )
        src_up = GaugeMetricFamily(
            "socpipe_source_delivering",
            "1 when the expected source delivered within its threshold and its agent is alive",
            labels=["agency", "source"],
        )
        versions: Counter[str] = Counter()
        for a in snap.agencies:
            for st in STATES:
                agency_state.add_metric([a.id, a.tier, st], 1.0 if a.state == st else 0.0)
            if a.last_seen is not None:
                last_seen.add_metric([a.id], a.last_seen)
            expected.add_metric([a.id], len(a.sources))
            reporting.add_metric([a.id], sum(s.state == MONITORED for s in a.sources))
            spool.add_metric([a.id], a.spool_bytes)
            failing.add_metric([a.id], a.inputs_failing)
            for src in a.sources:
                if src.last_event is not None:
                    src_last.add_metric([a.id, src.name], src.last_event)
                src_up.add_metric([a.id, src.name], 1.0 if src.state == MONITORED else 0.0)
            versions.update(a.versions)
        yield from (agency_state, last_seen, expected, reporting, spool, failing, src_last, src_up)
        ver = GaugeMetricFamily(
            "socpipe_agent_versions", "Agencies with an alive agent of each version", labels=["version"]
        )
        for i, (v, n) in enumerate(sorted(versions.items(), key=lambda kv: -kv[1])):
            if i >= MAX_VERSIONS:
                break
            ver.add_metric([v or "unknown"], n)
        yield ver
        yield GaugeMetricFamily(
            "socpipe_coverage_evaluated_timestamp_seconds", "When states were last evaluated", value=snap.at
        )

    def _traffic(self) -> Iterable[Metric]:
        c = self._counters
        with c._lock:
            lines = dict(c.lines)
            records = dict(c.records)
            rej_hb = dict(c.heartbeats_rejected)
            rej_rec = dict(c.records_rejected)
            accepted = c.heartbeats_accepted
        ev = CounterMetricFamily(
            "socpipe_events_received",
            "Log lines received on the raw topic, by agency and dataset",
            labels=["agency", "dataset"],
        )
        rc = CounterMetricFamily(
            "socpipe_raw_records_received",
            "Raw records (batches) received, by agency and dataset",
            labels=["agency", "dataset"],
        )
        for (agency, dataset), n in lines.items():
            ev.add_metric([agency, dataset], n)
        for (agency, dataset), n in records.items():
            rc.add_metric([agency, dataset], n)
        hb = CounterMetricFamily("socpipe_heartbeats_accepted", "Heartbeats verified and applied")
        hb.add_metric([], accepted)
        hr = CounterMetricFamily(
            "socpipe_heartbeats_rejected",
            "Heartbeats rejected: bad_signature, unsigned, unknown_agent, revoked_agent, agency_mismatch, malformed",
            labels=["reason"],
        )
        for reason, n in rej_hb.items():
            hr.add_metric([reason], n)
        rr = CounterMetricFamily(
            "socpipe_raw_records_rejected",
            "Raw records not counted: bad_key, unknown_agent, agency_mismatch",
            labels=["reason"],
        )
        for reason, n in rej_rec.items():
            rr.add_metric([reason], n)
        yield from (ev, rc, hb, hr, rr)
