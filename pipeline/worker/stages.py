"""The worker's two stage processors: a batch of records in, what to write out. No Kafka, no Elasticsearch.

    Stage1.process(records) -> StageResult(plan, forwards, quarantined)   raw topic
    Stage2.process(records) -> StageResult(plan, dead_letters)            correlation topic

Stage 1 verifies and deduplicates raw records (`Intake`), normalises their lines, matches single-event
rules, feeds anomaly models, and forwards the events correlation rules need as `Forward`s (keyed by
the correlation's group-by values, for the correlation topic). Stage 2 keeps one correlation engine
and suppressor per correlation-topic partition. Both decide suppression (`alerting.plan_alerts`) and
return an `AlertPlan`: which alerts to create and which open alerts only count repeats.

The runner (`pipeline.worker.runner`) moves records between Kafka and these processors, hands plans
to the sink (`pipeline.worker.sink`) and commits; tests drive the processors in memory
(tests/unit/test_worker_stages.py). Clocks are injected: `wall` for event stamps, `monotonic` for
idle timers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from collectors import wire
from detectors.anomaly.finding import AnomalyFinding
from detectors.common.times import to_epoch
from detectors.finding import Event
from detectors.normalise import Normaliser
from detectors.normalise.normaliser import is_path
from detectors.sigma import CorrelationInput, Engine, Suppressor
from detectors.sigma.detection import Detection
from pipeline.worker.alerting import AlertPlan, Candidate, EpisodeSettings, plan_alerts
from pipeline.worker.intake import Accepted, Intake, sequence_anomaly_event
from pipeline.worker.models import ModelSet
from pipeline.worker.state import PartitionState
from pipeline.worker_metrics import EventTally, WorkerMetrics

log = logging.getLogger("socpipe.detector")


class Record(Protocol):
    """The fields of a Kafka record a stage reads (kafka-python's ConsumerRecord has them)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]] | None: ...


@dataclass(slots=True)
class Forward:
    """A correlation input for the correlation topic."""

    key: bytes
    value: bytes


@dataclass(slots=True)
class Rejected:
    """A raw record that failed verification: goes to the quarantine topic as it came, with why."""

    record: Record
    reason: str
    where: str


@dataclass(slots=True)
class DeadLetter:
    payload: bytes
    reason: str


@dataclass(slots=True)
class StageResult:
    plan: AlertPlan = field(default_factory=AlertPlan)
    forwards: list[Forward] = field(default_factory=list)
    quarantined: list[Rejected] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)  # normalised events, when the worker indexes them
    records: int = 0
    lines: int = 0
    # stage 1: records and verified lines per raw partition (what the load assignor weighs partitions by)
    by_partition: dict[int, list[int]] = field(default_factory=dict)


def new_suppressor(window_s: float, max_keys: int) -> Suppressor | None:
    return Suppressor(window=window_s, max_keys=max_keys) if window_s > 0 else None


class Detected:
    """Counts detections and findings as they become candidates (shared by both stages)."""

    def __init__(self, metrics: WorkerMetrics) -> None:
        self.metrics = metrics
        self.count = 0

    def detection(self, det: Detection, rec: Record | None = None) -> Candidate:
        """`rec`: the record whose processing made it (episode merges skip a replayed record's)."""
        self.metrics.detection(det.rule_id, det.kind).inc()
        self.count += 1
        return Candidate.of(det, f"{rec.topic}/{rec.partition}", rec.offset) if rec is not None else Candidate.of(det)

    def findings(self, findings: Iterable[AnomalyFinding]) -> list[Candidate]:
        out = []
        for f in findings:
            self.metrics.anomaly_finding(f.model, bool(f.shadow)).inc()
            if f.shadow:  # shadow models report; they never alert
                log.info("anomaly.shadow_finding model=%s entity=%s score=%.3f", f.model, f.entity, f.score)
                continue
            out.append(Candidate.of(f))
        return out


class InputIds:
    """Correlation input ids of one raw record's events, from stage 1's own dedup identity, never
    from the log's content: a redelivered record gives the same ids (stage 2 counts them once), two
    lines of identical text different ones.

    `agent|source|seq` from the verified batch (the line's seq as the agent numbered it; an auditd
    event takes its lead record's); an event without a seq, of another source (an auditd event
    the assembler completed late) or the sequence-anomaly report: `topic/partition@offset:n`, its
    place among the record's events with inputs. Idle flushes (no record): `agent|path|seq` for
    file sources, else no id (never deduplicated)."""

    __slots__ = ("rec", "agent", "source", "used")

    def __init__(self, rec: Record | None, agent: str | None, source: str | None) -> None:
        self.rec, self.agent, self.source = rec, agent, source
        self.used: dict[str, int] = {}

    def of(self, event: Event, anomaly: bool = False) -> str:
        seq = event.get("socpipe.seq")
        path = event.get("log.file.path")
        base = ""
        if not anomaly and type(seq) is int and seq > 0 and event.get("agent.id") is not None:
            if self.rec is None:
                if isinstance(path, str) and is_path(path):
                    base = f"{event['agent.id']}|{path}|{seq}"
            elif event["agent.id"] == self.agent and path in (None, self.source):
                base = f"{self.agent}|{self.source}|{seq}"
        if not base:
            if self.rec is None:
                return ""
            base = f"{self.rec.topic}/{self.rec.partition}@{self.rec.offset}:"
        n = self.used.get(base, 0)
        self.used[base] = n + 1
        if base[-1] == ":":
            return f"{base}{n}"
        return f"{base}#{n}" if n else base


class Stage1:
    """Raw records -> verified, deduplicated, normalised events -> rules and models -> plan + forwards."""

    def __init__(
        self,
        engine: Engine,
        normaliser: Normaliser,
        intake: Intake,
        models: ModelSet,
        suppressor: Suppressor | None,
        metrics: WorkerMetrics,
        detected: Detected,
        *,
        anomaly_lateness_s: float = 30.0,
        anomaly_idle_flush_s: float = 60.0,
        idle_flush_s: float = 1.0,
        keep_events: bool = False,
        episodes: EpisodeSettings | None = None,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.episodes = episodes
        self.engine = engine
        self.normaliser = normaliser
        self.keep_events = keep_events  # es.index_events: hand every normalised event to the runner
        self.intake = intake
        self.models = models
        self.suppressor = suppressor
        self.metrics = metrics
        self.detected = detected
        self.tally = EventTally()
        self.anomaly_lateness_s = anomaly_lateness_s
        self.anomaly_idle_flush_s = anomaly_idle_flush_s
        self.idle_flush_s = idle_flush_s
        self.wall, self.monotonic = wall, monotonic
        self.max_event_ts = 0.0  # event-time high-water mark (anomaly windows close behind it)
        self.last_records = monotonic()
        self.flushed_idle = True
        self.lines_per_record = 1.0  # moving average: the runner sizes polls by it
        self.enriched_seen = 0  # the normaliser's count of process-context fills already in the metrics

    def process(self, records: Iterable[Record]) -> StageResult:
        """One polled batch (any partitions): everything it makes, nothing written yet."""
        out = StageResult()
        self.last_records, self.flushed_idle = self.monotonic(), False
        candidates: list[Candidate] = []
        by_partition = out.by_partition
        for rec in records:
            out.records += 1
            tally = by_partition.get(rec.partition)
            if tally is None:
                tally = by_partition[rec.partition] = [0, 0]
            tally[0] += 1
            got = self._accept(rec, out)
            if got is None:
                continue
            out.lines += got.lines_in
            tally[1] += got.lines_in
            origin = InputIds(rec, got.batch.agent_id, got.batch.source)
            if got.far_ahead:  # reported as an event of the agency: a rule makes it an alert
                self._match(sequence_anomaly_event(got, self.wall()), candidates, out, origin, anomaly=True)
            for event in self.normaliser.normalise_batch(got.batch):
                self._match(event, candidates, out, origin)
        self.metrics.lines.inc(out.lines)
        self.tally.flush_to(self.metrics)
        processes = self.normaliser.processes
        if processes.filled != self.enriched_seen:
            self.metrics.events_enriched.inc(processes.filled - self.enriched_seen)
            self.enriched_seen = processes.filled
        self.metrics.windows_processes.set(len(processes))
        if out.records:
            self.lines_per_record = 0.7 * self.lines_per_record + 0.3 * (out.lines / out.records)
        candidates += self._advance_models(self.max_event_ts - self.anomaly_lateness_s)
        out.plan = plan_alerts(self.suppressor, candidates, self.episodes)
        return out

    def idle(self) -> StageResult:
        """No records this poll: complete pending auditd records and close anomaly windows, on idle timers."""
        out = StageResult()
        idle = self.monotonic() - self.last_records
        candidates: list[Candidate] = []
        if not self.flushed_idle and idle >= self.idle_flush_s:
            self.flushed_idle = True
            flushed = InputIds(None, None, None)
            for event in self.normaliser.flush():
                self._match(event, candidates, out, flushed)
        if self.models and idle >= self.anomaly_idle_flush_s:
            candidates += self._advance_models(float("inf"))
        self.tally.flush_to(self.metrics)
        out.plan = plan_alerts(self.suppressor, candidates, self.episodes)
        return out

    def shift_idle(self, blocked_s: float) -> None:
        """Time the runner spent blocked (Elasticsearch down) is not time without records."""
        self.last_records += blocked_s

    def _accept(self, rec: Record, out: StageResult) -> Accepted | None:
        got = self.intake.accept(rec.partition, rec.key, rec.headers, rec.value)
        if isinstance(got, str):  # forged, revoked, tampered or unreadable: never reaches detection
            out.quarantined.append(Rejected(rec, got, f"{rec.topic}/{rec.partition}@{rec.offset}"))
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

    def _match(
        self, event: Event, candidates: list[Candidate], out: StageResult, origin: InputIds, anomaly: bool = False
    ) -> None:
        """Rules and models on one event."""
        self.tally.add(event)
        if self.keep_events:
            out.events.append(event)
        result = self.engine.match(event)
        if result.inputs:
            ident = origin.of(event, anomaly)
            for item in result.inputs:
                item.id = ident
        for item in result.inputs:
            out.forwards.append(Forward(item.partition_key.encode(), wire.encode(item.to_dict())))
        candidates.extend(self.detected.detection(d, origin.rec) for d in result.detections)
        if self.models:
            ts = to_epoch(event.get("@timestamp"))
            if ts is not None and ts > self.max_event_ts:
                self.max_event_ts = ts
            try:
                candidates.extend(self.detected.findings(self.models.scorer.process(event)))
            except Exception as exc:  # a model must never stop the stream; the rules keep working
                self.metrics.model_failures.inc()
                log.error("anomaly.process_failed error=%r event_dataset=%s", exc, event.get("event.dataset"))

    def _advance_models(self, watermark: float) -> list[Candidate]:
        if not self.models or watermark <= 0:
            return []
        return self.detected.findings(self.models.scorer.advance(watermark))


class Stage2:
    """Correlation inputs -> per-partition correlation engines (event-time windows) -> plan."""

    def __init__(
        self,
        new_engine: Callable[[], Engine],
        new_suppressor: Callable[[], Suppressor | None],
        detected: Detected,
        *,
        idle_advance_s: float = 5.0,
        episodes: EpisodeSettings | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.episodes = episodes
        self.new_engine = new_engine
        self.new_suppressor = new_suppressor
        self.detected = detected
        self.idle_advance_s = idle_advance_s
        self.monotonic = monotonic
        self.partitions: dict[int, PartitionState] = {}

    def assign(self, partition: int, snapshot: Mapping[str, Any] | None = None) -> int | None:
        """Start a partition (from its snapshot if any); the offset to resume from, None for none."""
        state = PartitionState(self.new_engine(), self.new_suppressor(), last_event_wall=self.monotonic())
        self.partitions[partition] = state
        return state.restore(dict(snapshot)) if snapshot is not None else None

    def shift_idle(self, blocked_s: float) -> None:
        """Time the runner spent blocked (Elasticsearch down) is not idleness: watermarks must not
        advance by it, or the events queued meanwhile would arrive late and miss their windows."""
        for state in self.partitions.values():
            state.last_event_wall += blocked_s

    def revoke(self, partition: int) -> None:
        self.partitions.pop(partition, None)

    def detach(self, partition: int) -> PartitionState | None:
        """A partition's state taken out (kept aside through a rebalance: pipeline.worker.handover)."""
        return self.partitions.pop(partition, None)

    def attach(self, partition: int, state: PartitionState) -> None:
        """A partition's state back; the rebalance's pause is not idleness (as after a restore)."""
        state.last_event_wall = self.monotonic()
        self.partitions[partition] = state

    def snapshot(self, partition: int, offset: int) -> bytes | None:
        state = self.partitions.get(partition)
        return state.snapshot(offset) if state is not None else None

    def process(self, records: Mapping[int, Sequence[Record]]) -> StageResult:
        """Records by partition (each partition must be assigned); then every partition's watermark advances."""
        out = StageResult()
        now = self.monotonic()
        found: dict[int, list[Candidate]] = {}
        for partition, recs in records.items():
            state = self.partitions[partition]
            mine = found.setdefault(partition, [])
            out.records += len(recs)
            stats = state.engine.state.stats
            dup_before = stats["duplicate_inputs"]
            for rec in recs:
                try:
                    item = CorrelationInput.from_dict(wire.decode(rec.value or b""))
                except Exception as exc:
                    out.dead_letters.append(
                        DeadLetter(
                            rec.value or b"", f"undecodable correlation input at {partition}@{rec.offset}: {exc}"
                        )
                    )
                    continue
                mine.extend(self.detected.detection(d, rec) for d in state.engine.correlate(item))
                state.max_event_ts = max(state.max_event_ts, item.ts)
                state.last_event_wall = now
            if stats["duplicate_inputs"] > dup_before:  # redelivered inputs, counted once
                self.detected.metrics.correlation_duplicate_inputs.inc(stats["duplicate_inputs"] - dup_before)
        # Event-time watermark per partition; an idle partition advances by wall clock so a window
        # whose last event has been seen still closes.
        for partition, state in self.partitions.items():
            idle = now - state.last_event_wall
            watermark = state.max_event_ts + (idle if idle >= self.idle_advance_s else 0.0)
            if watermark > 0:
                closed = state.engine.advance(watermark)
                if closed:
                    found.setdefault(partition, []).extend(self.detected.detection(d) for d in closed)
        for partition, candidates in found.items():  # a dedup key's correlations meet in one partition
            state_or_none = self.partitions.get(partition)
            out.plan.extend(plan_alerts(state_or_none.suppressor if state_or_none else None, candidates, self.episodes))
        return out
