"""Versioned model directories: our own JSON + npz format, hashed, never unpickled.

A model directory holds
  metadata.json  features, thresholds, baselines, context, training range, data hash, library versions
  arrays.npz     numeric arrays (forest, per-entity baselines), read with allow_pickle=False
  MANIFEST.json  sha256 of the two files above; its own sha256 is the model's digest
  stage.json     "shadow" or "live"; mutable (promotion), so outside the manifest
A loader verifies every hash and every array shape before the model is used; the digest can also be
pinned by the caller so a directory rewritten by someone else is refused.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from detectors.anomaly.features import PROFILES, load_context
from detectors.anomaly.forest import ForestArrays
from detectors.anomaly.model import KINDS, AnomalyModel, Baseline
from detectors.anomaly.request_profile import RequestProfile
from detectors.common.times import iso_s

FORMAT = "socpipe-anomaly-model/1"
HASHED_FILES = ("metadata.json", "arrays.npz")
MAX_FILE_BYTES = 256 * 1024 * 1024
STAGES = ("shadow", "live")


class ModelLoadError(Exception):
    """A model directory is missing, broken, tampered with or of an unknown format."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _library_versions() -> dict[str, str]:
    import sklearn

    return {"python": platform.python_version(), "numpy": np.__version__, "scikit-learn": sklearn.__version__}


def save_model_dir(
    model: AnomalyModel, out: str | Path, inputs: list[dict[str, Any]] | None = None, stage: str = "shadow"
) -> str:
    """Write a model directory; returns its digest (sha256 of MANIFEST.json)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {
        "baseline.center": model.baseline.center,
        "baseline.scale": model.baseline.scale,
        "baseline.raw_median": model.baseline.raw_median,
    }
    if model.forest is not None:
        arrays.update(model.forest.to_arrays())
    entities = list(model.entity_baselines)
    if entities:
        arrays["entity.center"] = np.stack([model.entity_baselines[e].center for e in entities])
        arrays["entity.scale"] = np.stack([model.entity_baselines[e].scale for e in entities])
        arrays["entity.raw_median"] = np.stack([model.entity_baselines[e].raw_median for e in entities])
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]  # numpy stubs type **kwds as bool
    context = {k: sorted(v) if isinstance(v, (set, frozenset)) else v for k, v in model.context.items()}
    if "user_networks" in context:
        networks: dict[str, Any] = model.context["user_networks"]
        context["user_networks"] = {u: sorted(n) for u, n in networks.items()}
    metadata = {
        "format": FORMAT,
        "name": model.name,
        "version": model.version,
        "profile": model.profile.name,
        "kind": model.kind,
        "window_seconds": model.window_seconds,
        "agency": model.agency,
        "entity_fields": list(model.profile.entity_fields),
        "features": list(model.feature_names),
        "thresholds": {"alert": model.threshold, "high": model.high_threshold},
        "entities": [list(e) for e in entities],
        "context": context,
        "inputs": inputs or [],
        **({"request_profile": model.requests.to_json()} if model.requests is not None else {}),
        "libraries": _library_versions(),
        **model.metadata,
    }
    files = {"metadata.json": json.dumps(metadata, indent=1, sort_keys=True).encode(), "arrays.npz": buf.getvalue()}
    for fname, data in files.items():
        _write_atomic(out / fname, data)
    manifest = json.dumps(
        {"format": FORMAT, "files": {f: _sha256(d) for f, d in files.items()}}, indent=1, sort_keys=True
    ).encode()
    _write_atomic(out / "MANIFEST.json", manifest)
    set_stage(out, stage)
    return _sha256(manifest)


def set_stage(model_dir: str | Path, stage: str, note: str = "") -> None:
    """Shadow models score and report but never alert; promotion flips them to live."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}")
    record = {"stage": stage, "changed_at": iso_s(time.time()), "note": note}
    _write_atomic(Path(model_dir) / "stage.json", json.dumps(record, sort_keys=True).encode())


def read_stage(model_dir: str | Path) -> str:
    path = Path(model_dir) / "stage.json"
    if not path.exists():
        return "shadow"
    try:
        stage = json.loads(path.read_text()).get("stage")
    except (OSError, ValueError, AttributeError) as exc:
        raise ModelLoadError(f"{path}: unreadable stage file: {exc}") from exc
    if stage not in STAGES:
        raise ModelLoadError(f"{path}: unknown stage {stage!r}")
    return str(stage)


def _read_limited(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ModelLoadError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise ModelLoadError(f"{path}: missing") from exc
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read: {exc.strerror}") from exc


def model_digest(model_dir: str | Path) -> str:
    return _sha256(_read_limited(Path(model_dir) / "MANIFEST.json"))


def load_model_dir(model_dir: str | Path, expected_digest: str | None = None) -> AnomalyModel:
    """Load and verify a model directory; any problem is a ModelLoadError naming the directory."""
    d = Path(model_dir)
    if not d.is_dir():
        raise ModelLoadError(f"{d}: model directory does not exist")
    raw_manifest = _read_limited(d / "MANIFEST.json")
    digest = _sha256(raw_manifest)
    if expected_digest is not None and digest != expected_digest:
        raise ModelLoadError(f"{d}: manifest digest {digest[:12]} does not match the pinned {expected_digest[:12]}")
    try:
        manifest = json.loads(raw_manifest)
        hashes = manifest["files"]
        fmt = manifest["format"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"{d}/MANIFEST.json: not a model manifest") from exc
    if fmt != FORMAT:
        raise ModelLoadError(f"{d}: unknown model format {fmt!r} (this build reads {FORMAT})")
    contents: dict[str, bytes] = {}
    for fname in HASHED_FILES:
        data = _read_limited(d / fname)
        if not isinstance(hashes, dict) or _sha256(data) != hashes.get(fname):
            raise ModelLoadError(f"{d}/{fname}: sha256 does not match MANIFEST.json (tampered or corrupt)")
        contents[fname] = data
    try:
        model = _build(json.loads(contents["metadata.json"]), contents["arrays.npz"])
    except ModelLoadError:
        raise
    except Exception as exc:  # a hash-valid but inconsistent file: still never a crash
        raise ModelLoadError(f"{d}: invalid model content: {type(exc).__name__}: {exc}") from exc
    model.shadow = read_stage(d) != "live"
    model.metadata["digest"] = digest
    model.metadata["path"] = str(d)
    return model


def _build(meta: dict[str, Any], npz: bytes) -> AnomalyModel:
    if meta.get("format") != FORMAT:
        raise ModelLoadError(f"unknown metadata format {meta.get('format')!r}")
    profile = PROFILES.get(meta["profile"])
    if profile is None:
        raise ModelLoadError(f"unknown profile {meta['profile']!r}")
    if list(profile.feature_names) != meta["features"]:
        raise ModelLoadError(f"features of profile {profile.name} changed since training: retrain")
    if meta["kind"] not in KINDS:
        raise ModelLoadError(f"unknown model kind {meta['kind']!r}")
    with np.load(io.BytesIO(npz), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    n_feat = len(profile.feature_names)

    def base(prefix: str, i: int | None = None) -> Baseline:
        parts = [
            arrays[f"{prefix}.{k}"] if i is None else arrays[f"{prefix}.{k}"][i]
            for k in ("center", "scale", "raw_median")
        ]
        if any(p.shape != (n_feat,) for p in parts) or not np.all(parts[1] > 0):
            raise ModelLoadError(f"{prefix} baseline has the wrong shape or a non-positive scale")
        return Baseline(*(p.astype(np.float64) for p in parts))

    forest = None
    if meta["kind"] == "isolation_forest":
        forest = ForestArrays.from_arrays(arrays)
        if forest.n_features_used > n_feat:
            raise ModelLoadError("forest uses more features than the profile has")
    entities = [tuple(str(x) for x in e) for e in meta.get("entities", [])]
    entity_baselines = {e: base("entity", i) for i, e in enumerate(entities)}
    window = int(meta["window_seconds"])
    if window <= 0:
        raise ModelLoadError("window_seconds must be positive")
    requests = None
    if meta["kind"] == "request_profile":
        if not profile.per_request or "request_profile" not in meta:
            raise ModelLoadError("request_profile model without per-request profile data")
        requests = RequestProfile.from_json(meta["request_profile"])
    thresholds = meta["thresholds"]
    keep = ("created_at", "training", "score_quantiles", "inputs", "libraries")
    return AnomalyModel(
        name=str(meta["name"]),
        version=str(meta["version"]),
        profile=profile,
        window_seconds=window,
        kind=meta["kind"],
        threshold=float(thresholds["alert"]),
        high_threshold=float(thresholds["high"]),
        baseline=base("baseline"),
        forest=forest,
        entity_baselines=entity_baselines,
        context=load_context(meta.get("context") or {}),
        agency=meta.get("agency"),
        metadata={k: meta[k] for k in keep if k in meta},
        requests=requests,
    )
