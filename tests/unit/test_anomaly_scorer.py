"""AnomalyScorer (the worker API) and the `socpipe model` round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from detectors.anomaly import AnomalyScorer, ModelLoadError, save_model_dir, set_stage, train
from detectors.anomaly.evaluation import label_of, metrics, parse_labels
from detectors.anomaly.sources import InputSpec, Record
from pipeline.cli import main
from pipeline.devtools.synthetic import benign_web, scanner_web

T0 = 1_700_000_040.0


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("models") / "web"
    save_model_dir(train("web.source", benign_web(T0, 240), fp_rate=0.02, n_estimators=50), d)
    return d


def run_stream(scorer, events):
    findings = []
    for e in events:
        findings += scorer.process(e)
    return findings + scorer.flush()


def test_scanner_window_is_reported_with_features_and_evidence(model_dir):
    scorer = AnomalyScorer.from_dirs([model_dir])
    events = sorted(benign_web(T0 + 300 * 60, 5, seed=5) + scanner_web(T0 + 301 * 60, 2), key=lambda e: e["@timestamp"])
    findings = run_stream(scorer, events)
    scanner = [f for f in findings if f.entity == {"source.ip": "203.0.113.9"}]
    assert len(scanner) == 2
    f = scanner[0]
    assert f.shadow is True and f.anomalous and f.score >= f.threshold
    assert f.window_end > f.window_start and f.event_count == 300
    assert 0 < len(f.evidence) <= 20 and f.evidence[0]["source.ip"] == "203.0.113.9"
    assert {"ratio_4xx", "requests"} & {t[0] for t in f.top_features}
    assert f.to_dict()["top_features"][0].keys() == {"name", "value", "baseline", "deviation"}
    # the second minute also knows what this address did in the first
    assert scanner[1].score >= scanner[0].score * 0.9
    assert sum(1 for x in findings if x.entity != {"source.ip": "203.0.113.9"}) <= 2


def test_a_scan_after_an_idle_flush_is_still_reported(model_dir):
    """The worker closes every open window when its partitions go quiet (advance(+inf), its idle
    flush); traffic after the quiet period must open new windows, not be dropped as late."""
    scorer = AnomalyScorer.from_dirs([model_dir])
    for e in benign_web(T0 + 600 * 60, 2, seed=7):
        scorer.process(e)
    scorer.advance(float("inf"))  # quiet: the idle flush
    findings = []
    for e in scanner_web(T0 + 700 * 60, 1):
        findings += scorer.process(e)
    findings += scorer.advance(T0 + 702 * 60)
    assert [f for f in findings if f.entity == {"source.ip": "203.0.113.9"} and f.anomalous]
    assert scorer.stats()["web.source/60s"]["late"] == 0


def test_finding_ids_are_deterministic_and_stage_follows_promotion(model_dir, tmp_path):
    events = scanner_web(T0 + 500 * 60, 1)
    first = run_stream(AnomalyScorer.from_dirs([model_dir]), events)
    again = run_stream(AnomalyScorer.from_dirs([model_dir]), events)
    assert [f.finding_id for f in first] == [f.finding_id for f in again] and first
    set_stage(model_dir, "live")
    try:
        scorer = AnomalyScorer.from_dirs([model_dir])
        live = run_stream(scorer, events)
        assert live and not live[0].shadow
        assert scorer.changed_dirs() == []
        set_stage(model_dir, "shadow")
        assert scorer.changed_dirs() == [str(model_dir)]
    finally:
        set_stage(model_dir, "shadow")


def test_advance_only_closes_finished_windows(model_dir):
    scorer = AnomalyScorer.from_dirs([model_dir])
    for e in scanner_web(T0 + 600 * 60, 1):
        assert scorer.process(e) == []
    assert scorer.advance(T0 + 600 * 60 + 30) == []
    assert len(scorer.advance(T0 + 601 * 60)) == 1
    late = scanner_web(T0 + 600 * 60, 1)[0]
    scorer.process(late)
    assert scorer.stats()["web.source/60s"]["late"] == 1


def test_events_of_other_datasets_and_garbage_are_ignored(model_dir):
    scorer = AnomalyScorer.from_dirs([model_dir])
    for e in (
        {"event.dataset": "system.auth", "source.ip": "1.2.3.4"},
        {},
        {"event.dataset": "apache.access"},
        {"event.dataset": "apache.access", "source.ip": "1.2.3.4", "@timestamp": "not a time"},
    ):
        assert scorer.process(e) == []
    assert scorer.flush() == []
    assert scorer.stats()["web.source/60s"]["untimed"] == 1


def test_per_request_model_reports_at_once(tmp_path):
    d = tmp_path / "req"
    save_model_dir(train("web.request", benign_web(T0, 120), kind="robust_baseline", fp_rate=0.02), d)
    scorer = AnomalyScorer.from_dirs([d])
    probe = scanner_web(T0, 1, rate=5)
    out = [f for e in probe for f in scorer.process(e)]
    assert len(out) >= 4 and all(f.window_start == f.window_end for f in out)
    assert len({f.finding_id for f in out}) == len(out)


def test_broken_model_dir_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError):
        AnomalyScorer.from_dirs([tmp_path / "nope"])
    with pytest.raises(ModelLoadError):
        AnomalyScorer.from_dirs([])


def test_metrics_and_labels():
    import numpy as np

    m = metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.7, 0.2]), 0.5)
    assert (m.precision, m.recall, m.fp_rate) == (0.5, 0.5, 0.5)
    rules = parse_labels("# c\n*.log,0\nscan.txt,1\nscan.txt,0,5:\n")
    rec = lambda name, i: Record({}, InputSpec(Path("/d") / name), i)  # noqa: E731
    assert label_of(rec("a.log", 0), rules) == 0
    assert label_of(rec("scan.txt", 4), rules) == 1 and label_of(rec("scan.txt", 5), rules) == 0
    assert label_of(rec("other", 0), rules) is None
    with pytest.raises(ValueError):
        parse_labels("a.log,yes\n")
    assert InputSpec.parse("x.gz@10:20") == InputSpec(Path("x.gz"), 10, 20)
    assert InputSpec.parse("a@b.log") == InputSpec(Path("a@b.log"))


# ------------------------------------------------------------------ CLI round trip
def write_jsonl(path: Path, events) -> str:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return str(path)


def test_cli_train_evaluate_score_promote(tmp_path):
    runner = CliRunner()
    train_file = write_jsonl(tmp_path / "benign.jsonl", benign_web(T0, 200))
    test_benign = write_jsonl(tmp_path / "test_benign.jsonl", benign_web(T0 + 300 * 60, 60, seed=8))
    test_scan = write_jsonl(tmp_path / "scan.jsonl", scanner_web(T0 + 320 * 60, 3))
    out = tmp_path / "model"
    r = runner.invoke(
        main, ["model", "train", "--dataset", "web", "--input", train_file, "--out", str(out), "--fp-rate", "0.02"]
    )
    assert r.exit_code == 0, r.output
    trained = json.loads(r.output)
    assert trained["stage"] == "shadow" and trained["kind"] == "isolation_forest"

    labels = tmp_path / "labels.csv"
    labels.write_text("test_benign.jsonl,0\nscan.jsonl,1\n")
    r = runner.invoke(
        main,
        [
            "model",
            "evaluate",
            "--model",
            str(out),
            "--input",
            test_benign,
            "--input",
            test_scan,
            "--labels",
            str(labels),
        ],
    )
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["per_window"]["positives"] == 3
    assert report["per_window"]["recall"] == 1.0
    assert report["per_window"]["pr_auc"] > 0.5

    r = runner.invoke(main, ["model", "score", "--model", str(out), "--input", test_scan])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.startswith('{"finding_id')]
    assert len(lines) == 3 and all(x["shadow"] for x in lines)

    r = runner.invoke(main, ["model", "promote", "--model", str(out)])
    assert r.exit_code == 0 and json.loads(r.output)["stage"] == "live"
    r = runner.invoke(main, ["model", "score", "--model", str(out), "--input", test_scan])
    assert all(not json.loads(x)["shadow"] for x in r.stdout.splitlines() if x.startswith('{"finding_id'))

    (out / "arrays.npz").write_bytes(b"tampered")
    r = runner.invoke(main, ["model", "score", "--model", str(out), "--input", test_scan])
    assert r.exit_code != 0 and "sha256" in r.output


def test_cli_errors_are_clear(tmp_path):
    runner = CliRunner()
    r = runner.invoke(main, ["model", "train", "--dataset", "nope", "--input", "x", "--out", str(tmp_path / "m")])
    assert r.exit_code != 0 and "--dataset" in r.output
    r = runner.invoke(
        main, ["model", "train", "--dataset", "web", "--input", str(tmp_path / "absent"), "--out", str(tmp_path / "m")]
    )
    assert r.exit_code != 0 and "no such input" in r.output


def _auth(ts, user, outcome, ip, host="db-1"):
    from detectors.common.times import iso_ms as iso

    return {
        "@timestamp": iso(ts),
        "event.dataset": "system.auth",
        "user.name": user,
        "event.outcome": outcome,
        "source.ip": ip,
        "organization.id": "agency-1",
        "host.name": host,
        "process.name": "sshd",
    }


@pytest.mark.parametrize("profile", ["auth.user", "host.activity"])
def test_auth_and_host_profiles_train_save_load_and_flag_a_burst(tmp_path, profile):
    import random

    rng = random.Random(3)
    day = 1_700_006_400.0
    benign = []
    for d in range(20):
        for h in (8, 9, 10, 14, 16):
            for user in ("an", "binh"):
                benign.append(
                    _auth(
                        day + d * 86400 + h * 3600 + rng.uniform(0, 3000),
                        user,
                        "success",
                        f"10.1.{rng.randint(0, 1)}.{rng.randint(2, 9)}",
                    )
                )
    model = train(profile, benign, window_seconds=600, kind="robust_baseline", fp_rate=0.05)
    save_model_dir(model, tmp_path / "m")
    scorer = AnomalyScorer.from_dirs([tmp_path / "m"])
    night = day + 30 * 86400 + 3 * 3600
    attack = [_auth(night + i, "an", "failure", "198.51.100.7") for i in range(40)]
    attack.append(_auth(night + 41, "an", "success", "198.51.100.7"))
    findings = run_stream(scorer, attack)
    assert findings and findings[0].anomalous
    names = {t[0] for t in findings[0].top_features}
    assert names & {
        "login_failures",
        "failure_ratio",
        "new_source_networks",
        "login_hour_rarity",
        "auth_failures",
        "auth_failure_ratio",
        "events_auth",
        "distinct_sources",
    }
