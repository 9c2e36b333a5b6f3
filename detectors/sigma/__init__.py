"""Sigma detection engine: rules as YAML, compiled once, matched on a stream of flat ECS events.

Public API (used by the detector worker)::

    result = load_rules(["rules/"])            # .rules, .errors (file, line, why); never raises
    engine = Engine(result.rules, allowed_lateness=60)
    detections = engine.process(event)          # single matches now, correlations when met
    detections += engine.advance(watermark)     # close event-time windows (lateness applied)
    blob = engine.snapshot(); engine.restore(blob)
    Suppressor(window=3600).offer(detection)    # "new" alert or "update" of an open one

Pipeline per event: derive the event's logsource from its ECS fields (mapping files, cached per
distinct dataset/process) -> the rules of that logsource -> candidate index (exact-value maps,
one Aho-Corasick automaton per field, regex literal prefilters) -> full predicates of the few
candidates. Regexes run on RE2 (linear time); patterns RE2 rejects are load errors.

Multi-worker partitioning (two stages)::

    stage 1, any worker (Kafka partitions by agency/host):
        res = engine.match(event)      # res.detections: single-event alerts, emit them
                                       # res.inputs: CorrelationInput per partition key
        for item in res.inputs: produce(topic="socpipe.correlation-inputs",
                                        key=item.partition_key, value=item.to_dict())
    stage 2, the worker owning that key's Kafka partition:
        detections = engine.correlate(CorrelationInput.from_dict(value))
        detections += engine.advance(watermark)     # snapshot() with each offset commit

The partition key of an input is the values of the correlation's group-by fields (for chained
correlations: the group-by names common to every correlation of the chain), NOT the agency, so
one source address attacking several agencies meets in one worker. Inputs sharing a key are
sent once, listing the root correlations they serve; a key with no group-by is "k:*" (one
partition). `engine.correlation_keys(event)` gives just the keys. Replaying a partition from
the offset committed with a snapshot reproduces the same detections with the same ids.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from collectors.lazy import lazy_exports

if TYPE_CHECKING:
    from detectors.sigma.detection import Detection
    from detectors.sigma.engine import Engine, MatchResult
    from detectors.sigma.loader import load_rules
    from detectors.sigma.mapping import FieldMappings, load_mappings
    from detectors.sigma.model import CorrelationRule, LoadIssue, LoadResult, SigmaRule
    from detectors.sigma.partition import CorrelationInput
    from detectors.sigma.suppress import Suppressed, Suppressor

# Names resolve on first use (PEP 562): importing one module of the package
# (e.g. `detectors.sigma.detection` for the alert builder) must not compile the engine and its indexes.
_EXPORTS = {
    "CorrelationInput": "detectors.sigma.partition",
    "CorrelationRule": "detectors.sigma.model",
    "Detection": "detectors.sigma.detection",
    "Engine": "detectors.sigma.engine",
    "FieldMappings": "detectors.sigma.mapping",
    "LoadIssue": "detectors.sigma.model",
    "LoadResult": "detectors.sigma.model",
    "MatchResult": "detectors.sigma.engine",
    "SigmaRule": "detectors.sigma.model",
    "Suppressed": "detectors.sigma.suppress",
    "Suppressor": "detectors.sigma.suppress",
    "load_mappings": "detectors.sigma.mapping",
    "load_rules": "detectors.sigma.loader",
}

__all__ = [
    "CorrelationInput",
    "CorrelationRule",
    "Detection",
    "Engine",
    "FieldMappings",
    "LoadIssue",
    "LoadResult",
    "MatchResult",
    "SigmaRule",
    "Suppressed",
    "Suppressor",
    "load_mappings",
    "load_rules",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)
