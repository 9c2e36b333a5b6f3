"""`socpipe detect dead-letters list|replay`: the dead-letter topic for SOC operators.

`list` shows what the workers could not process (when, why, where in the topic, a summary per kind);
`replay` writes given-up episode growth back into its alert through the worker's own episode path
(`pipeline.worker.replay`), dry run unless `--apply`. Both read the topic with the SOC's Kafka settings
of detector.yaml and no consumer group: nothing is committed, no worker's group is touched.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from pipeline.cli.output import clean, clean_json, table_row

CONFIG_HELP = "detector.yaml (the dead-letter topic, Kafka and Elasticsearch settings; SOCPIPE_* variables override)."
SINCE_HELP = "Only letters written since: ISO time or relative (30m, 24h, 7d)."
LIST_COLUMNS = [("TIME", 24), ("AT", 9), ("KIND", 17), ("REASON", 34), ("SUMMARY", 0)]
REPLAY_COLUMNS = [("LETTERS", 14), ("OUTCOME", 14), ("MESSAGE", 0)]


def _since(text: str | None) -> float | None:
    if text is None:
        return None
    from detectors.common.times import to_epoch
    from pipeline.elastic.triage import resolve_time

    try:
        return to_epoch(resolve_time(text))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None


def _read(cfg: Any, since: float | None, tail: int | None) -> list[Any]:
    """The topic's letters (pipeline.worker.dead_letters.DeadLetter); exit 1 with one line if Kafka fails
    (did not answer, refused the credentials, did not allow it: `start_guard`'s wording)."""
    from pipeline import kafka_io
    from pipeline.cli.startup import start_guard
    from pipeline.worker.dead_letters import DeadLetter

    with start_guard(kafka=cfg.kafka.bootstrap, doing=f"read {cfg.dead_letter_topic}"):
        records = kafka_io.read_records(cfg.kafka, cfg.dead_letter_topic, since, tail)
    return [DeadLetter(r.partition, r.offset, r.timestamp, list(r.headers or ()), r.value) for r in records]


@click.group("dead-letters")
def dead_letters() -> None:
    """What the detector workers could not process (the dead-letter topic): list it, replay given-up
    episode growth into its alert."""


@dead_letters.command("list")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, help=CONFIG_HELP)
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True, help="The latest N letters.")
@click.option("--reason", default=None, help="Only this reason, or reasons starting with it ('cannot build alert').")
@click.option(
    "--kind", type=click.Choice(["episode_growth", "finding", "event", "correlation_input", "other", "unreadable"])
)
@click.option("--since", default=None, help=SINCE_HELP)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_letters(
    config_path: str | None, limit: int, reason: str | None, kind: str | None, since: str | None, as_json: bool
) -> None:
    """Dead letters, latest last: when, partition:offset, kind, the worker's reason and a summary."""
    from pipeline.cli.detect import _load
    from pipeline.worker.dead_letters import letter_row, select_rows

    cfg = _load(config_path)
    since_ts = _since(since)
    # without a filter only the last `limit` of each partition can be among the latest `limit`
    tail = limit if reason is None and kind is None else None
    rows = select_rows([letter_row(x) for x in _read(cfg, since_ts, tail)], reason=reason, kind=kind, limit=limit)
    if as_json:
        for r in rows:
            click.echo(clean_json(json.dumps(r, ensure_ascii=False)))
        return
    if not rows:
        given = [
            f"with reason {reason}" if reason else "",
            f"of kind {kind}" if kind else "",
            f"since {since}" if since else "",
        ]
        click.echo(clean(" ".join([f"no dead letters in {cfg.dead_letter_topic}", *filter(None, given)])))
        return
    click.echo(table_row(LIST_COLUMNS, [c for c, _ in LIST_COLUMNS]))
    for r in rows:
        click.echo(
            table_row(
                LIST_COLUMNS,
                [r["time"], f"{r['partition']}:{r['offset']}", r["kind"], r["reason"] or "-", r["summary"]],
            )
        )


def _at(values: tuple[str, ...]) -> set[tuple[int, int]]:
    out = set()
    for v in values:
        part, _, off = v.partition(":")
        if not (part.isdigit() and off.isdigit()):
            raise click.BadParameter(f"{v!r} is not PARTITION:OFFSET (as `list` shows them)", param_hint="--at")
        out.add((int(part), int(off)))
    return out


@dead_letters.command("replay")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, help=CONFIG_HELP)
@click.option("--apply", is_flag=True, help="Write to Elasticsearch. Without it: a dry run saying what it would do.")
@click.option("--at", "at", multiple=True, help="Only the letter at PARTITION:OFFSET (repeatable; `list` shows them).")
@click.option("--alert", "alert_id", default=None, help="Only the letters of this alert id.")
@click.option("--since", default=None, help=SINCE_HELP)
@click.option(
    "--partial",
    is_flag=True,
    help="With --apply, also write an alert's growth some of whose parts are not among the letters read "
    "(lost): those parts can no longer be replayed into it afterwards.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per letter (or per alert's parts).")
def replay(
    config_path: str | None,
    apply: bool,
    at: tuple[str, ...],
    alert_id: str | None,
    since: str | None,
    partial: bool,
    as_json: bool,
) -> None:
    """Merge given-up episode growth (kind episode_growth) into its alert, as the worker would have had
    Elasticsearch answered at its stop; idempotent (what the alert holds already is not added again).
    Letters of other kinds are listed as skipped. Exit 1 if any letter failed or must be tried again."""
    from pipeline.cli.detect import _agency_lookup, _load
    from pipeline.cli.startup import start_guard
    from pipeline.elastic import AlertIndexer, connect
    from pipeline.elastic.episodes import EpisodeWriter
    from pipeline.elastic.incidents import IncidentStore
    from pipeline.worker.replay import GrowthReplay
    from pipeline.worker.sink import AlertSink
    from pipeline.worker_metrics import WorkerMetrics

    cfg = _load(config_path)
    since_ts, wanted = _since(since), _at(at)
    letters = [
        x
        for x in _read(cfg, since_ts, None)
        if (not wanted or (x.partition, x.offset) in wanted) and (alert_id is None or x.header("alert_id") == alert_id)
    ]
    if not letters:
        click.echo(f"no dead letters to replay in {cfg.dead_letter_topic}", err=True)
        return
    es = connect(cfg.es)
    prefix = cfg.es.index_prefix
    with start_guard(es=cfg.es.url):  # unreachable or refusing the credential: one line, exit 1
        es.count(index=f"{prefix}-alerts-*", ignore_unavailable=True, allow_no_indices=True)
    indexer = AlertIndexer(es, prefix=prefix, chunk_docs=cfg.bulk_docs)
    refused: list[str] = []

    def taken() -> list[str]:
        out = list(refused)
        refused.clear()
        return out

    # the worker's sink, built as DetectorWorker builds it (no notifications: a replay is not news);
    # what it would dead-letter again is reported on the letter's row instead
    sink = AlertSink(
        indexer,
        WorkerMetrics(),
        lambda payload, reason: refused.append(reason),
        episodes=EpisodeWriter(es, indexer, cfg.episode_quiet_s, cfg.episode_max_s, refresh="wait_for"),
        incidents=IncidentStore(es, prefix, cfg.incident_window_s) if cfg.incident_window_s > 0 else None,
        agency_lookup=_agency_lookup(cfg.inventory),
    )
    assert sink.episode_sink is not None

    def record_ends(sources: set[str]) -> dict[str, int]:
        from pipeline import kafka_io

        with start_guard(kafka=cfg.kafka.bootstrap, doing="check the letters' records in Kafka"):
            return kafka_io.record_ends(cfg.kafka, sources)

    replay = GrowthReplay(sink.episode_sink, f"{prefix}-alerts-", taken, partial=partial, record_ends=record_ends)
    rows = replay.run(letters, apply=apply)
    if as_json:
        for r in rows:
            click.echo(clean_json(json.dumps({**r.as_dict(), "applied": apply}, ensure_ascii=False)))
    else:
        click.echo(table_row(REPLAY_COLUMNS, [c for c, _ in REPLAY_COLUMNS]))
        for r in rows:
            click.echo(table_row(REPLAY_COLUMNS, [",".join(r.letters), r.outcome, r.message]))
        growth = [r for r in rows if r.outcome != "skipped"]
        tail = "" if apply else " (dry run: nothing written; --apply writes it)"
        click.echo(
            f"{len(growth)} episode growth replay(s), {len(rows) - len(growth)} letter(s) of other kinds skipped, "
            f"{sum(r.failed for r in rows)} failed{tail}"
        )
    if any(r.failed for r in rows):
        sys.exit(1)
