"""The streaming engine: logsource routing, candidate index, single matches, correlations."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any

from collectors.lazy import LazyLogger
from detectors.common.times import to_epoch
from detectors.sigma import ruledocs
from detectors.sigma.correlation import CorrelationState
from detectors.sigma.detection import EVIDENCE_CAP, Deferred, Detection, make_detection
from detectors.sigma.fields import to_number
from detectors.sigma.index import CandidateIndex
from detectors.sigma.mapping import EventLogsource, FieldMappings, derivation_key, load_mappings
from detectors.sigma.model import CorrelationRule, SigmaRule
from detectors.sigma.partition import CorrelationInput, chain_routes, correlation_inputs, encode_key, hashable

log = LazyLogger(__name__)  # logging imported at the first message (a rule error)
SNAPSHOT_VERSION = 1
DEFAULT_SINGLE_GROUP = ("organization.id", "host.name", "source.ip")
UNREAD: Any = object()  # `ts` not given: the engine reads @timestamp itself
IDENTITY_FIELDS = (
    "organization.id",
    "host.name",
    "log.file.path",
    "log.file.line",
    "@timestamp",
    "event.original",
    "message",
)


@dataclass
class MatchResult:
    detections: list[Any] = field(default_factory=list)  # single-event detections to emit
    inputs: list[Any] = field(default_factory=list)  # CorrelationInput, one per partition key


@dataclass
class _Bucket:
    rules: list[Any]
    index: CandidateIndex


class Engine:
    def __init__(
        self,
        rules: list[Any],
        mappings: FieldMappings | None = None,
        allowed_lateness: float = 60.0,
        evidence_cap: int = EVIDENCE_CAP,
        single_group_fields: tuple[Any, ...] = DEFAULT_SINGLE_GROUP,
    ):
        self.mappings = mappings if mappings is not None else load_mappings()
        self.single = [r for r in rules if isinstance(r, SigmaRule)]
        self.correlations = [r for r in rules if isinstance(r, CorrelationRule)]
        self.by_id = {r.id: r for r in rules}
        self.evidence_cap = evidence_cap
        self.single_group_fields = single_group_fields
        self.state = CorrelationState(self.correlations, allowed_lateness)
        self.stats = {
            "events": 0,
            "candidates": 0,
            "evaluated": 0,
            "rule_errors": 0,
            "no_timestamp": 0,
            "missing_group": 0,
        }
        self._buckets: dict[EventLogsource, _Bucket] = {}
        self._bucket_by_key: dict[Any, _Bucket] = {}  # derivation key -> _Bucket (skips derive + hashing)
        self._rule_errors_logged: set[Any] = set()
        # parents[x]: correlations referring to rule x
        self.parents: dict[Any, Any] = {}
        for c in self.correlations:
            for ref in c.rules:
                self.parents.setdefault(ref, []).append(c)
        self.emit_standalone = {
            r.id for r in rules if r.id not in self.parents or any(p.generate for p in self.parents[r.id])
        }
        self._routes = {
            r.id: chain_routes(r.id, self.parents, self.emit_standalone, self.by_id)
            for r in self.single
            if r.id in self.parents
        }
        # (correlation id, input rule id) -> the event fields of its group-by and value fields
        self._feed_fields: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {}

    # --- routing ---------------------------------------------------------------------------
    def _bucket(self, event: dict[str, Any]) -> _Bucket:
        key: tuple[Any, ...] | None = derivation_key(event)
        try:
            b = self._bucket_by_key.get(key)
        except TypeError:  # unhashable values in an odd event
            key, b = None, None
        if b is not None:
            return b
        ls = self.mappings.derive(event)
        b = self._buckets.get(ls)
        if b is None:
            rules = [r for r in self.single if ls.admits(r.logsource)]
            b = self._buckets[ls] = _Bucket(rules, CandidateIndex.build([r.clauses for r in rules]))
            # reading `need` worked out regex literals the load left for later (typed._RegexTest):
            # kept for the next start (a no-op when nothing new was worked out)
            ruledocs.document_cache().save()
        if key is not None and len(self._bucket_by_key) < 10000:
            self._bucket_by_key[key] = b
        return b

    def candidates(self, event: dict[str, Any]) -> list[Any]:
        b = self._bucket(event)
        return [b.rules[i] for i in b.index.candidates(event)]

    def matching_rules(self, event: dict[str, Any]) -> list[Any]:
        b = self._bucket(event)
        positions = b.index.candidates(event)
        if not positions:
            return []
        out = []
        self.stats["evaluated"] += len(positions)
        for pos in positions:
            rule = b.rules[pos]
            try:
                if rule.match(event):
                    out.append(rule)
            except Exception as exc:  # noqa: BLE001 - one odd event never stops the worker
                self.stats["rule_errors"] += 1
                if rule.id not in self._rule_errors_logged:
                    self._rule_errors_logged.add(rule.id)
                    log.warning("event=rule_error rule=%s error=%r", rule.id, exc)
        return out

    # --- partitioning (detectors/sigma/partition.py) ------------------------------------------
    def correlation_keys(self, event: dict[str, Any]) -> list[Any]:
        """Partition keys under which this event must reach the correlation workers."""
        ts = to_epoch(event.get("@timestamp"))
        if ts is None:
            return []
        return [i.partition_key for i in correlation_inputs(self._routes, event, self.matching_rules(event), ts)]

    # --- processing --------------------------------------------------------------------------
    def match(self, event: dict[str, Any], ts: Any = UNREAD, input_id: str = "") -> MatchResult:
        """Stage 1 (any worker): single-event detections + correlation inputs to route.

        `ts`: the event's time as epoch seconds (None: none) when the caller has read it already.
        `input_id`: the event's identity in stage 1 (never its content), set on every input: stage 2
        counts an input with an id it has seen once (a redelivery), "" never deduplicated."""
        detections, inputs = self._match(event, ts, input_id)
        return MatchResult(detections, inputs)

    def _match(self, event: dict[str, Any], ts: Any, input_id: str = "") -> tuple[list[Any], list[Any]]:
        self.stats["events"] += 1
        matched = self.matching_rules(event)
        if not matched:
            return [], []
        if ts is UNREAD:
            ts = to_epoch(event.get("@timestamp"))
        detections = [self._single(rule, event, ts) for rule in matched if rule.id in self.emit_standalone]
        if ts is None:
            if any(r.id in self._routes for r in matched):
                self.stats["no_timestamp"] += 1
            return detections, []
        return detections, correlation_inputs(self._routes, event, matched, ts, input_id)

    def correlate(self, item: CorrelationInput) -> list[Any]:
        """Stage 2 (the worker owning item.partition_key): feed correlation windows."""
        roots = set(item.roots)
        fed: set[Any] = set()
        out: list[Any] = []
        several = len(item.rules) > 1
        for rid in item.rules:
            rule = self.by_id.get(rid)
            if rule is None:
                continue
            # the event's identity per input rule: an event of two input rules counts for both
            ident = f"{item.id}|{rid}" if several and item.id else item.id
            for corr in self.parents.get(rid, ()):
                key = (corr.meta.id, rid)
                if key in fed or not (key[0] in roots or self._serves(corr, roots)):
                    continue
                fed.add(key)
                out.extend(self._feed(corr, rid, rule.meta.name, item.ts, item.event, [item.event], ident))
        return out

    def _serves(self, corr: CorrelationRule, roots: set[Any]) -> bool:
        if corr.id in roots:
            return True
        return any(self._serves(p, roots) for p in self.parents.get(corr.id, []))

    def process(self, event: dict[str, Any], ts: Any = UNREAD, input_id: str = "") -> list[Any]:
        """Single-worker mode: match and correlate locally (`ts`, `input_id` as in `match`)."""
        out, inputs = self._match(event, ts, input_id)
        for item in inputs:
            out.extend(self.correlate(item))
        return out

    def advance(self, watermark: float) -> list[Any]:
        """Close windows whose end is before watermark - allowed lateness."""
        out: list[Any] = []
        for fired in self.state.advance(float(watermark)):
            out.extend(self._fired(fired))
        return out

    def _feed(
        self,
        corr: Any,
        input_id: Any,
        input_name: Any,
        ts: Any,
        source: dict[str, Any],
        evidence: list[Any],
        ident: str = "",
    ) -> list[Any]:
        fields = self._feed_fields.get((corr.id, input_id))
        if fields is None:  # where this input keeps each group-by and value field (aliases resolved)
            fields = self._feed_fields[(corr.id, input_id)] = (
                tuple(corr.group_field(n, input_id, input_name) for n in corr.group_by),
                tuple(corr.group_field(f, input_id, input_name) for f in corr.value_fields),
            )
        group_fields, value_fields = fields
        get = source.get
        values = []
        for f in group_fields:
            v = get(f)
            if v is None:
                self.stats["missing_group"] += 1
                return []
            values.append(v if type(v) is str else hashable(v))
        value = None
        if value_fields:
            vals = [get(f) for f in value_fields]
            value = hashable(vals[0]) if len(vals) == 1 else tuple(hashable(v) for v in vals)
            if corr.type in ("value_sum", "value_avg"):
                value = to_number(value)
        agency = source.get("organization.id")
        out: list[Any] = []
        for fired in self.state.add(corr, tuple(values), ts, input_id, value, agency, evidence, ident):
            out.extend(self._fired(fired))
        return out

    def _fired(self, fired: Any) -> list[Any]:
        corr = fired.rule
        group = dict(zip(corr.group_by, fired.group))
        if fired.continuation:  # one more event of a fired episode: to the alert layer only
            if corr.id not in self.emit_standalone:
                return []
            entry = fired.entries[0]
            evidence = list(entry.evidence[: self.evidence_cap])
            return [
                make_detection(
                    corr.meta,
                    corr.type,
                    group,
                    [entry.ts],
                    evidence,
                    1,
                    entry.ts,
                    identity=Deferred("continuation", evidence),
                    agencies=[entry.agency],
                    continuation=True,
                )
            ]
        evidence = []
        for e in fired.entries:
            for ev in e.evidence:
                if len(evidence) < self.evidence_cap:
                    evidence.append(ev)
        times = [e.ts for e in fired.entries]
        det = make_detection(
            corr.meta,
            corr.type,
            group,
            times,
            evidence,
            len(fired.entries),
            fired.anchor,
            fired.metric,
            agencies=[e.agency for e in fired.entries],
        )
        out = [det] if corr.id in self.emit_standalone else []
        parents = self.parents.get(corr.id)
        if not parents:
            return out
        source = dict(group)
        source["organization.id"] = det.agencies[0] if len(det.agencies) == 1 else None
        # the fired window's identity: the same window fired again (its inputs redelivered to a
        # state that lost them) is one input of the parent, not two
        ident = f"corr:{corr.id}|{encode_key(list(map(str, fired.group)))}|{fired.anchor!r}"
        for parent in parents:
            # an inner correlation's result is an input event of its parents, at its end time
            out.extend(self._feed(parent, corr.id, corr.meta.name, det.end_ts, source, det.evidence, ident))
        return out

    def _single(self, rule: SigmaRule, event: dict[str, Any], ts: float | None) -> Detection:
        group = {f: hashable(event[f]) for f in self.single_group_fields if event.get(f) is not None}
        identity = Deferred([event.get(f) for f in IDENTITY_FIELDS])
        t = ts if ts is not None else 0.0
        return make_detection(rule.meta, "single", group, [t], [event], 1, t, identity=identity)

    # --- snapshot ----------------------------------------------------------------------------
    def snapshot(self) -> bytes:
        data = {"version": SNAPSHOT_VERSION, "state": self.state.to_data()}
        return zlib.compress(json.dumps(data, separators=(",", ":"), default=str).encode())

    def restore(self, blob: bytes) -> None:
        data = json.loads(zlib.decompress(blob).decode())
        if data.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"snapshot version {data.get('version')} != {SNAPSHOT_VERSION}")
        self.state.load_data(data["state"])
