"""Labelled evaluation of a model through the streaming engine (pure apart from the labels parser).

Labels file (CSV, `#` comments): `pattern,label[,start:end]`. The pattern is matched (fnmatch) to
an input's path, its `PATH@A:B` spelling or its base name; the optional record range narrows it.
Later lines win. A window is malicious when any of its labelled records is.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.anomaly.features import event_epoch
from detectors.anomaly.model import AnomalyModel
from detectors.anomaly.scorer import AnomalyScorer
from detectors.anomaly.sources import Record
from detectors.anomaly.windows import window_start
from detectors.common.times import iso_ms


@dataclass(frozen=True, slots=True)
class LabelRule:
    pattern: str
    label: int
    start: int = 0
    end: int | None = None


def parse_labels(text: str) -> list[LabelRule]:
    rules = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) not in (2, 3) or parts[1] not in ("0", "1"):
            raise ValueError(f"labels line {n}: expected 'pattern,0|1[,start:end]'")
        start, end = 0, None
        if len(parts) == 3:
            a, _, b = parts[2].partition(":")
            start, end = int(a or 0), int(b) if b else None
        rules.append(LabelRule(parts[0], int(parts[1]), start, end))
    return rules


def label_of(record: Record, rules: list[LabelRule]) -> int | None:
    names = (str(record.input.path), record.input.label, record.input.path.name)
    label = None
    for r in rules:
        if (
            any(fnmatch.fnmatch(n, r.pattern) for n in names)
            and r.start <= record.index
            and (r.end is None or record.index < r.end)
        ):
            label = r.label
    return label


@dataclass(slots=True)
class Metrics:
    items: int
    positives: int
    precision: float
    recall: float
    f1: float
    pr_auc: float
    fp_rate: float

    def as_dict(self) -> dict[str, Any]:
        return {
            k: (round(v, 4) if isinstance(v, float) else v)
            for k, v in {
                "items": self.items,
                "positives": self.positives,
                "precision": self.precision,
                "recall": self.recall,
                "f1": self.f1,
                "pr_auc": self.pr_auc,
                "fp_rate": self.fp_rate,
            }.items()
        }


def metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> Metrics:
    from sklearn.metrics import average_precision_score

    labels = labels.astype(bool)
    pred = scores >= threshold
    tp = int(np.sum(pred & labels))
    fp = int(np.sum(pred & ~labels))
    fn = int(np.sum(~pred & labels))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    pr_auc = float(average_precision_score(labels, scores)) if 0 < labels.sum() < len(labels) else float("nan")
    negatives = int((~labels).sum())
    return Metrics(len(labels), int(labels.sum()), precision, recall, f1, pr_auc, fp / negatives if negatives else 0.0)


def evaluate(model: AnomalyModel, records: list[Record], labels: list[int | None]) -> dict[str, Any]:
    """Score labelled records with the streaming engine; metrics per window and per record."""
    scorer = AnomalyScorer([model], report_all=True)
    timed = sorted(
        ((event_epoch(r.event), i) for i, r in enumerate(records) if model.accepts(r.event) and labels[i] is not None),
        key=lambda p: (p[0] is None, p[0] or 0.0),
    )
    per_record: dict[int, float] = {}
    for _ts, i in timed:
        for f in scorer.process(records[i].event):
            per_record[i] = f.score
    window_scores: dict[tuple[Any, ...], float | None] = {}
    for f in scorer.flush():
        window_scores[(tuple(f.entity.values()), f.window_start)] = f.score
    line_scores, line_labels = [], []
    by_input: dict[str, list[int]] = {}  # label -> [records, labelled attack, flagged]
    win_label: dict[tuple[Any, ...], int] = {}
    for ts, i in timed:
        label = labels[i]
        if ts is None or label is None:
            continue
        if model.profile.per_request:
            score = per_record.get(i)
            win_label[("req", i)] = label
            window_scores[("req", i)] = score
        else:
            key = (model.profile.entity(records[i].event), iso_ms(window_start(ts, model.window_seconds)))
            score = window_scores.get(key)
            win_label[key] = max(win_label.get(key, 0), label)
        if score is not None:
            line_scores.append(score)
            line_labels.append(label)
            row = by_input.setdefault(records[i].input.label, [0, 0, 0])
            row[0] += 1
            row[1] += label
            row[2] += int(score >= model.threshold)
    keys = [k for k in win_label if window_scores.get(k) is not None]
    w_labels = np.array([win_label[k] for k in keys])
    w_scores = np.array([window_scores[k] for k in keys])
    out = {
        "model": model.name,
        "version": model.version,
        "kind": model.kind,
        "profile": model.profile.name,
        "window_seconds": model.window_seconds,
        "threshold": round(model.threshold, 6),
        "records_labelled": sum(1 for x in labels if x is not None),
        "records_scored": len(line_scores),
        "stats": scorer.stats(),
    }
    if not model.profile.per_request:
        out["per_window"] = metrics(w_labels, w_scores, model.threshold).as_dict()
    out["per_record"] = metrics(np.array(line_labels), np.array(line_scores), model.threshold).as_dict()
    out["per_input"] = {  # recall of each attack input, false-positive rate of each normal one
        label: {
            "records": n,
            "attacks": pos,
            "flagged": flagged,
            ("recall" if pos else "fp_rate"): round(flagged / n, 4) if n else 0.0,
        }
        for label, (n, pos, flagged) in by_input.items()
    }
    return out
