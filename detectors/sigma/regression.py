"""SigmaHQ's regression samples run through socpipe: does each rule fire on the real event recorded for it?

SigmaHQ keeps, next to many rules, a real event recorded on Windows (`regression_data/<rules folder>/
.../<rule folder>/<rule id>.json`: the JSON the `evtx` crate renders of an EVTX record, `{"Event":
{"System": ..., "EventData": ...}}`, one object or one per line) and an `info.yml` naming the rule and
how many matches it expects. Run through socpipe's own normaliser, field mappings and engine, a sample
whose rule does not fire shows a mapping or normalisation gap on real data, which a rule's own test
cases (written by us, in the shape we expect) cannot show.

Pure logic: reading sample files is the only I/O (`read_samples`); the caller gives the engine and the
normalising step (`sample_events`: the production normaliser, one per sample).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from detectors.sigma.yamlsafe import RuleYAMLError, load_one

if TYPE_CHECKING:
    from detectors.sigma.detection import Detection

SAMPLE_SUFFIXES = (".json", ".ndjson", ".jsonl")


@dataclass
class Sample:
    path: Path
    rule_id: str
    expected: int  # matches the info file asks for (at least); 1 without one
    lines: list[str] = field(default_factory=list)  # one forwarded JSON line per event
    error: str = ""  # why the sample could not be read


@dataclass
class Outcome:
    path: str
    rule_id: str
    status: str  # "fired" | "silent" | "unknown-rule" | "unreadable"
    expected: int
    matches: int = 0
    other_rules: list[str] = field(default_factory=list)  # titles of the other rules that fired
    message: str = ""


def _events(text: str) -> list[Any]:
    """One JSON document, or several one after another: one per line (SigmaHQ's `ndjson`/`jsonl`) or
    pretty-printed back to back (what `evtx_dump -o json` writes for a file of several records)."""
    try:
        doc = orjson.loads(text)
        return doc if isinstance(doc, list) else [doc]
    except orjson.JSONDecodeError:
        pass
    decoder = json.JSONDecoder()
    out: list[Any] = []
    at = 0
    while True:
        while at < len(text) and text[at] in " \t\r\n":
            at += 1
        if at == len(text):
            return out
        doc, at = decoder.raw_decode(text, at)  # a ValueError names the place
        out.append(doc)


def _info(folder: Path, sample: Path) -> tuple[str | None, int]:
    """The rule id and expected match count the folder's info.yml gives this sample (None, 1 if none)."""
    info = folder / "info.yml"
    if not info.is_file():
        return None, 1
    try:
        doc = load_one(info.read_text(encoding="utf-8"))
    except (RuleYAMLError, OSError, UnicodeDecodeError):
        return None, 1
    if not isinstance(doc, dict):
        return None, 1
    meta = doc.get("rule_metadata")
    rule_id = meta[0].get("id") if isinstance(meta, list) and meta and isinstance(meta[0], dict) else None
    expected = 1
    tests = doc.get("regression_tests_info")
    for test in tests if isinstance(tests, list) else ():  # anything else: no test of this sample named
        if isinstance(test, dict) and str(test.get("path", "")).endswith(sample.name):
            count = test.get("match_count")
            expected = count if isinstance(count, int) and count > 0 else 1
    return (str(rule_id) if rule_id else None), expected


def read_samples(paths: Iterable[Path]) -> list[Sample]:
    """Every sample file under the paths (files or folders). The rule is the one the folder's info.yml
    names, else the file's stem (SigmaHQ names a sample after its rule's id)."""
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files.extend(sorted(x for x in p.rglob("*") if x.suffix in SAMPLE_SUFFIXES and x.is_file()))
        else:
            files.append(p)
    out: list[Sample] = []
    for f in files:
        rule_id, expected = _info(f.parent, f)
        sample = Sample(f, rule_id or f.stem, expected)
        try:
            docs = _events(f.read_text(encoding="utf-8-sig"))
        except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSON errors are ValueErrors
            sample.error = f"not JSON or NDJSON: {exc}"
            out.append(sample)
            continue
        except RecursionError:  # json's decoder on nesting deeper than orjson reads (1024)
            sample.error = "not JSON or NDJSON: nested too deeply"
            out.append(sample)
            continue
        for doc in docs:
            if not isinstance(doc, dict):
                sample.error = "a sample record is not a JSON object"
                break
            try:
                sample.lines.append(orjson.dumps(doc).decode())
            except orjson.JSONEncodeError as exc:  # nested deeper than orjson writes (254)
                sample.error = f"a sample record cannot be forwarded: {exc}"
                break
        out.append(sample)
    return out


def sample_events(lines: list[str]) -> list[dict[str, Any]]:
    """One sample's forwarded Windows JSON lines through a normaliser of its own (no process context
    carried over from another sample): the events a replay runs the engine on."""
    from collectors.wire import LineBatch, LogLine
    from detectors.normalise import Normaliser

    normaliser = Normaliser(default_timezone="UTC")
    batch = LineBatch(
        "regression",
        "regression",
        "regression",
        "winlog-json/regression",
        [LogLine(text=t, seq=i + 1) for i, t in enumerate(lines)],
        "windows",
        "UTC",
    )
    return [*normaliser.normalise_batch(batch), *normaliser.flush()]


class RuleEngine(Protocol):  # the part of detectors.sigma.Engine a replay uses
    def snapshot(self) -> bytes: ...
    def restore(self, blob: bytes) -> None: ...
    def process(self, event: dict[str, Any]) -> list[Detection]: ...
    def advance(self, watermark: float) -> list[Detection]: ...


def replay(
    samples: Iterable[Sample],
    engine: RuleEngine,
    known_ids: set[str],
    normalise: Callable[[list[str]], list[dict[str, Any]]],
) -> list[Outcome]:
    """Each sample's events through `normalise` and the engine (state reset between samples): does its
    rule fire at least as often as asked?"""
    blank = engine.snapshot()
    out: list[Outcome] = []
    for s in samples:
        name = str(s.path)
        if s.error:
            out.append(Outcome(name, s.rule_id, "unreadable", s.expected, message=s.error))
            continue
        if s.rule_id not in known_ids:
            out.append(Outcome(name, s.rule_id, "unknown-rule", s.expected, message="no loaded rule has this id"))
            continue
        engine.restore(blank)
        hits: list[Detection] = []
        for event in normalise(s.lines):
            hits += engine.process(event)
        hits += engine.advance(float("inf"))
        mine = sum(1 for d in hits if d.rule_id == s.rule_id)
        others = sorted({d.rule_title for d in hits if d.rule_id != s.rule_id})
        status = "fired" if mine >= s.expected else "silent"
        out.append(Outcome(name, s.rule_id, status, s.expected, mine, others))
    return out
