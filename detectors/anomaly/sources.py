"""Offline inputs -> events (the I/O edge of `socpipe model ...`).

An input is `PATH[@START:END]`: the optional record range (0-based, end exclusive) selects part of
a file, e.g. the first 70% of CSIC requests for training and the rest for testing. Formats are
detected from the first non-empty line: JSON lines of flat ECS events, CSIC raw HTTP requests, or
log lines handed to the normaliser (`detectors.normalise.parse_line`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from detectors.anomaly.csic import csic_events, looks_like_raw_http
from detectors.common.times import DEFAULT_TIMEZONE

log = logging.getLogger("socpipe.anomaly")
_RANGE = re.compile(r"@(\d*):(\d*)$")
MAX_LINE_CHARS = 64 * 1024


@dataclass(frozen=True, slots=True)
class InputSpec:
    path: Path
    start: int = 0
    end: int | None = None

    @property
    def label(self) -> str:
        if self.start == 0 and self.end is None:
            return str(self.path)
        return f"{self.path}@{self.start}:{'' if self.end is None else self.end}"

    @classmethod
    def parse(cls, spec: str) -> InputSpec:
        m = _RANGE.search(spec)
        if not m:
            return cls(Path(spec))
        start = int(m.group(1) or 0)
        end = int(m.group(2)) if m.group(2) else None
        if end is not None and end < start:
            raise ValueError(f"{spec}: record range end before start")
        return cls(Path(spec[: m.start()]), start, end)


@dataclass(slots=True)
class Record:
    event: dict[str, Any]
    input: InputSpec
    index: int  # record number within its file (0-based)


def _open_text(path: Path) -> Iterator[str]:
    raw = path.open("rb")
    head = raw.read(2)
    raw.seek(0)
    stream = gzip.open(raw) if head == b"\x1f\x8b" else raw
    return _decoded_lines(stream)


def _decoded_lines(stream: IO[bytes] | gzip.GzipFile | io.BufferedReader) -> Iterator[str]:
    with stream:
        for raw_line in stream:
            yield raw_line.decode("utf-8", errors="replace")[:MAX_LINE_CHARS]


def detect_format(path: Path) -> str:
    for line in _open_text(path):
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            return "jsonl"
        return "csic" if looks_like_raw_http(line) else "log"
    return "log"


def _log_events(path: Path, dataset: str | None, timezone: str) -> Iterator[dict[str, Any]]:
    try:
        from detectors.normalise import parse_line
    except ImportError as exc:  # the normaliser lands separately; JSON lines work without it
        raise RuntimeError(
            "log-line input needs detectors.normalise.parse_line; give JSON lines of events instead"
        ) from exc
    for line_no, line in enumerate(_open_text(path), 1):
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        try:
            yield parse_line(text, dataset=dataset, timezone=timezone, path=str(path), line_no=line_no)
        except Exception as exc:  # a bad line never stops the input
            log.warning("unparsed_line path=%s line=%d error=%r", path, line_no, exc)


def _jsonl_events(path: Path) -> Iterator[dict[str, Any]]:
    for line_no, line in enumerate(_open_text(path), 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            log.warning("bad_json path=%s line=%d", path, line_no)
            continue
        if isinstance(event, dict):
            yield event


def read_records(
    spec: InputSpec, fmt: str = "auto", dataset: str | None = None, timezone: str = DEFAULT_TIMEZONE
) -> Iterator[Record]:
    if not spec.path.is_file():
        raise FileNotFoundError(f"{spec.path}: no such input file")
    fmt = detect_format(spec.path) if fmt == "auto" else fmt
    if fmt == "jsonl":
        events: Iterator[dict[str, Any]] = _jsonl_events(spec.path)
    elif fmt == "csic":
        events = csic_events(_open_text(spec.path))
    elif fmt == "log":
        events = _log_events(spec.path, dataset, timezone)
    else:
        raise ValueError(f"unknown input format {fmt!r}")
    for i, event in enumerate(events):
        if i < spec.start:
            continue
        if spec.end is not None and i >= spec.end:
            break
        yield Record(event, spec, i)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def splits_report(metadata: dict[str, Any], inputs: Iterable[str]) -> dict[str, Any]:
    """Where every number comes from: the model's own training/threshold split, each evaluated input,
    and whether an evaluated range overlaps a training range of the same file (then it is not a test)."""
    trained = [t for t in metadata.get("inputs", []) if isinstance(t, dict) and "input" in t]
    spans = []
    for t in trained:
        p = InputSpec.parse(str(t["input"]))
        spans.append((t.get("sha256"), p.start, p.end))

    def overlaps(p: InputSpec) -> bool:
        sha = file_sha256(p.path)
        return any(
            sha == s and p.start < (e if e is not None else float("inf")) and (p.end is None or s0 < p.end)
            for s, s0, e in spans
        )

    evaluated = []
    for spec in inputs:
        p = InputSpec.parse(spec)
        row: dict[str, Any] = {"input": p.label, "sha256": file_sha256(p.path), "overlaps_training": overlaps(p)}
        made = p.path.parent / "SPLIT.json"  # written by `socpipe model attacks`
        if made.is_file():
            try:
                info = json.loads(made.read_text())
                carriers = InputSpec.parse(str(info["carriers"]))
                row["attack_split"] = {k: info.get(k) for k in ("split", "corpus", "carriers", "seed")}
                row["overlaps_training"] = row["overlaps_training"] or overlaps(carriers)
            except (OSError, ValueError, KeyError, TypeError):
                row["attack_split"] = "unreadable SPLIT.json"
        evaluated.append(row)
    training = metadata.get("training", {})
    return {
        "metrics_from": "per_record / per_window / per_input: the evaluated inputs below only; the threshold "
        "and fp_rate_calibration: threshold_split (part of the training inputs)",
        "training_inputs": [t.get("input") for t in trained],
        "threshold_split": training.get("split")
        or f"{training.get('calibration_windows')} held-out training windows (seed {training.get('seed')})",
        "evaluated_inputs": evaluated,
        "test_is_unseen": not any(e["overlaps_training"] for e in evaluated),
    }
