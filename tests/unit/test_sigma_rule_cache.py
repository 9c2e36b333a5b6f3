"""The rule-document cache (detectors.sigma.ruledocs): a warm start loads and reports exactly what a cold
one does; what it cannot store exactly, errors, corrupt or foreign cache files are never trusted."""

import json
import os
import stat
from hashlib import blake2b
from pathlib import Path

import orjson
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.sigma import load_rules, ruledocs
from detectors.sigma.rulefiles import rule_files
from detectors.sigma.yamlsafe import load_documents, load_documents_typed

from .test_sigma_loader import GOOD

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SIGMA_SETS = [
    SHARED / "sigma" / d for d in ("rules", "rules-emerging-threats", "rules-threat-hunting", "rules-windows")
]


def _report(res):
    """Everything `rules lint` reports of a load, rule by rule."""
    return (
        res.files,
        res.documents,
        [
            (
                r.meta.id,
                r.meta.title,
                r.meta.path,
                r.meta.line,
                r.meta.level,
                r.meta.tags,
                getattr(r, "logsource", None),
            )
            for r in res.rules
        ],
        [vars(e) for e in res.errors],
        [vars(w) for w in res.warnings],
    )


@pytest.fixture
def cache(tmp_path, monkeypatch):
    where = tmp_path / "cache"
    monkeypatch.setenv("SOCPIPE_RULE_CACHE", str(where))
    return where


@pytest.mark.skipif(not all(p.is_dir() for p in SIGMA_SETS), reason="../shared/sigma not present")
def test_warm_start_loads_the_shared_sigma_rules_exactly_as_a_cold_one(cache, monkeypatch):
    paths = [str(p) for p in SIGMA_SETS] + [str(Path(__file__).resolve().parents[2] / "rules")]
    monkeypatch.setenv("SOCPIPE_RULE_CACHE", "off")
    uncached = load_rules(paths)
    monkeypatch.setenv("SOCPIPE_RULE_CACHE", str(cache))
    cold = load_rules(paths)
    files = len(rule_files(paths))
    assert ruledocs.document_cache().misses >= files - 5  # a few files may be uncachable
    ruledocs._CACHE = None  # a new process: read from disk
    warm = load_rules(paths)
    c = ruledocs.document_cache()
    assert c.hits >= files - 5 and c.misses <= 5 and files > 2500
    assert _report(uncached) == _report(cold) == _report(warm)
    assert len(warm.rules) > 3000
    assert [r.detection for r in warm.rules if hasattr(r, "detection")] == [
        r.detection for r in uncached.rules if hasattr(r, "detection")
    ]


def test_cache_files_are_private_and_an_edit_is_parsed_again(tmp_path, cache):
    rule = tmp_path / "r.yml"
    rule.write_text(GOOD)
    load_rules([tmp_path])
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(cache / ruledocs.CACHE_NAME).st_mode) == 0o600
    rule.write_text(GOOD.replace("level: high", "level: low"))
    ruledocs._CACHE = None
    assert load_rules([tmp_path]).rules[0].meta.level == "low"
    assert ruledocs.document_cache().misses == 1


def test_errors_are_never_cached_and_keep_their_line(tmp_path, cache):
    (tmp_path / "broken.yml").write_text("title: x\ndetection: [unclosed\n")
    (tmp_path / "badmod.yml").write_text(GOOD.replace("contains", "containz"))
    first = load_rules([tmp_path])
    ruledocs._CACHE = None
    second = load_rules([tmp_path])
    assert _report(first) == _report(second)
    assert {Path(e.path).name: e.line for e in second.errors} == {"broken.yml": 3, "badmod.yml": 5}
    stored = _entries(cache)
    assert len(stored) == 1  # badmod.yml is valid YAML (its error is Sigma's); broken.yml is not stored


def test_documents_json_cannot_hold_exactly_are_parsed_every_time(cache):
    for text in ("a: 1\n2: two\n", "b: .nan\n", "s: !!set {x, y}\n", "d: !!binary aGk=\n", "e: .inf\n"):
        docs, lines = ruledocs.load_documents(text)
        assert (docs, lines) == load_documents(text)
        assert ruledocs.document_cache().misses == 1 and not ruledocs.document_cache().dirty, text
        ruledocs._CACHE = None
    assert not (cache / ruledocs.CACHE_NAME).exists()  # int key, NaN, set, bytes, inf: never stored
    plain = "c: [1, 2.5, true, null, '07', 18446744073709551615]\n"
    ruledocs.load_documents(plain)
    ruledocs.document_cache().save()
    ruledocs._CACHE = None
    again = ruledocs.load_documents(plain)
    assert ruledocs.document_cache().hits == 1
    assert again == load_documents(plain) and type(again[0][0]["c"][1]) is float


def test_a_document_handed_out_twice_is_not_shared(cache):
    text = "detection: {sel: {a: 1}, condition: sel}\n"
    ruledocs.load_documents(text)
    ruledocs.document_cache().save()
    ruledocs._CACHE = None
    first, _ = ruledocs.load_documents(text)
    first[0]["detection"]["sel"]["a"] = 2
    second, _ = ruledocs.load_documents(text)
    assert second[0]["detection"]["sel"]["a"] == 1


def _entries(cache: Path) -> dict:
    """The entries of the cache file as written: the version line, then `key<TAB>JSON` lines."""
    head, *lines = (cache / ruledocs.CACHE_NAME).read_text().splitlines()
    assert head == ruledocs._cache_version()
    return dict(line.split("\t", 1) for line in lines)


def _write(cache: Path, entries: dict, version: str | None = None) -> None:
    """A cache file as a forger would write it, by hand (not with ruledocs' own writer)."""
    cache.mkdir(mode=0o700, exist_ok=True)
    path = cache / ruledocs.CACHE_NAME
    body = "".join(f"{k}\t{v}\n" for k, v in entries.items())
    path.write_bytes(f"{version or ruledocs._cache_version()}\n{body}".encode("utf-8", "surrogateescape"))
    path.chmod(0o600)


def _key(text: str) -> str:
    return blake2b(text.encode(), digest_size=16).hexdigest()


def _forge(cache: Path, text: str, docs) -> None:
    """A cache file claiming `text` parses to `docs`."""
    _write(cache, {_key(text): json.dumps([docs, [1] * len(docs)])})


def test_a_cache_writable_by_others_or_corrupt_is_ignored(tmp_path, cache):
    (tmp_path / "r.yml").write_text(GOOD)
    forged = {"title": "Forged", "logsource": {"product": "linux"}, "detection": {"s": {"a": 1}, "condition": "s"}}
    _forge(cache, GOOD, [forged])
    ruledocs._CACHE = None
    assert load_rules([tmp_path]).rules[0].meta.title == "Forged"  # the forge format is right: trusted here
    for spoil in (
        lambda p: p.chmod(0o622),
        lambda p: cache.chmod(0o777),
        lambda p: p.write_text("{not json"),
        lambda p: p.write_text(p.read_text().replace(ruledocs._cache_version(), "old")),
        lambda p: p.write_bytes(b"\0" * 64 + p.read_bytes()),
        lambda p: p.write_text(p.read_text().replace("\t", " ")),
        lambda p: p.write_bytes(p.read_bytes()[:-9]),  # cut short: the entry no longer decodes
    ):
        _forge(cache, GOOD, [forged])
        cache.chmod(0o700)
        spoil(cache / ruledocs.CACHE_NAME)
        ruledocs._CACHE = None
        assert load_rules([tmp_path]).rules[0].meta.title == "Good"
    cache.chmod(0o700)


def test_a_cache_written_by_another_parser_build_is_ignored(tmp_path, cache, monkeypatch):
    """A change to yamlsafe.py or a PyYAML upgrade drops the cached parses (their version differs)."""
    (tmp_path / "r.yml").write_text(GOOD)
    forged = {"title": "Forged", "logsource": {"product": "linux"}, "detection": {"s": {"a": 1}, "condition": "s"}}
    _forge(cache, GOOD, [forged])
    ruledocs._CACHE = None
    assert load_rules([tmp_path]).rules[0].meta.title == "Forged"
    before = ruledocs._cache_version()
    monkeypatch.setattr(ruledocs, "_VERSION", [])
    yamlsafe = Path(ruledocs.__file__).with_name("yamlsafe.py")
    real_read = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: real_read(self) + (b"#" if self == yamlsafe else b""))
    assert ruledocs._cache_version() != before
    ruledocs._CACHE = None
    assert load_rules([tmp_path]).rules[0].meta.title == "Good"


def test_a_bad_entry_is_parsed_again(tmp_path, cache):
    (tmp_path / "r.yml").write_text(GOOD)
    bad = ("[[{}], [1, 2]]", "[[{}], ['x']]", "{}", "[[{}]", "", "\udcff", "[[{}], [1]] trailing", '"[[{}], [1]]"')
    for docs_and_lines in bad:
        _write(cache, {_key(GOOD): docs_and_lines})
        ruledocs._CACHE = None
        assert load_rules([tmp_path]).rules[0].meta.title == "Good"
        assert ruledocs.document_cache().misses == 1, docs_and_lines


def test_no_cache_when_off_or_unwritable(tmp_path, monkeypatch):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yml").write_text(GOOD)
    monkeypatch.setenv("SOCPIPE_RULE_CACHE", "off")
    assert ruledocs.cache_dir() is None
    assert len(load_rules([tmp_path / "rules"]).rules) == 1
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("SOCPIPE_RULE_CACHE", str(blocker / "sub"))  # cannot be created
    assert len(load_rules([tmp_path / "rules"]).rules) == 1
    monkeypatch.delenv("SOCPIPE_RULE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ruledocs.cache_dir() == tmp_path / "xdg" / "socpipe"


def test_rule_files_keep_the_order_and_choice_of_rglob(tmp_path):
    for rel in ("b/x.yml", "a/y.yaml", "a/z.tests.yml", "a/.yml", "c.yml/w.yml", "top.yml", "a/n.txt", "a/b/deep.yml"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    (tmp_path / "link").symlink_to(tmp_path / "a", target_is_directory=True)
    (tmp_path / "l.yml").symlink_to(tmp_path / "top.yml")
    expected = sorted(
        x
        for x in tmp_path.rglob("*")
        if x.suffix in (".yml", ".yaml") and x.is_file() and not x.name.endswith(ruledocs_tests())
    )
    assert rule_files([tmp_path]) == expected
    assert [p.relative_to(tmp_path).as_posix() for p in expected] == [
        "a/b/deep.yml",
        "a/y.yaml",
        "b/x.yml",
        "c.yml/w.yml",
        "l.yml",
        "top.yml",
    ]


def ruledocs_tests():
    from detectors.sigma.rulefiles import TEST_SUFFIXES

    return TEST_SUFFIXES


@pytest.fixture(autouse=True)
def _fresh_cache():
    ruledocs._CACHE = None
    yield
    ruledocs._CACHE = None


def test_a_memo_is_kept_while_its_source_is_unchanged(tmp_path, cache):
    source = tmp_path / "pure.py"
    source.write_text("def f(x): return x.upper()\n")
    calls = []

    def compute():
        calls.append(1)
        return "ABC"

    c = ruledocs.document_cache()
    assert c.memo("upper", "abc", compute, str, str(source)) == "ABC"
    c.dirty = True
    c.save()
    ruledocs._CACHE = None
    assert ruledocs.document_cache().memo("upper", "abc", compute, str, str(source)) == "ABC"
    assert len(calls) == 1  # read back, not computed
    source.write_text("def f(x): return x.lower()\n")
    ruledocs._CACHE = None
    ruledocs.document_cache().memo("upper", "abc", compute, str, str(source))
    assert len(calls) == 2  # the function's source changed: computed again


def test_a_temporary_file_left_by_a_killed_process_does_not_block_saving(tmp_path, cache):
    """A process SIGKILLed mid-write leaves its temporary file; a later process with the same pid (a
    container's pid 1) still saves."""
    (tmp_path / "r.yml").write_text(GOOD)
    cache.mkdir(mode=0o700)
    (cache / f".{ruledocs.CACHE_NAME}.{os.getpid()}.tmp").write_text("partial")
    ruledocs._CACHE = None
    load_rules([tmp_path])
    ruledocs.document_cache().save()
    assert (cache / ruledocs.CACHE_NAME).is_file()


def _stored_as(docs, lines, plain):
    """What the cache keeps of a parse (its JSON text, None: nothing), as DocumentCache.documents does."""
    return ruledocs._encoded([docs, lines]) if plain else ruledocs._as_json([docs, lines])


@pytest.mark.parametrize(
    "text",
    ["a: .nan\n", "a: [1, -.inf]\n", "a: {b: .Inf}\n", "a: 1.0e+400\n", "- -1.e+999\n", "a: &x .NaN\nb: *x\n"],
)
def test_a_float_json_cannot_hold_is_reported_by_the_builder_and_not_stored(text, cache):
    docs, lines, plain = load_documents_typed(text)
    assert not plain and _stored_as(docs, lines, plain) is None
    ruledocs.load_documents(text)
    assert not ruledocs.document_cache().dirty


@pytest.mark.parametrize(
    "text",
    ["2: two\n", "~: x\n", "true: x\n", "a: 340282366920938463463374607431768211456\n", "a: -9223372036854775809\n"],
)
def test_what_orjson_refuses_is_not_stored(text, cache):
    docs, lines, plain = load_documents_typed(text)
    assert _stored_as(docs, lines, plain) is None
    ruledocs.load_documents(text)
    assert not ruledocs.document_cache().dirty


_scalars = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.booleans(),
    st.none(),
    st.sampled_from([".inf", "-.Inf", ".NaN", "0x1f", "0o17", "1_000", "1:20", "1.5e+400", "-0.0", "2023-01-01", "~"]),
)
_trees = st.recursive(
    _scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(_scalars, kids, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_trees, st.booleans())
def test_what_the_cache_stores_reads_back_exactly(tree, flow):
    """The builder's word that a parse is plain (so only encoded, never read back and compared) holds:
    whatever is stored decodes to the same documents, types and key order included (repr)."""
    text = yaml.safe_dump(tree, default_flow_style=flow, allow_unicode=True)
    for raw in (text, text.replace("'", "")):  # unquoted too: plain scalars resolve to int/float/bool/null
        try:
            docs, lines, plain = load_documents_typed(raw)
        except ruledocs.RuleYAMLError:
            continue
        assert (docs, lines) == load_documents(raw)
        blob = _stored_as(docs, lines, plain)
        if blob is not None:
            assert repr(orjson.loads(blob)) == repr([docs, lines])


@pytest.mark.skipif(not (SHARED / "sigma").is_dir(), reason="../shared/sigma not present")
def test_every_sigmahq_file_is_stored_and_reads_back_exactly():
    files = sorted((SHARED / "sigma").rglob("*.yml"))
    stored = 0
    for f in files:
        try:
            docs, lines, plain = load_documents_typed(f.read_text(encoding="utf-8"))
        except ruledocs.RuleYAMLError:
            continue
        blob = _stored_as(docs, lines, plain)
        assert blob is None or repr(orjson.loads(blob)) == repr([docs, lines]), f
        stored += blob is not None
    assert stored >= len(files) - 5 and len(files) > 3000


def test_lint_writes_the_cache_once_and_reports_the_same_cold_warm_and_off(tmp_path, monkeypatch):
    """`rules lint` reads mappings, rules and the parser examples through the cache and writes it once;
    the report of the start that writes it, of one that reads it and of one without it are the same."""
    from click.testing import CliRunner

    from detectors.normalise import reference
    from pipeline.cli import main

    rules = Path(__file__).resolve().parents[2] / "rules"
    writes = []
    real = ruledocs._file_text

    def counted(entries):
        writes.append(len(entries))
        return real(entries)

    monkeypatch.setattr(ruledocs, "_file_text", counted)
    reports = []
    for mode in (str(tmp_path / "c"), str(tmp_path / "c"), "off"):
        monkeypatch.setenv("SOCPIPE_RULE_CACHE", mode)
        ruledocs._CACHE = None
        reference.example_events.cache_clear()
        monkeypatch.setattr("detectors.sigma.mapping._DEFAULT", None)
        out = CliRunner().invoke(main, ["rules", "lint", "--json", str(rules)])
        reports.append(json.loads(out.output))
    assert reports[0] == reports[1] == reports[2] and reports[0]["loaded"] > 50
    assert len(writes) == 1 and writes[0] > 50  # cold: one write of every entry; warm: none


def test_a_cache_file_of_the_earlier_layout_is_removed_at_the_next_save(tmp_path, cache):
    (tmp_path / "r.yml").write_text(GOOD)
    cache.mkdir(mode=0o700)
    old = cache / "rule-documents.json"
    old.write_text(json.dumps({"version": "rule-docs-2", "entries": {}}))
    load_rules([tmp_path])
    assert not old.exists() and (cache / ruledocs.CACHE_NAME).is_file()


def _nodes(value) -> int:
    """Nodes as yamlsafe counts them: every scalar (a mapping's keys too) and every collection."""
    if isinstance(value, dict):
        return 1 + sum(1 + _nodes(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(_nodes(v) for v in value)
    return 1


def _past_bounds_forgeries() -> list[tuple[dict, bool]]:
    """Forged documents of a loadable rule at the parser's bounds (within: True) and one past them."""
    base = {"title": "Forged", "logsource": {"product": "linux"}, "detection": {"s": {"a": 1}, "condition": "s"}}
    out = []
    for depth in (ruledocs.MAX_DEPTH, ruledocs.MAX_DEPTH + 1):
        nested: list = ["deep"]
        for _ in range(depth - 2):  # the rule's mapping is level 1, "references" level 2
            nested = [nested]
        out.append(({**base, "references": nested}, depth <= ruledocs.MAX_DEPTH))
    for extra in (0, 1):
        filler = ruledocs.MAX_NODES - _nodes({**base, "references": []}) + extra
        out.append(({**base, "references": ["x"] * filler}, extra == 0))
    return out


@pytest.mark.parametrize("forged,within", _past_bounds_forgeries())
def test_a_cached_document_past_the_parsers_bounds_is_parsed_again(tmp_path, cache, forged, within):
    """A forged entry may not hand the loader what the parser would refuse from a file: nested deeper
    than MAX_DEPTH or more than MAX_NODES nodes. At the bounds it is still a hit (the forge format is
    right), one past them the file is parsed again; the parser draws the line at the same place."""
    text = yaml.safe_dump(forged)
    if within:
        assert load_documents(text)[0] == [forged]
    else:
        with pytest.raises(ruledocs.RuleYAMLError):
            load_documents(text)
    (tmp_path / "r.yml").write_text(GOOD)
    _forge(cache, GOOD, [forged])
    ruledocs._CACHE = None
    title = load_rules([tmp_path]).rules[0].meta.title
    assert (title, ruledocs.document_cache().misses) == (("Forged", 0) if within else ("Good", 1))


def test_bounds_count_every_document_of_a_cached_file(tmp_path, cache):
    """Nodes add up over a file's documents as the parser counts them, not per document."""
    half = ["x"] * (ruledocs.MAX_NODES // 2)
    assert ruledocs._within_bounds([half], ruledocs.MAX_NODES + 1)
    assert not ruledocs._within_bounds([half, half, None], ruledocs.MAX_NODES + 1)
    with pytest.raises(ruledocs.RuleYAMLError):
        load_documents(yaml.safe_dump(half) + "---\n" + yaml.safe_dump(half) + "---\n")
