"""`socpipe model train|evaluate|score|promote|show`: the anomaly model lifecycle.

Offline scoring and evaluation run the same `AnomalyScorer` as the detector workers: events in
event-time order, windows closed by the watermark, flushed at the end of the input.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from collectors.wire import RAW_TOPIC
from pipeline.cli.model_inputs import input_options, kafka_events, read_inputs

if TYPE_CHECKING:  # for annotations only: the commands import these when they run
    from detectors.anomaly import AnomalyScorer

DATASET_ALIASES = {"web": "web.source", "host": "host.activity", "auth": "auth.user"}
# Measured (see detectors/anomaly/README.md): the forest wins on source windows (PR-AUC 0.97 vs
# 0.75); per-parameter request profiles win per request (CSIC 2010 test split: F1 0.38 -> see README).
KINDS = ("isolation_forest", "robust_baseline", "request_profile")
DEFAULT_KIND = {
    "web.source": "isolation_forest",
    "web.request": "request_profile",
    "host.activity": "robust_baseline",
    "auth.user": "robust_baseline",
}


def _profile_name(dataset: str) -> str:
    from detectors.anomaly import PROFILES

    name = DATASET_ALIASES.get(dataset, dataset)
    if name not in PROFILES:
        raise click.BadParameter(
            f"{dataset!r}: one of {sorted(set(DATASET_ALIASES) | set(PROFILES))}", param_hint="--dataset"
        )
    return name


def _load(model_dirs: tuple[str, ...], report_all: bool = False) -> AnomalyScorer:
    from detectors.anomaly import AnomalyScorer, ModelLoadError

    try:
        return AnomalyScorer.from_dirs(model_dirs, report_all=report_all)
    except ModelLoadError as exc:
        raise click.ClickException(f"cannot load model: {exc}") from exc


@click.group("model")
def model() -> None:
    """Anomaly models: train on attack-free data, evaluate on labelled data, score, promote."""


@model.command("train")
@click.option(
    "--dataset",
    required=True,
    help="Dataset family / profile: web (=web.source), web.request, host (=host.activity), auth (=auth.user).",
)
@input_options
@click.option("--from-kafka", is_flag=True, help="Read LineBatches from Kafka (--topic) instead of files.")
@click.option("--since", default="7d", show_default=True, help="With --from-kafka: how far back (e.g. 12h, 7d).")
@click.option("--topic", default=RAW_TOPIC, show_default=True, help="With --from-kafka: the raw topic to read.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="With --from-kafka: YAML with a `kafka:` section (env overrides apply).",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Model directory to write.")
@click.option("--window", default=60, show_default=True, help="Window length in seconds.")
@click.option(
    "--kind",
    type=click.Choice(KINDS),
    default=None,
    help="Default: isolation_forest for web.source, request_profile for web.request, robust_baseline otherwise.",
)
@click.option("--fp-rate", default=0.01, show_default=True, help="Target false-positive rate of the threshold.")
@click.option("--agency", default=None, help="Train and score only this organization.id.")
@click.option("--name", default=None, help="Model name (default: <profile>-<window>s).")
@click.option("--seed", default=7, show_default=True)
@click.option("--live", is_flag=True, help="Write the model as live instead of shadow.")
def train_cmd(
    dataset: str,
    inputs: tuple[str, ...],
    fmt: str,
    log_dataset: str | None,
    timezone: str,
    from_kafka: bool,
    since: str,
    topic: str,
    config_path: str | None,
    out: str,
    window: int,
    kind: str | None,
    fp_rate: float,
    agency: str | None,
    name: str | None,
    seed: int,
    live: bool,
) -> None:
    """Train a model on attack-free events and write a versioned, hashed model directory."""
    from detectors.anomaly import save_model_dir, train
    from detectors.anomaly.sources import InputSpec, file_sha256

    profile = _profile_name(dataset)
    if bool(inputs) == from_kafka:
        raise click.UsageError("give either --input FILE... or --from-kafka")
    if from_kafka:
        events = kafka_events(config_path, topic, since)
        provenance: list[dict[str, Any]] = [{"kafka": topic, "since": since}]
    else:
        records = read_inputs(inputs, fmt, log_dataset, timezone)
        events = [r.event for r in records]
        provenance = []
        for spec in inputs:
            p = InputSpec.parse(spec)
            provenance.append({"input": p.label, "sha256": file_sha256(p.path)})
    kind = kind or DEFAULT_KIND[profile]
    started = time.perf_counter()
    try:
        m = train(
            profile, events, window_seconds=window, kind=kind, fp_rate=fp_rate, name=name, agency=agency, seed=seed
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    digest = save_model_dir(m, out, inputs=provenance, stage="live" if live else "shadow")
    t = m.metadata["training"]
    click.echo(
        json.dumps(
            {
                "model": m.name,
                "version": m.version,
                "dir": out,
                "digest": digest,
                "kind": m.kind,
                "profile": profile,
                "window_seconds": m.window_seconds,
                "stage": "live" if live else "shadow",
                "events": t["events"],
                "windows": t["windows"],
                "threshold": round(m.threshold, 6),
                "fp_rate_calibration": round(t["fp_rate_calibration"], 4),
                "seconds": round(time.perf_counter() - started, 2),
            }
        )
    )


@model.command("evaluate")
@click.option("--model", "model_dir", required=True, type=click.Path(file_okay=False))
@input_options
@click.option(
    "--labels",
    "labels_path",
    required=True,
    type=click.Path(dir_okay=False, exists=True),
    help="CSV lines 'pattern,0|1[,start:end]' matched to input names (see evaluation.py).",
)
def evaluate_cmd(
    model_dir: str, inputs: tuple[str, ...], fmt: str, log_dataset: str | None, timezone: str, labels_path: str
) -> None:
    """Precision, recall, F1 and PR-AUC per window and per record on labelled inputs."""
    from detectors.anomaly.evaluation import evaluate, label_of, parse_labels
    from detectors.anomaly.sources import splits_report

    if not inputs:
        raise click.UsageError("give at least one --input")
    scorer = _load((model_dir,))
    try:
        rules = parse_labels(Path(labels_path).read_text())
    except ValueError as exc:
        raise click.ClickException(f"{labels_path}: {exc}") from exc
    records = read_inputs(inputs, fmt, log_dataset, timezone)
    labels = [label_of(r, rules) for r in records]
    report = evaluate(scorer.models[0], records, labels)
    report["records_unlabelled"] = sum(1 for x in labels if x is None)
    report["splits"] = splits_report(scorer.models[0].metadata, inputs)
    click.echo(json.dumps(report, indent=1))


@model.command("attacks")
@click.option(
    "--carriers",
    required=True,
    metavar="FILE[@START:END]",
    help="Normal requests (CSIC raw HTTP) the payloads are placed into: a range no model trained on.",
)
@click.option("--split", type=click.Choice(["validation", "test"]), required=True)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory for <family>.txt files.")
@click.option("--per-payload", default=2, show_default=True, help="Attack requests per payload.")
@click.option("--seed", default=11, show_default=True)
def attacks_cmd(carriers: str, split: str, out: str, per_payload: int, seed: int) -> None:
    """Labelled attack requests from a published payload corpus (see detectors/anomaly/attacks.py)."""
    from detectors.anomaly.attacks import corpus_dir, corpus_version, load_payloads, make_attacks

    records = read_inputs((carriers,), "csic", None, "UTC")
    try:
        payloads = load_payloads(corpus_dir())
    except (RuntimeError, OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        made = make_attacks([r.event for r in records], payloads, split, per_payload=per_payload, seed=seed)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    counts = {}
    for family, raws in sorted(made.items()):
        (d / f"{family}.txt").write_text("".join(raws), encoding="utf-8")
        counts[family] = len(raws)
    (d / "labels.csv").write_text("# every request in these files is an attack\n*.txt,1\n")
    summary = {
        "split": split,
        "carriers": carriers,
        "corpus": corpus_version(),
        "payloads": sum(1 for p in payloads if p.split == split),
        "requests": counts,
        "seed": seed,
    }
    (d / "SPLIT.json").write_text(json.dumps(summary, indent=1) + "\n")
    click.echo(json.dumps(summary))


@model.command("score")
@click.option("--model", "model_dirs", required=True, multiple=True, type=click.Path(file_okay=False))
@input_options
@click.option("--all", "report_all", is_flag=True, help="Also print windows below the threshold.")
@click.option(
    "--lateness",
    default=0.0,
    show_default=True,
    help="Seconds the watermark trails the newest event (0: inputs are sorted by time first).",
)
def score_cmd(
    model_dirs: tuple[str, ...],
    inputs: tuple[str, ...],
    fmt: str,
    log_dataset: str | None,
    timezone: str,
    report_all: bool,
    lateness: float,
) -> None:
    """Findings as JSON lines on stdout (the streaming engine over files); a summary on stderr."""
    from detectors.anomaly import event_epoch

    if not inputs:
        raise click.UsageError("give at least one --input")
    scorer = _load(model_dirs, report_all=report_all)
    records = read_inputs(inputs, fmt, log_dataset, timezone)
    events = [r.event for r in records]
    if lateness <= 0:
        events.sort(key=lambda e: event_epoch(e) or 0.0)
    out = sys.stdout
    written = 0
    newest = float("-inf")
    started = time.perf_counter()
    for e in events:
        findings = scorer.process(e)
        ts = event_epoch(e)
        if ts is not None and ts > newest:
            newest = ts
            findings += scorer.advance(newest - lateness)
        for f in findings:
            out.write(json.dumps(f.to_dict(), ensure_ascii=False) + "\n")
            written += 1
    for f in scorer.flush():
        out.write(json.dumps(f.to_dict(), ensure_ascii=False) + "\n")
        written += 1
    elapsed = time.perf_counter() - started
    click.echo(
        json.dumps({"events": len(events), "findings": written, "seconds": round(elapsed, 3), "stats": scorer.stats()}),
        err=True,
    )


@model.command("promote")
@click.option("--model", "model_dir", required=True, type=click.Path(file_okay=False))
@click.option("--shadow", "to_shadow", is_flag=True, help="Demote back to shadow instead.")
@click.option("--note", default="", help="Why (kept in stage.json).")
def promote_cmd(model_dir: str, to_shadow: bool, note: str) -> None:
    """Make a verified model live (it alerts) or put it back in shadow mode (it only reports)."""
    from detectors.anomaly import ModelLoadError, load_model_dir, set_stage

    try:
        m = load_model_dir(model_dir)  # never promote something that would not load
    except ModelLoadError as exc:
        raise click.ClickException(f"cannot promote: {exc}") from exc
    stage = "shadow" if to_shadow else "live"
    set_stage(model_dir, stage, note)
    click.echo(json.dumps({"model": m.name, "version": m.version, "stage": stage, "digest": m.metadata["digest"]}))


@model.command("show")
@click.option("--model", "model_dir", required=True, type=click.Path(file_okay=False))
def show_cmd(model_dir: str) -> None:
    """Verified metadata of a model directory."""
    from detectors.anomaly import ModelLoadError, load_model_dir
    from detectors.anomaly.request_profile import POINTS

    try:
        m = load_model_dir(model_dir)
    except ModelLoadError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        json.dumps(
            {
                "name": m.name,
                "version": m.version,
                "kind": m.kind,
                "profile": m.profile.name,
                "window_seconds": m.window_seconds,
                "agency": m.agency,
                "stage": "shadow" if m.shadow else "live",
                **({"points_per_property": POINTS} if m.requests is not None else {"features": list(m.feature_names)}),
                "thresholds": {"alert": m.threshold, "high": m.high_threshold},
                **m.metadata,
            },
            indent=1,
        )
    )


COMMANDS: list[click.Command] = [model]
