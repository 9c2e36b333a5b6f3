"""The worker's model set: broken or missing directories are reported and skipped; changes reload."""

from __future__ import annotations

import time

import pytest

from detectors.anomaly import save_model_dir, set_stage, train
from pipeline.devtools.synthetic import benign_web
from pipeline.worker.models import ModelSet
from pipeline.worker_metrics import EventTally, WorkerMetrics


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("models") / "web"
    save_model_dir(train("web.source", benign_web(time.time() - 86400, minutes=240, seed=2), n_estimators=20), d)
    return d


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_missing_and_broken_dirs_are_skipped_with_their_reason(model_dir, tmp_path, caplog):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "metadata.json").write_text("{not json")
    ms = ModelSet([str(model_dir), str(tmp_path / "absent"), str(broken)])
    assert ms and ms.loaded == [str(model_dir)]
    assert set(ms.errors) == {str(tmp_path / "absent"), str(broken)}
    assert "anomaly_model_unusable" in caplog.text


def test_nothing_loadable_means_no_scorer(tmp_path):
    ms = ModelSet([str(tmp_path / "absent")])
    assert not ms and ms.scorer is None


def test_promotion_reloads_after_the_check_interval(model_dir):
    clock = Clock()
    ms = ModelSet([str(model_dir)], check_every_s=10, clock=clock)
    assert ms.scorer.models[0].shadow  # new models start in shadow
    set_stage(model_dir, "live")
    clock.t = 5
    assert not ms.maybe_reload()  # not yet time to look
    clock.t = 11
    assert ms.maybe_reload()
    assert not ms.scorer.models[0].shadow
    clock.t = 30
    assert not ms.maybe_reload()  # unchanged since


def test_tally_counts_per_dataset_and_parse_failures_once_per_batch():
    m, t = WorkerMetrics(), EventTally()
    for e in (
        {"event.dataset": "nginx.access"},
        {"event.dataset": "nginx.access"},
        {"tags": ["_socpipe_parse_failure"]},
    ):
        t.add(e)
    t.flush_to(m)
    assert m.registry.get_sample_value("socpipe_detector_events_total", {"dataset": "nginx.access"}) == 2
    assert m.registry.get_sample_value("socpipe_detector_events_total", {"dataset": "unknown"}) == 1
    assert m.registry.get_sample_value("socpipe_detector_parse_failures_total") == 1
    t.flush_to(m)  # nothing new
    assert m.registry.get_sample_value("socpipe_detector_events_total", {"dataset": "nginx.access"}) == 2
