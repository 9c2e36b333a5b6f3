"""The Detection record: a Sigma rule (or correlation) fired; everything `detectors.alerts` needs for an alert.

Times are epoch seconds (`start_ts`, `end_ts`); `start`/`end` render them for people and tests.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from detectors.common.severity import Severity
from detectors.common.times import iso_ms
from detectors.sigma.model import RuleMeta

EVIDENCE_CAP = 20


def stable_hash(*parts: object) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


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
    detection_id: str
    agencies: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    metric: dict[str, Any] = field(default_factory=dict)
    continuation: bool = False  # one more event of a correlation episode that already fired

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
        return asdict(self)


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
    """Build a Detection with deterministic ids (replay of the same events -> same ids)."""
    group_items = sorted((k, _plain(v)) for k, v in group.items())
    dedup_key = stable_hash("dedup", meta.id, group_items)
    detection_id = stable_hash("det", meta.id, group_items, window_start, identity)
    if agencies is None:
        agencies = [e.get("organization.id") for e in evidence]
    agencies = sorted({str(a) for a in agencies if a})
    hosts = sorted({str(e["host.name"]) for e in evidence if e.get("host.name")})
    return Detection(
        rule_id=meta.id,
        rule_title=meta.title,
        rule_name=meta.name,
        description=meta.description,
        level=meta.level,
        status=meta.status,
        author=meta.author,
        tags=list(meta.tags),
        references=list(meta.references),
        falsepositives=list(meta.falsepositives),
        fields=list(meta.fields),
        rule_path=meta.path,
        kind=kind,
        group=dict(group),
        start_ts=min(times),
        end_ts=max(times),
        count=count,
        evidence=evidence[:EVIDENCE_CAP],
        dedup_key=dedup_key,
        detection_id=detection_id,
        agencies=agencies,
        hosts=hosts,
        metric=metric or {},
        continuation=continuation,
    )


def _plain(v: object) -> object:
    return list(v) if isinstance(v, tuple) else v
