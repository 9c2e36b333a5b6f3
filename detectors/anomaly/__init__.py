"""Anomaly models for socpipe: windowed features, scikit-learn models, safe model directories.

The detector worker uses:
    scorer = AnomalyScorer.from_dirs([model_dir, ...])   # ModelLoadError if missing/broken/tampered
    findings = scorer.process(event)                       # per-request models report at once
    findings += scorer.advance(watermark_epoch_seconds)    # windows closed by event time
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from collectors.lazy import lazy_exports

if TYPE_CHECKING:
    from detectors.anomaly.features import PROFILES, Profile, event_epoch
    from detectors.anomaly.finding import AnomalyFinding
    from detectors.anomaly.model import AnomalyModel, train
    from detectors.anomaly.scorer import AnomalyScorer
    from detectors.anomaly.store import ModelLoadError, load_model_dir, save_model_dir, set_stage

# Names resolve on first use (PEP 562): importing one module of the package
# (e.g. `detectors.anomaly.finding` for the alert builder) must not load numpy and the models.
_EXPORTS = {
    "PROFILES": "detectors.anomaly.features",
    "Profile": "detectors.anomaly.features",
    "event_epoch": "detectors.anomaly.features",
    "AnomalyModel": "detectors.anomaly.model",
    "train": "detectors.anomaly.model",
    "AnomalyFinding": "detectors.anomaly.finding",
    "AnomalyScorer": "detectors.anomaly.scorer",
    "ModelLoadError": "detectors.anomaly.store",
    "load_model_dir": "detectors.anomaly.store",
    "save_model_dir": "detectors.anomaly.store",
    "set_stage": "detectors.anomaly.store",
}

__all__ = [
    "PROFILES",
    "Profile",
    "event_epoch",
    "AnomalyModel",
    "train",
    "AnomalyFinding",
    "AnomalyScorer",
    "ModelLoadError",
    "load_model_dir",
    "save_model_dir",
    "set_stage",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)
