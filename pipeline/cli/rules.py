"""`socpipe rules lint|test|regress` and `socpipe scan`: the detection engine from the command line.

All three use the production engine (detectors.sigma) so what passes here behaves the same in
the detector workers.
"""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from collectors.timezone import DEFAULT_TIMEZONE
from pipeline.cli.output import clean, clean_json

if TYPE_CHECKING:  # for annotations only: the commands import these when they run
    from detectors.alerts.episodes import OpenEpisode
    from detectors.sigma.detection import Detection

DEFAULT_RULES = ("rules",)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """For a start: imports and rule loading allocate objects that mostly live to the end (modules,
    documents, compiled rules), which the cyclic collector would walk again and again for nothing
    (~10-20 ms of a start). Paused meanwhile; what was built is then frozen out of later collections."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


@click.group("rules")
def rules_group() -> None:
    """Validate and test Sigma rules."""


@rules_group.command("lint")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON report on stdout.")
def lint_command(paths: tuple[str, ...], as_json: bool) -> None:
    """Load and validate rules; per problem: file, line, rule, why; 'loaded N of M'."""
    with _collector_paused():  # the imports and the load (see _collector_paused)
        from detectors.sigma import load_rules, ruledocs
        from detectors.sigma.fieldcheck import field_warnings

        with ruledocs.document_cache().saving():  # one write of the rule cache, not one per step
            result = load_rules(list(paths or DEFAULT_RULES))
            result.warnings.extend(field_warnings(result.rules))
    total = result.documents
    if as_json:
        click.echo(
            json.dumps(
                {
                    "loaded": result.loaded,
                    "total": total,
                    "files": result.files,
                    "errors": [vars(e) for e in result.errors],
                    "warnings": [vars(w) for w in result.warnings],
                },
                indent=2,
            )
        )
    else:
        for issue in result.errors:
            click.echo(clean(f"ERROR {issue}"))
        for issue in result.warnings:
            click.echo(clean(f"WARN  {issue}"))
        pct = 100.0 * result.loaded / total if total else 100.0
        click.echo(
            f"loaded {result.loaded} of {total} rules ({pct:.1f}%) from {result.files} "
            f"files; {len(result.errors)} errors, {len(result.warnings)} warnings"
        )
    sys.exit(1 if result.errors else 0)


@rules_group.command("test")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--require-coverage/--no-require-coverage",
    default=True,
    show_default=True,
    help="Fail when a rule file lacks tests or a positive/negative case.",
)
def test_command(paths: tuple[str, ...], require_coverage: bool) -> None:
    """Run the rule tests (*.tests.yml next to each rule) through the engine."""
    from detectors.sigma.testing import coverage_problems, run_tests

    targets = list(paths or DEFAULT_RULES)
    results = run_tests(targets)
    failed = [r for r in results if not r.passed]
    for r in results:
        mark = "SKIP" if r.kind == "skipped" else "PASS" if r.passed else "FAIL"
        click.echo(clean(f"{mark} {r.file} :: {r.name}" + (f" -- {r.message}" if r.message else "")))
    problems = coverage_problems(targets, results) if require_coverage else []
    for p in problems:
        click.echo(clean(f"MISSING {p}"))
    click.echo(
        f"{len(results) - len(failed)} of {len(results)} rule test cases passed"
        + (f"; {len(problems)} coverage problems" if problems else "")
    )
    sys.exit(1 if failed or problems or not results else 0)


@rules_group.command("regress")
@click.argument("samples", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--rules",
    "rule_paths",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Rule files or folders (repeatable; default: rules).",
)
@click.option("--all", "show_all", is_flag=True, help="Also list the samples whose rule fired.")
@click.option("--json", "as_json", is_flag=True, help="One JSON report on stdout.")
def regress_command(samples: tuple[Path, ...], rule_paths: tuple[Path, ...], show_all: bool, as_json: bool) -> None:
    """Replay SigmaHQ regression samples (regression_data/: a real event recorded for a rule, named
    after the rule's id, with its info.yml) through the normaliser and engine: does each rule fire?
    A silent rule on its own real event is a field-mapping or normalisation gap."""
    with _collector_paused():
        from detectors.sigma import Engine, load_rules
        from detectors.sigma.regression import read_samples, replay, sample_events

        loaded = load_rules([str(p) for p in rule_paths] or list(DEFAULT_RULES))
        engine = Engine(loaded.rules)
        titles = {r.meta.id: r.meta.title for r in loaded.rules}
    read = read_samples(samples)

    outcomes = replay(read, engine, set(titles), sample_events)
    counts = {k: sum(1 for o in outcomes if o.status == k) for k in ("fired", "silent", "unknown-rule", "unreadable")}
    if as_json:
        click.echo(json.dumps({"counts": counts, "samples": [vars(o) for o in outcomes]}, indent=2))
    else:
        for o in outcomes:
            if o.status == "fired" and not show_all:
                continue
            what = {
                "fired": f"fired {o.matches} (asked {o.expected})",
                "silent": f"matched {o.matches} of {o.expected}"
                + (f"; fired instead: {', '.join(o.other_rules[:5])}" if o.other_rules else ""),
                "unknown-rule": o.message,
                "unreadable": o.message,
            }[o.status]
            title = titles.get(o.rule_id, o.rule_id)
            click.echo(clean(f"{o.status.upper():12} {o.path} :: {title} -- {what}"))
        ran = counts["fired"] + counts["silent"]
        click.echo(
            f"{counts['fired']} of {ran} samples fired their rule; {counts['unknown-rule']} name no loaded rule, "
            f"{counts['unreadable']} unreadable; {len(loaded.rules)} rules ({len(loaded.errors)} rule errors)"
        )
    sys.exit(1 if counts["silent"] or counts["unreadable"] else 0)


@click.command("scan")
@click.option(
    "--rules",
    "rule_paths",
    multiple=True,
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="Rule file or directory (repeat).",
)
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Log file.",
)
@click.option("--dataset", default=None, help="Force the dataset (system.auth, apache.access...).")
@click.option("--timezone", default=DEFAULT_TIMEZONE, show_default=True)
@click.option("--lateness", default=60.0, show_default=True, help="Allowed lateness (seconds).")
@click.option("--agency", default=None, help="organization.id to stamp on events.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="detector.yaml: its episode settings (episode_quiet_s, episode_max_s), as the workers use them.",
)
def scan_command(
    rule_paths: tuple[str, ...],
    input_path: Path,
    dataset: str | None,
    timezone: str,
    lateness: float,
    agency: str | None,
    config_path: str | None,
) -> None:
    """Offline/backfill: parse FILE, run it through the engine on event time, and print the alert
    documents the detector workers would index (JSON lines): repeats of one rule and group folded
    into one growing alert per episode, exactly as in the stream."""
    with _collector_paused():  # the imports, the configuration and the rules live to the end
        from detectors.alerts.plan import AlertPlanner, Offer
        from detectors.normalise import Normaliser
        from detectors.sigma import Engine, load_rules
        from detectors.sigma.scan import scan_events
        from pipeline.cli.parse import read_batches
        from pipeline.config import ConfigError, load_config
        from pipeline.detector_config import DetectorConfig

        try:
            cfg = load_config(DetectorConfig, config_path)
            cfg.validate()
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
        loaded = load_rules(list(rule_paths))
        engine = Engine(loaded.rules, allowed_lateness=lateness)
        normaliser = Normaliser(default_timezone=timezone, max_processes=cfg.process_context_max)
    # the events (acyclic dicts, freed by reference counting) need not trigger the collector every
    # 700 allocations
    gc.set_threshold(max(gc.get_threshold()[0], 10_000))
    planner = AlertPlanner(cfg.episode_quiet_s, cfg.episode_max_s)
    written = 0

    def write(ep: OpenEpisode) -> None:
        nonlocal written
        written += 1
        doc = _dotted_alert(planner.document(ep))
        click.echo(clean_json(json.dumps(doc, default=str, ensure_ascii=False)))

    def offer(det: Detection) -> None:
        for ep in planner.offer(Offer.of_detection(det))[2]:
            write(ep)

    for issue in loaded.errors:
        click.echo(clean(f"rule error: {issue}"), err=True)

    def events() -> Iterator[dict[str, Any]]:
        for batch in read_batches(input_path, dataset, timezone):
            for ev in normaliser.normalise_batch(batch):
                if agency:
                    ev["organization.id"] = agency
                yield ev
        for ev in normaliser.flush():
            yield ev

    summary = scan_events(engine, events(), offer)
    for ep in planner.finish():
        write(ep)
    click.echo(
        f"scan: {summary['events']} events, {summary['alerts']} detections, {written} alerts, "
        f"{len(loaded.rules)} rules ({len(loaded.errors)} rule errors)",
        err=True,
    )


def _dotted_alert(doc: dict[str, Any]) -> dict[str, Any]:
    """An alert document with dotted keys, evidence too (the `_id` kept)."""
    from detectors.alerts import to_flat

    flat = to_flat(doc)
    flat["socpipe.evidence"] = [to_flat(e) for e in doc.get("socpipe", {}).get("evidence", [])]
    return flat


COMMANDS: list[click.Command] = [rules_group, scan_command]
