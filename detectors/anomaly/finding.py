"""`AnomalyFinding`: what an anomaly model reports about one entity's window (or one request).

Times are epoch seconds (`start_ts`, `end_ts`) like every finding's; they become text only in the
alert document (`detectors.alerts`) and in `to_dict` (the `socpipe model score` output). No numpy here:
the alert builder and the worker's stage contracts import this without the models.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from detectors.common.severity import Severity
from detectors.common.times import iso_ms


@dataclass(slots=True)
class AnomalyFinding:
    finding_id: str  # deterministic: replays produce the same id (idempotent alert writes)
    model: str
    model_version: str
    profile: str
    entity: dict[str, str]
    start_ts: float  # window start (epoch seconds)
    end_ts: float  # window end
    score: float
    threshold: float
    anomalous: bool  # score >= threshold
    shadow: bool  # shadow models report, they never alert
    severity: Severity  # medium, or high when above every score seen in training
    top_features: list[tuple[str, float, float, float]]  # (name, value, baseline, deviation in robust z)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    event_count: int = 0
    # request_profile models: why, per parameter and property (parameter, property, points, observed, expected)
    reasons: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.severity = Severity.parse(self.severity)  # also when given by name ("high")

    @property
    def alert_id(self) -> str:
        return self.finding_id

    @property
    def dedup_key(self) -> str:
        """Repeats of one model's finding about one entity fold into one open alert."""
        return "|".join(["anomaly", self.model, *[f"{k}={v}" for k, v in sorted(self.entity.items())]])

    @property
    def agencies(self) -> list[str]:
        """The entity's agency, else every agency seen in the evidence."""
        org = self.entity.get("organization.id")
        if org:
            return [str(org)]
        return sorted({str(e["organization.id"]) for e in self.evidence if e.get("organization.id")})

    @property
    def window_start(self) -> str:
        return iso_ms(self.start_ts)

    @property
    def window_end(self) -> str:
        return iso_ms(self.end_ts)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["severity"] = str(self.severity)
        d["window_start"], d["window_end"] = self.window_start, self.window_end
        d["top_features"] = [{"name": n, "value": v, "baseline": b, "deviation": z} for n, v, b, z in self.top_features]
        return d


def finding_from_dict(d: dict[str, Any]) -> AnomalyFinding:
    """`AnomalyFinding.to_dict` read back (a dead letter's finding). ValueError naming what is wrong."""
    if not isinstance(d, dict):
        raise ValueError(f"a finding is an object, got {type(d).__name__}")
    fid = d.get("finding_id")
    if not isinstance(fid, str) or not fid:
        raise ValueError("finding without a finding_id")
    kw = {f.name: d[f.name] for f in fields(AnomalyFinding) if f.name in d}
    try:
        kw["top_features"] = [
            (str(t["name"]), float(t["value"]), float(t["baseline"]), float(t["deviation"]))
            for t in d.get("top_features") or []
        ]
        if not isinstance(kw.get("entity"), dict) or not isinstance(kw.get("evidence", []), list):
            raise ValueError("entity must be an object and evidence a list")
        if not all(isinstance(e, dict) for e in kw.get("evidence", [])):  # the alert reads them as events
            raise ValueError("evidence holds something other than events")
        for name in ("start_ts", "end_ts", "score", "threshold"):
            if not isinstance(kw.get(name), (int, float)) or isinstance(kw.get(name), bool):
                raise ValueError(f"{name} must be a number")
        return AnomalyFinding(**kw)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"finding {fid[:40]!r}: {exc}") from None
