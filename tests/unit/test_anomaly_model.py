"""Models: forest export, calibration, explanation, safe model directories."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from detectors.anomaly import ModelLoadError, load_model_dir, save_model_dir, set_stage, train
from detectors.anomaly.forest import export_isolation_forest
from detectors.anomaly.store import model_digest
from pipeline.devtools.synthetic import benign_web, scanner_web

T0 = 1_700_000_040.0


@pytest.fixture(scope="module")
def benign():
    return benign_web(T0, 300, seed=1)


@pytest.fixture(scope="module")
def forest_model(benign):
    return train("web.source", benign, window_seconds=60, fp_rate=0.05, n_estimators=50)


def test_exported_forest_scores_exactly_like_sklearn():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 7))
    X[:, 2] = np.round(X[:, 2])  # ties and repeated values
    model = IsolationForest(n_estimators=40, random_state=3).fit(X)
    arrays = export_isolation_forest(model)
    probe = rng.normal(size=(200, 7)) * 3
    np.testing.assert_allclose(arrays.score(probe), -model.score_samples(probe), rtol=0, atol=1e-12)


def test_threshold_is_calibrated_to_the_target_fp_rate(benign, forest_model):
    cal = forest_model.metadata["training"]
    assert cal["fp_rate_calibration"] <= 0.05 + 1 / cal["calibration_windows"] * 2
    # fresh benign traffic from the same process: false positives near the target, not 0 or 50%
    fresh = benign_web(T0 + 400 * 60, 300, seed=99)
    from detectors.anomaly.model import windows_of

    windows, *_ = windows_of(forest_model.profile, 60, fresh)
    X, _ = forest_model.vectors(windows)
    fp = float(np.mean(forest_model.score(X, [w.entity for w in windows]) >= forest_model.threshold))
    assert 0.0 <= fp <= 0.15


def test_scanner_scores_above_threshold_and_explains_itself(forest_model):
    from detectors.anomaly.model import windows_of

    windows, *_ = windows_of(forest_model.profile, 60, scanner_web(T0 + 100 * 60, 3))
    X, R = forest_model.vectors(windows)
    scores = forest_model.score(X, [w.entity for w in windows])
    assert (scores >= forest_model.threshold).all()
    top = forest_model.explain(X[0], R[0], windows[0].entity)
    names = [t[0] for t in top]
    assert "ratio_4xx" in names or "requests" in names
    name, value, baseline, z = top[0]
    assert abs(z) >= abs(top[-1][3])  # sorted by distance from baseline


def test_robust_baseline_uses_entity_history():
    m = train("web.source", benign_web(T0, 200, addresses=5), kind="robust_baseline", fp_rate=0.05)
    assert m.entity_baselines, "busy benign addresses get a baseline of their own"
    entity = next(iter(m.entity_baselines))
    assert m._baseline_for(entity) is m.entity_baselines[entity]
    assert m._baseline_for(("198.51.100.1",)) is m.baseline


def test_training_refuses_too_little_data():
    with pytest.raises(ValueError, match="training windows"):
        train("web.source", benign_web(T0, 3), window_seconds=60)
    with pytest.raises(ValueError, match="unknown profile"):
        train("nope", [])


# ------------------------------------------------------------------ model directories
def test_round_trip_keeps_scores(tmp_path, forest_model):
    digest = save_model_dir(forest_model, tmp_path / "m")
    loaded = load_model_dir(tmp_path / "m", expected_digest=digest)
    assert loaded.shadow is True and loaded.version == forest_model.version
    X = np.random.default_rng(1).normal(size=(20, len(forest_model.feature_names)))
    np.testing.assert_array_equal(loaded.score(X, [("",)] * 20), forest_model.score(X, [("",)] * 20))
    meta = json.loads((tmp_path / "m" / "metadata.json").read_text())
    for key in ("features", "thresholds", "training", "libraries", "version"):
        assert key in meta
    assert meta["libraries"]["scikit-learn"]
    set_stage(tmp_path / "m", "live")
    assert load_model_dir(tmp_path / "m").shadow is False
    assert model_digest(tmp_path / "m") == digest  # promotion does not change the hashed content


@pytest.mark.parametrize("victim", ["metadata.json", "arrays.npz"])
def test_tampered_file_is_rejected(tmp_path, forest_model, victim):
    save_model_dir(forest_model, tmp_path / "m")
    path = tmp_path / "m" / victim
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="sha256"):
        load_model_dir(tmp_path / "m")


def test_pinned_digest_rejects_a_rewritten_directory(tmp_path, forest_model, benign):
    pinned = save_model_dir(forest_model, tmp_path / "m")
    other = train("web.source", benign, fp_rate=0.2, n_estimators=10)
    save_model_dir(other, tmp_path / "m")  # consistent hashes, but not the model we pinned
    load_model_dir(tmp_path / "m")
    with pytest.raises(ModelLoadError, match="pinned"):
        load_model_dir(tmp_path / "m", expected_digest=pinned)


def _rehash(d: Path) -> None:
    import hashlib

    manifest = json.loads((d / "MANIFEST.json").read_text())
    for f in manifest["files"]:
        manifest["files"][f] = hashlib.sha256((d / f).read_bytes()).hexdigest()
    (d / "MANIFEST.json").write_text(json.dumps(manifest))


def test_pickled_arrays_are_never_loaded(tmp_path, forest_model):
    save_model_dir(forest_model, tmp_path / "m")
    d = tmp_path / "m"
    with np.load(d / "arrays.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["forest.feature"] = np.array([object()], dtype=object)  # would need pickle
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    (d / "arrays.npz").write_bytes(buf.getvalue())
    _rehash(d)  # even with valid hashes
    with pytest.raises(ModelLoadError, match="invalid model content"):
        load_model_dir(d)


def test_hash_valid_but_inconsistent_content_is_a_clear_error(tmp_path, forest_model):
    save_model_dir(forest_model, tmp_path / "m")
    d = tmp_path / "m"
    with np.load(d / "arrays.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["forest.left"] = arrays["forest.left"] + 10_000  # out-of-range child index
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    (d / "arrays.npz").write_bytes(buf.getvalue())
    _rehash(d)
    with pytest.raises(ModelLoadError):
        load_model_dir(d)


def test_missing_and_foreign_directories(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model_dir(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="MANIFEST.json: missing"):
        load_model_dir(tmp_path / "empty")
    (tmp_path / "empty" / "MANIFEST.json").write_text("not json")
    with pytest.raises(ModelLoadError, match="not a model manifest"):
        load_model_dir(tmp_path / "empty")
