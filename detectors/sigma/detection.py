"""The Detection record: a Sigma rule (or correlation) fired; everything `detectors.alerts` needs for an alert.

Times are epoch seconds (`start_ts`, `end_ts`); `start`/`end` render them for people and tests.

`detection_id` is hashed on first use, not when the detection is made: most detections fold into an
alert that already exists (episodes) and never need their own id; the value is the same either way.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any

from detectors.common.severity import Severity
from detectors.common.times import iso_ms
from detectors.sigma.model import RuleMeta

EVIDENCE_CAP = 20


# one encoder (json.dumps with options builds a new one per call); same bytes as
# json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
_ENCODE = json.JSONEncoder(sort_keys=True, default=str, separators=(",", ":")).encode


def stable_hash(*parts: object) -> str:
    return hashlib.sha256(_ENCODE(parts).encode()).hexdigest()[:32]


class Deferred:
    """`stable_hash(*parts)`, computed when first asked for (a detection's identity)."""

    __slots__ = ("parts",)

    def __init__(self, *parts: object):
        self.parts = parts

    def __str__(self) -> str:
        return stable_hash(*self.parts)


@dataclass(slots=True)
class Detection:
    rule_id: str
    rule_title: str
    rule_name: str | None
    description: str
    level: str  # the rule's Sigma level as written; `severity` is its typed form
    status: str
    author: str
    tags: list[str]
    references: list[str]
    falsepositives: list[str]
    fields: list[str]
    rule_path: str
    kind: str  # "single" or the correlation type
    group: dict[str, Any]  # group-by field -> value
    start_ts: float  # first triggering event time (epoch seconds)
    end_ts: float  # last triggering event time
    count: int  # triggering events
    evidence: list[dict[str, Any]]  # up to EVIDENCE_CAP triggering events (flat ECS)
    dedup_key: str
    id_parts: tuple[Any, ...] = field(repr=False, compare=False)  # what detection_id hashes (see make_detection)
    agencies: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    metric: dict[str, Any] = field(default_factory=dict)
    continuation: bool = False  # one more event of a correlation episode that already fired
    id_cache: str | None = field(default=None, repr=False, compare=False)

    @property
    def detection_id(self) -> str:
        """Deterministic (a replay of the same events gives the same id): the alert `_id` it opens."""
        if self.id_cache is None:
            group_items, window_start, identity = self.id_parts
            if type(identity) is Deferred:
                identity = str(identity)
            self.id_cache = stable_hash("det", self.rule_id, group_items, window_start, identity)
        return self.id_cache

    @property
    def alert_id(self) -> str:
        return self.detection_id

    @property
    def start(self) -> str:
        return iso_ms(self.start_ts)

    @property
    def end(self) -> str:
        return iso_ms(self.end_ts)

    @property
    def severity(self) -> Severity:
        return Severity.parse(self.level)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (copies), `detection_id` in place of what it is hashed from."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in ("id_parts", "id_cache"):
                continue
            out[f.name] = copy.deepcopy(getattr(self, f.name))
            if f.name == "dedup_key":
                out["detection_id"] = self.detection_id
        return out


def detection_from_dict(d: dict[str, Any]) -> Detection:
    """`Detection.to_dict` read back (a dead letter's detection): the same fields, its `detection_id`
    as given (what it was hashed from is not in the dict). ValueError naming what is missing or wrong."""
    if not isinstance(d, dict):
        raise ValueError(f"a detection is an object, got {type(d).__name__}")
    det_id = d.get("detection_id")
    if not isinstance(det_id, str) or not det_id:
        raise ValueError("detection without a detection_id")
    kw: dict[str, Any] = {}
    for f in fields(Detection):
        if f.name in ("id_parts", "id_cache"):
            continue
        if f.name not in d:
            if f.name in _OPTIONAL:
                continue
            raise ValueError(f"detection {det_id[:40]!r} has no {f.name}")
        want = _TYPES.get(f.name)
        if want is not None and (not isinstance(d[f.name], want) or isinstance(d[f.name], bool)):
            raise ValueError(f"detection {det_id[:40]!r}: {f.name} is {type(d[f.name]).__name__}, not {want}")
        kw[f.name] = copy.deepcopy(d[f.name])
    if not all(isinstance(e, dict) for e in kw["evidence"]):
        raise ValueError(f"detection {det_id[:40]!r}: evidence holds something other than events")
    return Detection(**kw, id_parts=(), id_cache=det_id)


_OPTIONAL = frozenset(("agencies", "hosts", "metric", "continuation"))
_TYPES: dict[str, Any] = {
    "rule_id": str,
    "rule_title": str,
    "level": str,
    "kind": str,
    "dedup_key": str,
    "group": dict,
    "start_ts": (int, float),
    "end_ts": (int, float),
    "count": int,
    "evidence": list,
    "tags": list,
    "agencies": list,
    "hosts": list,
    "metric": dict,
}


def make_detection(
    meta: RuleMeta,
    kind: str,
    group: dict[str, Any],
    times: list[float],
    evidence: list[dict[str, Any]],
    count: int,
    window_start: float,
    metric: dict[str, Any] | None = None,
    identity: object = None,
    agencies: list[Any] | None = None,
    continuation: bool = False,
) -> Detection:
    """Build a Detection with deterministic ids (replay of the same events -> same ids).

    `identity` (what tells two detections of one rule, group and window start apart) may be a
    `Deferred` hash: it is only computed with `detection_id`."""
    group_items = sorted(group.items())  # (name, value) pairs; tuples hash as the JSON arrays lists do
    dedup_key = _dedup_key(meta.id, group, group_items)
    if agencies is None:
        agencies = [e.get("organization.id") for e in evidence]
    if len(agencies) == 1:  # one event (a match, a continuation): no set to sort
        agencies = [str(agencies[0])] if agencies[0] else []
    else:
        agencies = sorted({str(a) for a in agencies if a})
    if len(evidence) == 1:
        host = evidence[0].get("host.name")
        hosts = [str(host)] if host else []
    else:
        hosts = sorted({str(e["host.name"]) for e in evidence if e.get("host.name")})
    # positional, in field order (a call with 24 keywords cost ~1.5 us more per detection)
    return Detection(
        meta.id,  # rule_id
        meta.title,  # rule_title
        meta.name,  # rule_name
        meta.description,  # description
        meta.level,  # level
        meta.status,  # status
        meta.author,  # author
        list(meta.tags),  # tags
        list(meta.references),  # references
        list(meta.falsepositives),  # falsepositives
        list(meta.fields),  # fields
        meta.path,  # rule_path
        kind,  # kind
        dict(group),  # group
        min(times),  # start_ts
        max(times),  # end_ts
        count,  # count
        evidence[:EVIDENCE_CAP],  # evidence
        dedup_key,  # dedup_key
        (group_items, window_start, identity),  # id_parts
        agencies,  # agencies
        hosts,  # hosts
        metric or {},  # metric
        continuation,  # continuation
    )


_MEMO_TYPES = frozenset((str, int, type(None)))
_DEDUP: dict[Any, str] = {}  # (rule id, group items) -> dedup key; bounded (group values come from logs)


def _dedup_key(rule_id: str, group: dict[str, Any], group_items: list[Any]) -> str:
    # memoised only for str/int/None values: equal keys there mean equal JSON (1 == 1.0 == True do not)
    if not _MEMO_TYPES.issuperset(map(type, group.values())):
        return stable_hash("dedup", rule_id, group_items)
    memo = (rule_id, *group_items)
    key = _DEDUP.get(memo)
    if key is None:
        key = stable_hash("dedup", rule_id, group_items)
        if len(_DEDUP) >= 65536:
            _DEDUP.clear()
        _DEDUP[memo] = key
    return key
