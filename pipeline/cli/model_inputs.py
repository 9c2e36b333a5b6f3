"""Where `socpipe model` commands get their events: files given with --input (log lines, JSON lines
of events or CSIC raw requests, each with an optional @START:END range) or, for `model train
--from-kafka`, the raw topic read from a point in time and normalised as the workers do."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

from collectors.wire import DEFAULT_TIMEZONE
from pipeline.config import KafkaConfig

if TYPE_CHECKING:  # for annotations only: the commands import it when they run
    from detectors.anomaly.sources import Record

log = logging.getLogger("socpipe.anomaly")

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = ("auto", "log", "jsonl", "csic")


@dataclass
class TrainConfig:
    """`model train --from-kafka --config FILE`: the file's `kafka:` section (SOCPIPE_KAFKA_* override).
    At module level: the config loader resolves the field types by name in this module."""

    kafka: KafkaConfig = field(default_factory=KafkaConfig)


def read_inputs(specs: tuple[str, ...], fmt: str, log_dataset: str | None, timezone: str) -> list[Record]:
    from detectors.anomaly.sources import InputSpec, read_records

    records: list[Record] = []
    for spec in specs:
        try:
            parsed = InputSpec.parse(spec)
            records.extend(read_records(parsed, fmt, log_dataset, timezone))
        except (OSError, ValueError, RuntimeError) as exc:
            raise click.ClickException(f"{spec}: {exc}") from exc
    return records


_input_options = [
    click.option(
        "--input",
        "inputs",
        multiple=True,
        metavar="FILE[@START:END]",
        help="Log file (.gz ok), JSON lines of events or CSIC raw requests; @A:B keeps records A..B-1.",
    ),
    click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True),
    click.option("--log-dataset", default=None, help="Dataset hint for log lines, e.g. apache.access."),
    click.option(
        "--timezone", default=DEFAULT_TIMEZONE, show_default=True, help="Zone of log lines without an offset."
    ),
]


def input_options(f: F) -> F:
    for opt in reversed(_input_options):
        f = opt(f)
    return f


def _parse_since(since: str) -> float:
    from detectors.common import parse_duration

    try:
        return parse_duration(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from exc


def kafka_events(config_path: str | None, topic: str, since: str) -> list[dict[str, Any]]:
    """Every raw LineBatch since `since`, normalised: training straight from the pipeline."""
    from collectors.wire import LineBatch
    from detectors.normalise import Normaliser
    from pipeline import kafka_io
    from pipeline.config import ConfigError, load_config

    seconds = _parse_since(since)
    try:
        cfg = load_config(TrainConfig, config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    normaliser = Normaliser()
    events: list[dict[str, Any]] = []
    try:
        for partition, offset, value in kafka_io.read_since(cfg.kafka, topic, time.time() - seconds):
            try:
                events.extend(normaliser.normalise_batch(LineBatch.from_bytes(value)))
            except Exception as exc:  # one bad record never stops training input
                log.warning("bad_raw_record partition=%s offset=%s error=%r", partition, offset, exc)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from exc
    events.extend(normaliser.flush())
    return events
