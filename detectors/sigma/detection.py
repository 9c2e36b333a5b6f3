"""The Detection record (everything needed to build an alert) and its alert-document form."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from detectors.common.severity import SEVERITY
from detectors.common.times import iso_ms
from detectors.sigma.model import RuleMeta

EVIDENCE_CAP = 20


def stable_hash(*parts) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


@dataclass
class Detection:
    rule_id: str
    rule_title: str
    rule_name: str | None
    description: str
    level: str
    status: str
    author: str
    tags: list
    references: list
    falsepositives: list
    fields: list
    rule_path: str
    kind: str  # "single" or the correlation type
    group: dict  # group-by field -> value
    start_ts: float  # first triggering event time (epoch seconds)
    end_ts: float  # last triggering event time
    count: int  # triggering events
    evidence: list  # up to EVIDENCE_CAP triggering events
    dedup_key: str
    detection_id: str
    agencies: list = field(default_factory=list)
    hosts: list = field(default_factory=list)
    metric: dict = field(default_factory=dict)
    continuation: bool = False  # one more event of a correlation episode that already fired

    @property
    def start(self) -> str:
        return iso_ms(self.start_ts)

    @property
    def end(self) -> str:
        return iso_ms(self.end_ts)

    @property
    def severity(self) -> int:
        return SEVERITY.get(self.level, 47)

    def to_dict(self) -> dict:
        return asdict(self)


def make_detection(
    meta: RuleMeta,
    kind: str,
    group: dict,
    times: list,
    evidence: list,
    count: int,
    window_start: float,
    metric: dict | None = None,
    identity=None,
    agencies: list | None = None,
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


def _plain(v):
    return list(v) if isinstance(v, tuple) else v
