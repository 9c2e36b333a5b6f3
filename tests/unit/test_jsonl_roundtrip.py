"""JSON-lines input: `socpipe parse | socpipe scan` raises the alerts `socpipe scan` raises on the raw file,
for every public dataset scan reads; ECS documents keep their module's namespace; the iterative, bounded
flattener places fields as the recursive one did."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import detectors.sigma
from detectors.normalise import parse_line
from detectors.normalise.jsonl import MAX_DEPTH, parse_json
from pipeline.cli import main

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
DATASETS = SHARED / "datasets"
RULES = [REPO / "rules"] + [SHARED / "sigma" / "rules" / d for d in ("linux", "web")]
SKIP_SUFFIXES = {".csv", ".json", ".yaml", ".yml", ".assert", ".ini", ".evtx", ".md", ".txt~", ".provenance"}
NOT_LOGS = (
    "license",
    "notice",
    "readme",
    "provenance",
    "manifest",
    "labels",
    "attackmate",
    "output.log",
    "copying",
    "citation",
)
PER_FOLDER, MAX_LINES = 16, 1500


def _log_files(folder: Path) -> list[Path]:
    files = sorted(
        f
        for f in folder.rglob("*")
        if f.is_file()
        and f.suffix.lower() not in SKIP_SUFFIXES
        and not any(x in f.name.lower() for x in NOT_LOGS)
        and "attacker" not in f.parts
    )
    audit = [f for f in files if f.name.startswith("audit.log")]  # the regression: every auditd sample
    rest = [f for f in files if f not in audit]
    step = max(1, len(rest) // PER_FOLDER)
    return audit + rest[::step][:PER_FOLDER]


def _cases() -> list:
    if not DATASETS.is_dir():
        return []
    return [
        pytest.param(f, id=str(f.relative_to(DATASETS)))
        for folder in sorted(p for p in DATASETS.iterdir() if p.is_dir())
        for f in _log_files(folder)
    ]


@pytest.fixture(scope="module")
def cached_rules():
    """Load the rule set once for the module; scan still builds a fresh engine per run."""
    original = detectors.sigma.load_rules
    memo: dict = {}

    def load(paths, *a, **kw):
        key = tuple(str(p) for p in paths)
        if key not in memo:
            memo[key] = original(paths, *a, **kw)
        return memo[key]

    detectors.sigma.load_rules = load
    yield
    detectors.sigma.load_rules = original


def _alerts(runner: CliRunner, path: Path) -> list[tuple]:
    args = ["scan", "--input", str(path), "--timezone", "UTC"]
    for r in RULES:
        args += ["--rules", str(r)]
    res = runner.invoke(main, args)
    assert res.exit_code == 0, res.output
    out = []
    for line in res.stdout.splitlines():
        a = json.loads(line)
        originals = tuple(sorted(str(e.get("event.original")) for e in a.get("socpipe.evidence", [])))
        out.append((a["rule.id"], a["@timestamp"], originals))
    return sorted(out)


@pytest.mark.skipif(not DATASETS.is_dir() or not (SHARED / "sigma").is_dir(), reason="../shared not present")
@pytest.mark.parametrize("path", _cases())
def test_parse_then_scan_raises_what_scan_raises(path, tmp_path, cached_rules):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        head = b"".join(line for _, line in zip(range(MAX_LINES), fh, strict=False))
    raw = tmp_path / path.name.removesuffix(".gz")  # keep the name: the source path can name the dataset
    raw.write_bytes(head)
    runner = CliRunner()
    parsed = runner.invoke(main, ["parse", "--input", str(raw), "--timezone", "UTC"])
    assert parsed.exit_code == 0
    events = [json.loads(x) for x in parsed.stdout.splitlines()]
    if all("_socpipe_parse_failure" in e.get("tags", ()) for e in events):
        pytest.skip("not a format socpipe parses")
    ecs = tmp_path / "events.jsonl"  # the name of the bug report: fields went under 'events.'
    ecs.write_text(parsed.stdout)
    assert _alerts(runner, ecs) == _alerts(runner, raw)


def test_ecs_document_keeps_its_module_namespace():
    line = json.dumps(
        {
            "@timestamp": "2025-12-12T10:47:34.200Z",
            "event.dataset": "auditd.log",
            "event.module": "auditd",
            "auditd.log.a0": "55fbaf4e0390",
            "socpipe.seq": 4,
            "level": "x",
        }
    )
    ev = parse_line(line, path="/tmp/events.jsonl")
    assert ev["auditd.log.a0"] == "55fbaf4e0390" and ev["socpipe.seq"] == 4 and ev["events.level"] == "x"
    nested = json.dumps({"event": {"dataset": "system.auth"}, "system": {"auth": {"ssh": {"method": "password"}}}})
    assert parse_line(nested, path="/tmp/events.jsonl")["system.auth.ssh.method"] == "password"
    # a document that does not declare a module keeps the old, safe placement
    plain = parse_line(json.dumps({"auditd": {"log": {"a0": "1"}}, "socpipe": {"seq": 1}}), path="/x/app.jsonl")
    assert plain["app.auditd.log.a0"] == "1" and plain["app.socpipe.seq"] == 1


def _reference_flatten(obj: dict, prefix: str, out: dict, depth: int = 0) -> None:
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and depth < MAX_DEPTH:
            _reference_flatten(v, key + ".", out, depth + 1)
        else:
            out[key] = v


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.sampled_from("abcxyz"), kids, max_size=3),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["source", "user", "app", "level", "x.y"]), _json_values, max_size=4))
def test_iterative_flattener_places_fields_like_the_recursive_one(doc):
    flat: dict = {}
    _reference_flatten(doc, "", flat)
    expected = {(k if k.partition(".")[0] in ("source", "user") else f"app.{k}"): v for k, v in flat.items()}
    ev = parse_json(json.dumps(doc), None, "UTC", "/var/log/app.jsonl")
    assert ev is not None
    got = {k: v for k, v in ev.items() if k.split(".")[0] in ("source", "user", "app")}
    if "message" not in doc:
        assert got == expected and list(got) == list(expected)


def test_deep_and_odd_json_is_kept_not_lost():
    deep = '{"a":' * 5000 + "1" + "}" * 5000
    ev = parse_line(deep, path="/var/log/app.jsonl")
    assert ev["event.original"] == deep
    nested: dict[str, Any] = {"v": 1}
    for _ in range(20):
        nested = {"n": nested}
    flat = parse_json(json.dumps({"user": nested}), None, "UTC", None)
    assert flat is not None
    deepest = [k for k in flat if k.startswith("user.")]
    assert len(deepest) == 1 and deepest[0].count(".") == MAX_DEPTH  # beyond the bound the object is the value
    big = parse_json('{"source": {"bytes": 123456789012345678901234567890}, "x": NaN}', None, "UTC", None)
    assert big is not None
    assert big["source.bytes"] == 123456789012345678901234567890  # beyond orjson: the stdlib decodes it
