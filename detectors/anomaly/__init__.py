"""Anomaly models for socpipe: windowed features, scikit-learn models, safe model directories.

The detector worker uses:
    scorer = AnomalyScorer.from_dirs([model_dir, ...])   # ModelLoadError if missing/broken/tampered
    findings = scorer.process(event)                       # per-request models report at once
    findings += scorer.advance(watermark_epoch_seconds)    # windows closed by event time
"""

from detectors.anomaly.features import PROFILES, Profile, event_epoch
from detectors.anomaly.model import AnomalyModel, train
from detectors.anomaly.scorer import AnomalyFinding, AnomalyScorer
from detectors.anomaly.store import ModelLoadError, load_model_dir, save_model_dir, set_stage

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
