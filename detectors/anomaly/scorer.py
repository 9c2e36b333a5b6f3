"""`AnomalyScorer`: the one scoring engine for streaming workers and offline `socpipe model score`.

Per event the cost is a dictionary update per model group (one Windower per profile, window length
and agency, shared by every model on it). Scoring happens when a window closes, in one numpy batch
per model, so its cost is amortised over the window's events; per-request models score at once
(~0.1 ms). A model that raises while scoring is disabled and logged, never allowed to stop the
stream (the rules keep working).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from detectors.anomaly.features import event_epoch
from detectors.anomaly.finding import AnomalyFinding
from detectors.anomaly.model import AnomalyModel
from detectors.anomaly.store import ModelLoadError, load_model_dir, model_digest, read_stage
from detectors.anomaly.windows import ClosedWindow, Windower, evidence_of
from detectors.common.severity import Severity
from detectors.common.times import iso_ms

log = logging.getLogger("socpipe.anomaly")

__all__ = ["AnomalyFinding", "AnomalyScorer", "finding_id"]


def finding_id(model: AnomalyModel, entity: dict[str, str], start: str, extra: str = "") -> str:
    key = json.dumps([model.name, model.version, sorted(entity.items()), start, extra], separators=(",", ":"))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class _Group:
    """Models that share one profile, window length and agency share one Windower."""

    def __init__(self, models: list[AnomalyModel], max_open: int) -> None:
        self.models = models
        first = models[0]
        self.profile = first.profile
        self.agency = first.agency
        self.windower = Windower(first.profile, first.window_seconds, max_open=max_open)


class AnomalyScorer:
    def __init__(
        self, models: list[AnomalyModel], *, report_all: bool = False, max_open_windows: int = 200_000
    ) -> None:
        self.report_all = report_all
        self.disabled: dict[str, str] = {}
        groups: dict[tuple[str, int, str | None], list[AnomalyModel]] = {}
        for m in models:
            groups.setdefault((m.profile.name, m.window_seconds, m.agency), []).append(m)
        self.groups = [_Group(ms, max_open_windows) for ms in groups.values()]
        self.models = models
        self._sources: dict[str, tuple[str, str]] = {}  # dir -> (digest, stage), for refresh()

    @classmethod
    def from_dirs(cls, dirs: Iterable[str | Path], **kwargs: Any) -> AnomalyScorer:
        """Load every directory; the first missing or broken one raises ModelLoadError."""
        dirs = [str(d) for d in dirs]
        if not dirs:
            raise ModelLoadError("no model directories given")
        models = [load_model_dir(d) for d in dirs]
        scorer = cls(models, **kwargs)
        scorer._sources = {
            str(d): (m.metadata["digest"], "shadow" if m.shadow else "live") for d, m in zip(dirs, models)
        }
        for m in models:
            log.info(
                "anomaly_model_loaded name=%s version=%s kind=%s profile=%s window=%ss shadow=%s",
                m.name,
                m.version,
                m.kind,
                m.profile.name,
                m.window_seconds,
                m.shadow,
            )
        return scorer

    def changed_dirs(self) -> list[str]:
        """Directories whose manifest digest or stage changed since loading (worker polls this)."""
        changed = []
        for d, (digest, stage) in self._sources.items():
            try:
                if model_digest(d) != digest or read_stage(d) != stage:
                    changed.append(d)
            except ModelLoadError:
                changed.append(d)
        return changed

    # ------------------------------------------------------------------ streaming interface
    def process(self, event: dict[str, Any]) -> list[AnomalyFinding]:
        """Feed one event; returns findings of per-request models (window models report on advance)."""
        ts: float | None = None
        findings: list[AnomalyFinding] = []
        for g in self.groups:
            if g.agency is not None and event.get("organization.id") != g.agency:
                continue
            if not g.profile.accepts(event):
                continue
            if ts is None:
                ts = event_epoch(event)
            closed = g.windower.add(event, ts)
            if closed is not None:
                findings.extend(self._score(g, [closed]))
        return findings

    def advance(self, watermark: float) -> list[AnomalyFinding]:
        """Close and score every window that ends at or before `watermark` (unix seconds)."""
        findings: list[AnomalyFinding] = []
        for g in self.groups:
            closed = g.windower.advance(watermark)
            if closed:
                findings.extend(self._score(g, closed))
        return findings

    def flush(self) -> list[AnomalyFinding]:
        """Close everything: end of an offline input."""
        return self.advance(float("inf"))

    def stats(self) -> dict[str, Any]:
        return {
            f"{g.profile.name}/{g.windower.window_seconds}s": {
                **asdict(g.windower.stats),
                "open": g.windower.open_count,
            }
            for g in self.groups
        } | {"disabled": dict(self.disabled)}

    # ------------------------------------------------------------------ scoring
    def _score(self, g: _Group, closed: list[ClosedWindow]) -> list[AnomalyFinding]:
        out: list[AnomalyFinding] = []
        entities = [w.entity for w in closed]
        for m in g.models:
            if m.name in self.disabled:
                continue
            if m.requests is not None:
                out.extend(self._score_requests(m, closed))
                continue
            try:
                model_X, raw_X = m.vectors(closed)
                scores = m.score(model_X, entities)
            except Exception as exc:  # never let one model stop the stream
                self.disabled[m.name] = f"{type(exc).__name__}: {exc}"
                log.error("anomaly_model_disabled name=%s version=%s error=%r", m.name, m.version, exc)
                continue
            for i in np.flatnonzero(scores >= m.threshold) if not self.report_all else range(len(closed)):
                top = m.explain(model_X[i], raw_X[i], closed[i].entity)
                out.append(self._finding(m, closed[i], float(scores[i]), top))
        return out

    def _score_requests(self, m: AnomalyModel, closed: list[ClosedWindow]) -> list[AnomalyFinding]:
        out: list[AnomalyFinding] = []
        for w in closed:
            try:
                score, reasons = m.score_request(w.accumulator.event)
            except Exception as exc:  # never let one model stop the stream
                self.disabled[m.name] = f"{type(exc).__name__}: {exc}"
                log.error("anomaly_model_disabled name=%s version=%s error=%r", m.name, m.version, exc)
                return out
            if score < m.threshold and not self.report_all:
                continue
            top = [
                (f"{r.parameter}.{r.property}", round(float(r.value), 4), round(float(r.baseline), 4), r.points)
                for r in reasons
            ]
            out.append(self._finding(m, w, score, top, [r.as_dict() for r in reasons]))
        return out

    @staticmethod
    def _finding(
        m: AnomalyModel,
        w: ClosedWindow,
        score: float,
        top_features: list[tuple[str, float, float, float]],
        reasons: list[dict[str, Any]] | None = None,
    ) -> AnomalyFinding:
        entity = dict(zip(m.profile.entity_fields, w.entity))
        start = iso_ms(w.start)
        extra = ""
        evidence = list(w.evidence)
        if m.profile.per_request:  # many requests can share an address and a millisecond
            evidence = evidence or [evidence_of(w.accumulator.event)]
            extra = hashlib.sha256(json.dumps(evidence[0], sort_keys=True, default=str).encode()).hexdigest()[:16]
        return AnomalyFinding(
            finding_id=finding_id(m, entity, start, extra),
            model=m.name,
            model_version=m.version,
            profile=m.profile.name,
            entity=entity,
            start_ts=w.start,
            end_ts=w.end,
            score=round(score, 6),
            threshold=round(m.threshold, 6),
            anomalous=score >= m.threshold,
            shadow=m.shadow,
            severity=Severity.HIGH if score > m.high_threshold else Severity.MEDIUM,
            top_features=top_features,
            evidence=evidence,
            event_count=w.events,
            reasons=reasons or [],
        )
