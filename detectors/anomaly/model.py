"""Anomaly models: training, threshold calibration, scoring and explanation (pure, no I/O).

Three kinds share one interface (higher score = more anomalous):
- `isolation_forest` (default): scikit-learn IsolationForest, exported to arrays (see forest.py).
- `robust_baseline`: per-entity median/MAD of each feature (global fallback for entities with too
  little history); the score is the mean of the three largest robust z-scores. It wins where each
  entity has its own normal (hosts, users) and an IsolationForest over all entities blurs them.
- `request_profile` (web.request only): per-endpoint, per-parameter profiles of normal requests
  (request_profile.py); the score is the sum of the points of every property a request departs
  from, and those reasons (parameter, property) are its explanation.
The first two explain a score the same way: robust distance of each feature from the entity's baseline.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from detectors.anomaly.features import PROFILES, Profile, event_epoch, load_context, model_vector
from detectors.anomaly.forest import ForestArrays, export_isolation_forest
from detectors.anomaly.request_profile import Reason, RequestProfile, learn
from detectors.anomaly.windows import ClosedWindow, Windower
from detectors.common.times import iso_ms, iso_s

KINDS = ("isolation_forest", "robust_baseline", "request_profile")
# request_profile: never alert below one clear departure, even when (as on CSIC 2010) 99% of the
# calibration requests score 0; chosen on the validation split (see README.md)
MIN_REQUEST_THRESHOLD = 3.0
# severity high from three clear departures on (a payload: new characters + new 3-grams + length),
# medium for one or two (a tampered name, a missing parameter)
HIGH_FACTOR = 3.0
Z_CAP = 50.0
MIN_ENTITY_WINDOWS = 10
MAX_ENTITY_BASELINES = 20_000


@dataclass(slots=True)
class Baseline:
    center: np.ndarray  # model-space median per feature
    scale: np.ndarray  # robust scale per feature (never 0)
    raw_median: np.ndarray  # raw-space median, for humans

    def z(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(np.clip((x - self.center) / self.scale, -Z_CAP, Z_CAP))


def fit_baseline(model_X: np.ndarray, raw_X: np.ndarray, floor: np.ndarray | None = None) -> Baseline:
    """Median and 1.4826*MAD, floored so a feature constant in training (MAD 0) stays finite."""
    center = np.median(model_X, axis=0)
    mad = 1.4826 * np.median(np.abs(model_X - center), axis=0)
    scale = np.maximum.reduce([mad, 0.5 * model_X.std(axis=0), np.full_like(center, 0.05)])
    if floor is not None:
        scale = np.maximum(scale, floor)
    return Baseline(center, scale, np.median(raw_X, axis=0))


@dataclass(slots=True)
class AnomalyModel:
    name: str
    version: str
    profile: Profile
    window_seconds: int
    kind: str
    threshold: float  # alert when score >= threshold
    high_threshold: float  # above every calibration score: severity high
    baseline: Baseline
    forest: ForestArrays | None = None
    entity_baselines: dict[tuple[str, ...], Baseline] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    agency: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    shadow: bool = True
    requests: RequestProfile | None = None

    def score_request(self, event: dict[str, Any]) -> tuple[float, list[Reason]]:
        """request_profile kind: (score, top reasons) of one request."""
        assert self.requests is not None
        return self.requests.score(event)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.profile.feature_names

    def accepts(self, event: dict[str, Any]) -> bool:
        if self.agency is not None and event.get("organization.id") != self.agency:
            return False
        return self.profile.accepts(event)

    def vectors(self, windows: list[ClosedWindow]) -> tuple[np.ndarray, np.ndarray]:
        """(model-space X, raw X) of closed windows, with this model's context."""
        ctx = self.context
        raw = [[v if math.isfinite(v) else 0.0 for v in w.accumulator.features(ctx, w.history)] for w in windows]
        model_X = np.array([model_vector(self.profile, r) for r in raw], dtype=np.float64)
        n = len(self.feature_names)
        return model_X.reshape(-1, n), np.array(raw, dtype=np.float64).reshape(-1, n)

    def _baseline_for(self, entity: tuple[str, ...]) -> Baseline:
        return self.entity_baselines.get(entity, self.baseline)

    def score(self, model_X: np.ndarray, entities: list[tuple[str, ...]]) -> np.ndarray:
        if len(model_X) == 0:
            return np.zeros(0)
        if self.kind == "isolation_forest":
            assert self.forest is not None
            return self.forest.score(model_X)
        bases = [self._baseline_for(e) for e in entities]
        center = np.array([b.center for b in bases])
        scale = np.array([b.scale for b in bases])
        z = np.abs(np.clip((model_X - center) / scale, -Z_CAP, Z_CAP))
        k = min(3, z.shape[1])
        return np.asarray(np.partition(z, z.shape[1] - k, axis=1)[:, -k:].mean(axis=1))

    def explain(
        self, x_model: np.ndarray, x_raw: np.ndarray, entity: tuple[str, ...], top: int = 5
    ) -> list[tuple[str, float, float, float]]:
        """(feature, value, baseline median, robust z) of the features farthest from baseline."""
        base = self._baseline_for(entity)
        z = base.z(x_model)
        order = np.argsort(-np.abs(z), kind="stable")[:top]
        return [
            (self.feature_names[i], _round(x_raw[i]), _round(base.raw_median[i]), _round(z[i]))
            for i in order
            if abs(z[i]) > 0
        ]


def _round(v: float) -> float:
    return float(round(float(v), 4))


# --------------------------------------------------------------------------- training
@dataclass(slots=True)
class TrainingSet:
    windows: list[ClosedWindow]
    model_X: np.ndarray
    raw_X: np.ndarray
    context: dict[str, Any]
    first_ts: float | None
    last_ts: float | None
    events: int


def windows_of(
    profile: Profile, window_seconds: int, events: Iterable[dict[str, Any]], agency: str | None = None
) -> tuple[list[ClosedWindow], int, float | None, float | None]:
    """Offline windowing, identical to streaming: events in time order, then flush."""
    timed = []
    for e in events:
        if agency is not None and e.get("organization.id") != agency:
            continue
        if profile.accepts(e):
            ts = event_epoch(e)
            if ts is not None:
                timed.append((ts, e))
    timed.sort(key=lambda p: p[0])
    w = Windower(profile, window_seconds, max_open=10**9)
    closed: list[ClosedWindow] = []
    for ts, e in timed:
        one = w.add(e, ts)
        if one is not None:
            closed.append(one)
    closed.extend(w.flush())
    first = timed[0][0] if timed else None
    last = timed[-1][0] if timed else None
    return closed, len(timed), first, last


def build_training_set(
    profile: Profile, window_seconds: int, events: list[dict[str, Any]], agency: str | None = None
) -> TrainingSet:
    windows, n_events, first, last = windows_of(profile, window_seconds, events, agency)
    accepted = [e for e in events if profile.accepts(e)]
    context = load_context(profile.context(accepted))
    probe = AnomalyModel(
        "probe",
        "0",
        profile,
        window_seconds,
        "robust_baseline",
        0,
        0,
        Baseline(np.zeros(1), np.ones(1), np.zeros(1)),
        context=context,
    )
    model_X, raw_X = probe.vectors(windows)
    return TrainingSet(windows, model_X, raw_X, context, first, last, n_events)


def train(
    profile_name: str,
    events: list[dict[str, Any]],
    *,
    window_seconds: int = 60,
    kind: str = "isolation_forest",
    fp_rate: float = 0.01,
    name: str | None = None,
    agency: str | None = None,
    seed: int = 7,
    n_estimators: int = 100,
    raw_context: dict[str, Any] | None = None,
) -> AnomalyModel:
    """Fit on attack-free events; calibrate the threshold on a held-out fifth to `fp_rate`."""
    from sklearn.ensemble import IsolationForest  # training only: scoring never needs sklearn

    if profile_name not in PROFILES:
        raise ValueError(f"unknown profile {profile_name!r}; one of {sorted(PROFILES)}")
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; one of {KINDS}")
    if not 0 < fp_rate < 0.5:
        raise ValueError("fp_rate must be in (0, 0.5)")
    profile = PROFILES[profile_name]
    if kind == "request_profile":
        return _train_request_profile(profile, events, fp_rate=fp_rate, name=name, agency=agency, seed=seed)
    ts = build_training_set(profile, window_seconds, events, agency)
    n = len(ts.windows)
    if n < 20:
        raise ValueError(f"only {n} training windows for profile {profile_name}: need at least 20")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    if n >= 200:
        cal_idx, fit_idx = order[: n // 5], order[n // 5 :]
    else:
        cal_idx = fit_idx = order
    baseline = fit_baseline(ts.model_X[fit_idx], ts.raw_X[fit_idx])
    entities = [w.entity for w in ts.windows]
    model = AnomalyModel(
        name or f"{profile_name}-{window_seconds}s",
        "",
        profile,
        window_seconds,
        kind,
        0.0,
        0.0,
        baseline,
        context=ts.context,
        agency=agency,
    )
    if kind == "isolation_forest":
        forest = IsolationForest(n_estimators=n_estimators, max_samples=min(256, len(fit_idx)), random_state=seed).fit(
            ts.model_X[fit_idx].astype(np.float32)
        )
        model.forest = export_isolation_forest(forest)
    elif not profile.per_request:  # a request has no history of its own to compare with
        model.entity_baselines = _entity_baselines(ts, fit_idx, baseline)
    cal_scores = model.score(ts.model_X[cal_idx], [entities[i] for i in cal_idx])
    all_scores = model.score(ts.model_X, entities)
    model.threshold = float(np.quantile(cal_scores, 1.0 - fp_rate, method="higher"))
    model.high_threshold = float(max(all_scores.max(), model.threshold))
    data_sha = hashlib.sha256(np.ascontiguousarray(ts.model_X).tobytes()).hexdigest()
    created = datetime.now(UTC)
    model.version = f"{created:%Y%m%dT%H%M%SZ}-{data_sha[:8]}"
    model.metadata = {
        "created_at": iso_s(created.timestamp()),
        "training": {
            "events": ts.events,
            "windows": n,
            "fit_windows": int(len(fit_idx)),
            "calibration_windows": int(len(cal_idx)),
            "fp_rate_target": fp_rate,
            "fp_rate_calibration": float(np.mean(cal_scores >= model.threshold)),
            "first_event": _iso(ts.first_ts),
            "last_event": _iso(ts.last_ts),
            "feature_matrix_sha256": data_sha,
            "seed": seed,
        },
        "score_quantiles": {q: float(np.quantile(all_scores, float(q))) for q in ("0.5", "0.9", "0.99")},
    }
    return model


def _train_request_profile(
    profile: Profile, events: list[dict[str, Any]], *, fp_rate: float, name: str | None, agency: str | None, seed: int
) -> AnomalyModel:
    """Learn profiles on a seeded 80% of the requests; the threshold comes from the other 20%."""
    if not profile.per_request or profile.name != "web.request":
        raise ValueError("kind request_profile is for the web.request profile only")
    accepted = [
        e
        for e in events
        if profile.accepts(e) and (agency is None or e.get("organization.id") == agency) and event_epoch(e) is not None
    ]
    n = len(accepted)
    if n < 20:
        raise ValueError(f"only {n} training requests for profile {profile.name}: need at least 20")
    order = np.random.default_rng(seed).permutation(n)
    if n >= 200:
        cal_idx, fit_idx = order[: n // 5], order[n // 5 :]
    else:
        cal_idx = fit_idx = order
    requests = learn(accepted[i] for i in fit_idx)
    cal_scores = np.array([requests.score(accepted[i])[0] for i in cal_idx])
    q = float(np.quantile(cal_scores, 1.0 - fp_rate, method="higher"))
    if np.mean(cal_scores >= q) > fp_rate:  # scores are sums of points: many held-out requests tie at q
        q = float(np.nextafter(q, np.inf))
    threshold = max(q, MIN_REQUEST_THRESHOLD)
    k = len(profile.feature_names)
    model = AnomalyModel(
        name or f"{profile.name}-profile",
        "",
        profile,
        1,
        "request_profile",
        threshold,
        max(float(cal_scores.max()), HIGH_FACTOR * threshold),
        Baseline(np.zeros(k), np.ones(k), np.zeros(k)),
        agency=agency,
        requests=requests,
    )
    data_sha = hashlib.sha256(json.dumps(requests.to_json(), sort_keys=True).encode()).hexdigest()
    times = [t for t in (event_epoch(e) for e in accepted) if t is not None]
    created = datetime.now(UTC)
    model.version = f"{created:%Y%m%dT%H%M%SZ}-{data_sha[:8]}"
    model.metadata = {
        "created_at": iso_s(created.timestamp()),
        "training": {
            "events": n,
            "windows": n,
            "fit_windows": int(len(fit_idx)),
            "calibration_windows": int(len(cal_idx)),
            "split": f"seeded permutation (seed {seed}): {len(fit_idx)} requests fit the profiles, "
            f"{len(cal_idx)} held out set the threshold",
            "endpoints": len(requests.endpoints),
            "parameters": sum(len(e.params) for e in requests.endpoints.values()),
            "fp_rate_target": fp_rate,
            "fp_rate_calibration": float(np.mean(cal_scores >= threshold)),
            "min_threshold": MIN_REQUEST_THRESHOLD,
            "first_event": _iso(min(times)),
            "last_event": _iso(max(times)),
            "feature_matrix_sha256": data_sha,
            "seed": seed,
        },
        "score_quantiles": {q: float(np.quantile(cal_scores, float(q))) for q in ("0.5", "0.9", "0.99")},
    }
    return model


def _entity_baselines(ts: TrainingSet, fit_idx: np.ndarray, global_base: Baseline) -> dict[tuple[str, ...], Baseline]:
    groups: dict[tuple[str, ...], list[int]] = {}
    for i in fit_idx:
        groups.setdefault(ts.windows[i].entity, []).append(int(i))
    out: dict[tuple[str, ...], Baseline] = {}
    floor = 0.25 * global_base.scale  # an entity's tiny variance must not make every blip huge
    for entity, idx in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        if len(idx) < MIN_ENTITY_WINDOWS or len(out) >= MAX_ENTITY_BASELINES:
            break
        out[entity] = fit_baseline(ts.model_X[idx], ts.raw_X[idx], floor)
    return out


def _iso(ts: float | None) -> str | None:
    if ts is None or not math.isfinite(ts):
        return None
    return iso_ms(ts)
