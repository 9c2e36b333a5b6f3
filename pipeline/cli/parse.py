"""`socpipe parse`: run the normaliser over a file, ECS JSON lines on stdout, a summary on stderr.

Events are printed flat (dotted keys, as the detectors see them); use `--nested` for the document
shape Elasticsearch stores.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from collectors.wire import DEFAULT_TIMEZONE, LineBatch, LogLine
from detectors.normalise.ecs import PARSE_FAILURE_TAG
from detectors.normalise.normaliser import Normaliser
from pipeline.cli.output import clean, clean_json

BATCH_LINES = 2000


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """{'source.ip': x} -> {'source': {'ip': x}}; a key that is both leaf and parent keeps the leaf
    under 'value' rather than being lost."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(".") if key != "@timestamp" else [key]
        node = out
        for part in parts[:-1]:
            nxt = node.get(part)
            if not isinstance(nxt, dict):
                nxt = {} if nxt is None else {"value": nxt}
                node[part] = nxt
            node = nxt
        if isinstance(node.get(parts[-1]), dict):
            node[parts[-1]]["value"] = value
        else:
            node[parts[-1]] = value
    return out


def read_batches(path: Path, dataset: str | None, timezone: str) -> Iterator[LineBatch]:
    """Stream the file as LineBatches with 1-based line numbers and byte offsets (binary-safe)."""
    opener = open
    if path.suffix == ".gz":
        import gzip

        opener = gzip.open  # type: ignore[assignment]
    read_at = time.time()
    with opener(path, "rb") as fh:
        lines: list[LogLine] = []
        offset = 0
        for n, raw in enumerate(fh, 1):
            flags: list[str] = []
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("utf-8", errors="replace")
                flags.append("invalid_utf8")
            lines.append(
                LogLine(text=text.rstrip("\r\n"), offset=offset, line_no=n, seq=n, read_at=read_at, flags=flags)
            )
            offset += len(raw)
            if len(lines) >= BATCH_LINES:
                yield LineBatch("local", "socpipe-parse", "localhost", str(path.resolve()), lines, dataset, timezone)
                lines = []
        if lines:
            yield LineBatch("local", "socpipe-parse", "localhost", str(path.resolve()), lines, dataset, timezone)


@click.command("parse")
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Log file to parse (.gz is read transparently).",
)
@click.option(
    "--dataset",
    default=None,
    help="Force a dataset (system.auth, auditd.log, apache.access...); detected per line when omitted.",
)
@click.option(
    "--timezone", default=DEFAULT_TIMEZONE, show_default=True, help="Time zone of timestamps that carry no offset."
)
@click.option("--nested/--flat", default=False, show_default=True, help="Nested ECS documents instead of dotted keys.")
def parse_command(input_path: Path, dataset: str | None, timezone: str, nested: bool) -> None:
    """Parse a log file into ECS JSON lines (stdout); summary on stderr."""
    normaliser = Normaliser(default_timezone=timezone)
    per_dataset: Counter[str] = Counter()
    lines = failures = events = 0
    out = sys.stdout
    started = time.perf_counter()

    def emit(batch_events: list[dict[str, Any]]) -> None:
        nonlocal events, failures
        for ev in batch_events:
            events += 1
            per_dataset[ev.get("event.dataset", "unknown")] += 1
            if PARSE_FAILURE_TAG in ev.get("tags", ()):
                failures += 1
            out.write(clean_json(json.dumps(nest(ev) if nested else ev, ensure_ascii=False, default=str)))
            out.write("\n")

    for batch in read_batches(input_path, dataset, timezone):
        lines += len(batch.lines)
        emit(normaliser.normalise_batch(batch))
    emit(normaliser.flush())
    elapsed = time.perf_counter() - started
    summary = {
        "lines": lines,
        "events": events,
        "parse_failures": failures,
        "events_per_dataset": dict(per_dataset.most_common()),
        "seconds": round(elapsed, 3),
    }
    click.echo(json.dumps(summary), err=True)


@click.command("fields")
@click.option("--dataset", "datasets", multiple=True, help="Only this dataset (repeat); default: all.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: dataset -> field -> {example, type}.")
def fields_command(datasets: tuple[str, ...], as_json: bool) -> None:
    """The fields each dataset's parsers emit, with an example value (generated from the parser
    examples in detectors/normalise/examples.yml, which the parser tests check)."""
    from detectors.normalise.reference import reference

    ref = reference()
    unknown = [d for d in datasets if d not in ref]
    if unknown:
        raise click.BadParameter(f"unknown dataset {', '.join(unknown)} (known: {', '.join(sorted(ref))})")
    chosen = {d: ref[d] for d in sorted(ref) if not datasets or d in datasets}
    if as_json:
        payload = {
            d: {f.name: {"example": f.example, "type": f.type} for f in sorted(fields.values(), key=lambda f: f.name)}
            for d, fields in chosen.items()
        }
        click.echo(clean_json(json.dumps(payload, indent=2, ensure_ascii=False, default=str)))
        return
    for dataset, fields in chosen.items():
        click.echo(f"{dataset}  ({len(fields)} fields)")
        width = max(len(f) for f in fields)
        for f in sorted(fields.values(), key=lambda f: f.name):
            example = json.dumps(f.example, ensure_ascii=False, default=str)
            if len(example) > 70:
                example = example[:67] + "..."
            click.echo(f"  {f.name:<{width}}  {f.type:<16} {clean(example)}")
        click.echo("")


COMMANDS: list[click.Command] = [parse_command, fields_command]
