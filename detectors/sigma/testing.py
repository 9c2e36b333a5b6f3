"""Rule tests as code, run by the production Engine (no second evaluator that could drift).

Next to `rules/x/name.yml` lives `rules/x/name.tests.yml`:

    rules: [../other/base_rule.yml]     # optional extra rule files (relative to this file)
    requires: [../../../shared/x.yml]   # optional extra rule files kept outside the repository (a
                                        # meta-filter's SigmaHQ targets): loaded like `rules:`; when one
                                        # is absent the file is reported SKIPPED, not failed
    start: 2026-01-01T00:00:00Z         # optional time origin for sequences
    defaults: {event.dataset: system.auth, process.name: sshd}   # merged into every event
    tests:
      - name: one event that must match          # single-event case
        rule: ssh_failed_authentication           # rule id, name or title (default: any rule)
        event: {message: "Failed password ...", source.ip: 203.0.113.9}
        match: true                               # or false for a negative case
      - name: a raw log line, through the parser   # what a worker would see (rules must use
        line: "Nov 27 10:00:01 web1 sudo: ..."    # the fields the parsers really emit)
        source: /var/log/auth.log                 # optional: the file it was read from (dataset
        match: true                               # detection uses it; default /var/log/syslog)
      - name: a timed sequence                   # stateful case
        sequence:                                 # processed in the listed order
          - {at: 0s, every: 10s, repeat: 5, event: {...}}   # at/every: offsets from start
          - {at: 60s, line: "Nov 27 ... sshd[1]: Accepted password for ..."}  # parsed; time from `at`
        lateness: 60                              # optional allowed lateness (seconds)
        expect:                                   # alerts expected after the watermark passes
          - {rule: SSH Brute Force, count: 1, level: high, group: {source.ip: 203.0.113.9},
             events: 5}                           # events: triggering events of each alert
        # `expect: []` = no alert at all from the rules under test

`line:` may also be a list of records that make one event (auditd). Fields given in `event:`
beside a `line:` are laid over the parsed event; `defaults` are not (the parser decides).

A sequence advances the watermark to the latest event time after each event (as a worker does)
and to +infinity at the end, so windows that close late are evaluated too. Every alert of the
rules under test must be expected (extra alerts fail the case).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detectors.common.durations import parse_duration
from detectors.common.times import DEFAULT_TIMEZONE, iso_ms, to_epoch
from detectors.sigma.engine import Engine
from detectors.sigma.loader import load_rules
from detectors.sigma.model import CorrelationRule
from detectors.sigma.rulefiles import TEST_SUFFIXES, rule_files

if TYPE_CHECKING:
    from detectors.normalise.normaliser import Normaliser
from detectors.sigma.yamlsafe import RuleYAMLError, load_one

DEFAULT_START = "2026-01-01T00:00:00Z"


@dataclass
class CaseResult:
    file: str
    name: str
    kind: str  # "event" | "sequence" | "file" | "skipped"
    positive: bool  # the case expects a match / an alert
    passed: bool
    message: str = ""


def test_files(paths: Any) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out.extend(sorted(x for x in p.rglob("*") if x.name.endswith(TEST_SUFFIXES)))
        elif p.name.endswith(TEST_SUFFIXES):
            out.append(p)
        else:
            cand = [p.with_name(p.name[: -len(p.suffix)] + s) for s in TEST_SUFFIXES]
            out.extend(c for c in cand if c.exists())
    return out


def rule_file_for(test_file: Path) -> Path:
    for s in TEST_SUFFIXES:
        if test_file.name.endswith(s):
            base = test_file.name[: -len(s)]
            for ext in (".yml", ".yaml"):
                if (test_file.parent / (base + ext)).exists():
                    return test_file.parent / (base + ext)
    return test_file.with_name(test_file.name.split(".tests.")[0] + ".yml")


def _offset(v: Any) -> float:
    if v is None:
        return 0.0
    if isinstance(v, (int, float)):
        return float(v)
    return parse_duration(v, allow_zero=True)


def _find(rules: list[Any], ref: Any) -> list[Any]:
    ref = str(ref)
    return [r for r in rules if ref in (r.meta.id, r.meta.name, r.meta.title)]


def run_test_file(path: Any, mappings: Any = None) -> list[CaseResult]:
    path = Path(path)
    try:
        spec = load_one(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, RuleYAMLError) as exc:
        return [CaseResult(str(path), "(file)", "file", False, False, f"unreadable: {exc}")]
    required = [path.parent / p for p in spec.get("requires") or []]
    missing = [str(p) for p in required if not p.exists()]
    if missing:
        return [CaseResult(str(path), "(skipped)", "skipped", False, True, "not present: " + ", ".join(missing))]
    rule_paths = [rule_file_for(path)] + [path.parent / p for p in spec.get("rules") or []] + required
    loaded = load_rules(rule_paths, mappings=mappings)
    if loaded.errors:
        return [CaseResult(str(path), "(load)", "file", False, False, "; ".join(str(e) for e in loaded.errors))]
    own_files = {str(rule_paths[0])}
    under_test = {r.meta.id for r in loaded.rules if r.meta.path in own_files}
    defaults = spec.get("defaults") or {}
    start = to_epoch(str(spec.get("start", DEFAULT_START)))
    results = []
    for i, case in enumerate(spec.get("tests") or []):
        name = str(case.get("name", f"case {i + 1}"))
        try:
            if not isinstance(case, dict):
                raise TypeError("a case must be a map")
            if "line" in case and "sequence" not in case:
                case = {**case, "event": parse_case_line(case, spec)}
                results.append(_event_case(path, name, case, loaded.rules, {}, start, mappings))
            elif "event" in case:
                results.append(_event_case(path, name, case, loaded.rules, defaults, start, mappings))
            elif "sequence" in case:
                results.append(
                    _sequence_case(path, name, case, loaded.rules, under_test, defaults, start, mappings, spec)
                )
            else:
                results.append(CaseResult(str(path), name, "file", False, False, "a case needs 'event' or 'sequence'"))
        except (ValueError, TypeError, KeyError) as exc:
            results.append(CaseResult(str(path), name, "file", False, False, f"bad case: {exc}"))
    if not results:
        results.append(CaseResult(str(path), "(file)", "file", False, False, "no tests"))
    return results


def _event(defaults: dict[str, Any], body: dict[str, Any], ts: float) -> dict[str, Any]:
    ev = dict(defaults)
    ev.update(body or {})
    ev.setdefault("@timestamp", iso_ms(ts))
    return ev


def _event_case(path: Any, name: Any, case: Any, rules: Any, defaults: Any, start: Any, mappings: Any) -> CaseResult:
    want = bool(case.get("match", True))
    event = _event(defaults, case["event"], start)
    engine = Engine(rules, mappings=mappings)
    targets = (
        _find(rules, case["rule"]) if case.get("rule") else [r for r in rules if not isinstance(r, CorrelationRule)]
    )
    if not targets:
        return CaseResult(str(path), name, "event", want, False, f"no rule {case.get('rule')!r}")
    matched = {r.meta.id for r in engine.matching_rules(event)}
    got = any(t.meta.id in matched for t in targets)
    msg = "" if got == want else f"expected match={want}, got {got}"
    return CaseResult(str(path), name, "event", want, got == want, msg)


def parse_case_line(
    case: dict[str, Any], spec: dict[str, Any], read_at: float | None = None, normaliser: Normaliser | None = None
) -> dict[str, Any]:
    """The event a worker makes of the case's raw `line:` (or auditd records), with the case's
    `event:` fields laid over it. A sequence passes one normaliser for all its lines, so what a
    worker carries from line to line (a Windows process's creation context) is carried here too."""
    from collectors.wire import LineBatch, LogLine
    from detectors.normalise.normaliser import Normaliser

    raw = case["line"]
    texts = [str(x) for x in raw] if isinstance(raw, list) else [str(raw)]
    when = read_at if read_at is not None else to_epoch(str(spec.get("start", DEFAULT_START)))
    if normaliser is None:
        normaliser = Normaliser(default_timezone=str(spec.get("timezone", DEFAULT_TIMEZONE)))
    batch = LineBatch(
        str(spec.get("agency", "rule-tests")),
        "rule-tests",
        str(spec.get("host", "rule-test-host")),
        str(case.get("source") or spec.get("source") or "/var/log/syslog"),
        [LogLine(text=t, line_no=i + 1, seq=i + 1, read_at=when or 0.0) for i, t in enumerate(texts)],
        dataset=case.get("dataset") or spec.get("dataset"),
    )
    events = normaliser.normalise_batch(batch) + normaliser.flush()
    if len(events) != 1:
        raise ValueError(f"line(s) made {len(events)} events, expected 1")
    event = events[0]
    event.update(case.get("event") or {})
    return event


def expand_sequence(
    items: list[Any], defaults: dict[str, Any], start: float, spec: dict[str, Any] | None = None
) -> list[Any]:
    from detectors.normalise.normaliser import Normaliser

    events = []
    normaliser = Normaliser(default_timezone=str((spec or {}).get("timezone", DEFAULT_TIMEZONE)))
    for item in items:
        at, every = _offset(item.get("at")), _offset(item.get("every"))
        parsed = parse_case_line(item, spec or {}, start + at, normaliser) if "line" in item else None
        for k in range(int(item.get("repeat", 1))):
            ts = start + at + k * every
            if parsed is not None:
                ev = dict(parsed)
                ev["@timestamp"] = iso_ms(ts)  # the sequence's clock decides, so repeats are spread
                events.append(ev)
            else:
                events.append(_event(defaults, item.get("event") or {}, ts))
    return events


def _sequence_case(
    path: Any,
    name: Any,
    case: Any,
    rules: Any,
    under_test: Any,
    defaults: Any,
    start: Any,
    mappings: Any,
    spec: Any = None,
) -> CaseResult:
    engine = Engine(rules, mappings=mappings, allowed_lateness=float(case.get("lateness", 60)))
    dets = []
    high = float("-inf")
    for ev in expand_sequence(case["sequence"], defaults, start, spec):
        dets.extend(engine.process(ev))
        ts = to_epoch(ev["@timestamp"])
        if ts is not None and ts > high:
            high = ts
            dets.extend(engine.advance(high))
    dets.extend(engine.advance(float("inf")))
    dets = [d for d in dets if d.rule_id in under_test and not d.continuation]  # folded into the open alert
    expects = case.get("expect") or []
    problems = []
    used: set[Any] = set()
    for exp in expects:
        refs = {r.meta.id for r in _find(rules, exp["rule"])}
        if not refs:
            problems.append(f"no rule {exp['rule']!r}")
            continue
        group = {k: v for k, v in (exp.get("group") or {}).items()}
        hits = [
            i
            for i, d in enumerate(dets)
            if d.rule_id in refs and i not in used and all(str(d.group.get(k)) == str(v) for k, v in group.items())
        ]
        want = int(exp.get("count", 1))
        if len(hits) != want:
            problems.append(f"{exp['rule']}: expected {want} alert(s) {group or ''}, got {len(hits)}")
        used.update(hits)
        for i in hits:
            d = dets[i]
            if "level" in exp and d.level != exp["level"]:
                problems.append(f"{exp['rule']}: level {d.level} != {exp['level']}")
            if "events" in exp and d.count != int(exp["events"]):
                problems.append(f"{exp['rule']}: {d.count} triggering events != {exp['events']}")
    extra = [dets[i] for i in range(len(dets)) if i not in used]
    if extra:
        problems.append("unexpected alerts: " + ", ".join(f"{d.rule_title} {d.group} x{d.count}" for d in extra[:5]))
    return CaseResult(str(path), name, "sequence", bool(expects), not problems, "; ".join(problems))


def run_tests(paths: Any, mappings: Any = None) -> list[CaseResult]:
    out: list[CaseResult] = []
    for f in test_files(paths):
        out.extend(run_test_file(f, mappings=mappings))
    return out


def coverage_problems(paths: Any, results: list[CaseResult]) -> list[str]:
    """Rule files without a tests file, or without both a positive and a negative case."""
    problems = []
    by_file: dict[str, Any] = {}
    for r in results:
        by_file.setdefault(str(rule_file_for(Path(r.file))), []).append(r)
    for f in rule_files(paths):
        cases = by_file.get(str(f))
        if not cases:
            problems.append(f"{f}: no tests file")
            continue
        if all(c.kind == "skipped" for c in cases):
            continue  # its rules live outside the repository and are absent here
        real = [c for c in cases if c.kind != "file"]
        if not any(c.positive for c in real):
            problems.append(f"{f}: no positive case")
        if not any(not c.positive for c in real):
            problems.append(f"{f}: no negative case")
    return problems
