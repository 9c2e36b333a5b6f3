"""The detector worker's own Prometheus metrics (cardinality bounded: datasets and rules are finite)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.lines = Counter("socpipe_detector_lines", "Raw log lines consumed from Kafka", registry=r)
        self.events = Counter("socpipe_detector_events", "Normalised events by dataset", ["dataset"], registry=r)
        self.parse_failures = Counter("socpipe_detector_parse_failures", "Lines no parser understood (kept, tagged)", registry=r)
        self.detections = Counter("socpipe_detector_detections", "Rule and model detections", ["rule", "kind"], registry=r)
        self.alerts_indexed = Counter("socpipe_detector_alerts_indexed", "Alert documents created in Elasticsearch", registry=r)
        self.alerts_duplicate = Counter("socpipe_detector_alerts_duplicate", "Alerts already present (replays)", registry=r)
        self.index_retries = Counter("socpipe_detector_index_retries", "Bulk retries while Elasticsearch refused", registry=r)
        self.dead_letters = Counter("socpipe_detector_dead_letters", "Records and alerts sent to the dead-letter topic", registry=r)
        self.commit_failures = Counter("socpipe_detector_commit_failures", "Offset commits lost to a rebalance", registry=r)
        self.paused = Gauge("socpipe_detector_paused", "1 while consumption is paused for Elasticsearch", registry=r)
        self.rules_loaded = Gauge("socpipe_detector_rules_loaded", "Rules loaded by this worker", registry=r)
        self.batch_seconds = Histogram("socpipe_detector_batch_seconds", "Time to process one polled batch",
                                       ["stage"], registry=r, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))

    def count_event(self, event: dict) -> None:
        self.events.labels(dataset=event.get("event.dataset") or "unknown").inc()
        if "_socpipe_parse_failure" in (event.get("tags") or ()):
            self.parse_failures.inc()
