"""`re` values whose RE2 program surely fits are only parsed when loaded and compiled on first use
(detectors.sigma.typed.compile_regex): the same matches, the same load errors, with the same messages,
and a pattern that may outgrow RE2's memory bound still compiled (and refused) at load."""

from __future__ import annotations

import pytest
import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.sigma import typed
from detectors.sigma.compile import CompileError, compile_item
from detectors.sigma.regex_price import program_bound
from detectors.sigma.typed import DEFER_MAX_CHARS, compile_regex, surely_fits
from detectors.sigma.values import re2_options

IDENT = lambda name: (name,)  # noqa: E731 - no field mapping


def _full_compile_error(source: str) -> str:
    with pytest.raises(re2.error) as exc:
        re2.compile(source, re2_options())
    return f"regex rejected (not linear-time/RE2 syntax): {exc.value}"


def test_this_re2_defers():
    assert typed._PARSE_ONLY is not None  # the probe passed: the tests below exercise the deferral


@pytest.mark.parametrize(
    "pattern,mods",
    [
        (r"foo.*bar", ["re"]),
        (r"(?:^|\\)evil\.exe$", ["re", "i"]),
        (r"^a.b$", ["re", "m", "s"]),
        (r"[\w.-]+@[\w.-]+", ["re"]),
    ],
)
def test_a_deferred_pattern_is_compiled_on_first_use_and_matches_as_a_compiled_one(pattern, mods):
    texts = ["xxfooyybar", "C:\\Temp\\EVIL.exe", "a\nb", "x\na\nb\n", "me@host.example", "", "nothing here"]
    deferred = compile_regex(pattern, mods, ())
    assert deferred.rx is None and deferred.raw is None  # parsed only
    flags = "".join(f for f in "ims" if f in mods)
    source = f"(?{flags})" if flags else ""
    compiled = re2.compile(source + pattern, re2_options())
    assert [deferred(t) for t in texts] == [compiled.search(t) is not None for t in texts]
    assert deferred.rx is not None  # compiled by the first call, kept


def test_an_item_with_deferred_patterns_matches_events():
    item = compile_item("CommandLine|re|i", [r"\\temp\\[^\\]+\.exe", r"-enc(odedcommand)? "], IDENT, {}, ())
    assert item.match({"CommandLine": r"C:\TEMP\x.EXE /q"})
    assert item.match({"CommandLine": "powershell -EncodedCommand AAAA"})
    assert not item.match({"CommandLine": r"C:\temp\sub\x.exe"})


@pytest.mark.parametrize(
    "pattern",
    [
        "foo(bar",
        "a**",
        "[z-a]",
        "(?<!x)y",
        "(?z)a",
        r"\8",
        "[[:foo:]]",
        "\\",
        "a)",
        "(?P<n>a",
        "*a",
        "x++?",
        r"\8x",
        "a{5,2}",
        "a{2}*",
        "(?i)a{2,3}+",
    ],
)
def test_a_pattern_that_does_not_parse_is_refused_with_the_message_of_a_full_compile(pattern):
    assert surely_fits(pattern)
    with pytest.raises(CompileError) as exc:
        compile_regex(pattern, ["re"], ("detection", "sel"))
    assert str(exc.value) == _full_compile_error(pattern)
    assert exc.value.path == ("detection", "sel")


@pytest.mark.parametrize(
    "pattern",
    [
        r"a{3000}",
        r"(a{40}){60}",  # nested: 11 characters weighed by 41 and 61
        ".{200}" + "b" * 300,
        r"a{,3}",  # not a repetition to RE2: left to the compile
        r"a{12345}",
        r"\pL",
        r"\PL",
        r"\x41",
        r"\101",
        "é",
        "a" * (DEFER_MAX_CHARS + 1),
        "\\\\\\pL",  # an escaped backslash, then \pL
    ],
)
def test_what_may_outgrow_the_bound_is_compiled_at_load(pattern):
    assert not surely_fits(pattern)


def test_counted_repetitions_are_weighed_by_their_counts():
    assert typed.repetition_weight("ab") == 2
    assert typed.repetition_weight("a{3}") == 4 * 4
    assert typed.repetition_weight("a{2,5}") == 6 * 6
    assert typed.repetition_weight("a{7,}") == 5 * 8
    assert typed.repetition_weight("(a{3}){4}") == 9 * 4 * 5
    assert typed.repetition_weight("a{,3}") > DEFER_MAX_CHARS
    assert surely_fits("(.){200,}")  # 9 characters weighed by 201
    # repetitions in sequence are weighed as if nested (more than they cost): compiled at load
    assert not surely_fits(r"\?d=[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")
    assert not surely_fits("[{]{3}")  # a `{` that is not a repetition: compiled at load
    assert not surely_fits("(.){300,}")


@pytest.mark.parametrize("pattern", [r"\d{2}-x", "(?i)(ab){2,4}c", "(.){20,}", r"\{2}x"])
def test_a_counted_repetition_deferred_matches_as_a_compiled_one(pattern):
    assert surely_fits(pattern)
    deferred = compile_regex(pattern, ["re"], ())
    assert deferred.raw is None  # only parsed so far
    compiled = re2.compile(pattern, re2_options())
    for text in ("12-x", "ABABc", "abababababc", "x" * 25, "{{{", "{2}", "a{2}", "", "aaaaaaaaaaaaaaaaaaaaaaaa\n"):
        assert bool(deferred(text)) == bool(compiled.search(text)), text


def test_escaped_backslashes_are_not_escapes():
    assert surely_fits(r"C:\\programdata\\x\\0day")  # \\ then p, x, 0: literal letters
    assert not surely_fits(r"C:\\\programdata")  # \\ then \p


def test_a_pattern_too_large_for_re2_is_still_refused_at_load():
    pattern = r"(?:\pL\pL\pL\pL\pL\pL\pL\pL\pL\pL){200}"
    with pytest.raises(CompileError) as exc:
        compile_regex(pattern, ["re"], ())
    assert str(exc.value) == _full_compile_error(pattern)
    assert "pattern too large" in str(exc.value)


@pytest.mark.parametrize(
    "flags,atom",
    [
        ("", "."),
        ("(?s)", "."),
        ("", r"\W"),
        ("", r"\S"),
        ("", r"\D"),
        ("", "[^a]"),
        ("(?i)", "k"),
        ("(?i)", "[^k]"),
        ("(?i)", "[^a-z]"),
        ("(?i)", r"\W"),
        ("", "()"),
        ("", r"\b"),
        ("", "a|"),
        ("(?m)", "^$"),
    ],
)
def test_the_costliest_surely_fitting_patterns_compile(flags, atom):
    """Every surely-fitting pattern compiles: the atoms with the largest programs per character of text
    (of every ASCII character, escape, class, negated class and POSIX class tried, with each flag),
    repeated to the length bound, stay far below RE2's bound (~87,000 instructions for 8 MiB)."""
    source = flags + atom * ((DEFER_MAX_CHARS - len(flags)) // len(atom))
    assert surely_fits(source)
    rx = re2.compile(source, re2_options())
    assert rx._regexp.ProgramSize() <= 14 * len(source) < 87_000 // 3
    # the same atoms under counted repetitions (nested too), weighed to the bound
    group = f"(?:{atom})"
    for inner, outer in ((1, 1), (3, 1), (1, 7), (4, 5)):
        shapes = [
            f"{group}{{{inner}}}",
            f"(?:{group}{{{inner},}}){{{outer}}}",
            f"(?:{group}{{0,{inner}}}){{1,{outer}}}",
        ]
        for shape in shapes:
            base = len(flags) + len(shape)
            n = 1
            while typed.repetition_weight(flags + shape * (n + 1)) <= DEFER_MAX_CHARS and (n + 1) * len(shape) < 600:
                n += 1
            source = flags + shape * n
            weight = typed.repetition_weight(source)
            if weight > DEFER_MAX_CHARS:
                continue
            assert surely_fits(source), source
            size = re2.compile(source, re2_options())._regexp.ProgramSize()
            assert size <= 14 * weight < 87_000 // 3, (source, size, weight, base)


def _restart(monkeypatch) -> None:
    """Save this process's rule cache and forget it, as a new start would."""
    from detectors.sigma import ruledocs

    cache = ruledocs.document_cache()
    cache.dirty = True
    cache.save()
    monkeypatch.setattr(ruledocs, "_CACHE", None)


def test_a_pattern_compiled_in_full_once_is_deferred_when_the_rule_cache_knows_it_fits(tmp_path, monkeypatch):
    from detectors.sigma import ruledocs

    monkeypatch.setenv("SOCPIPE_RULE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(ruledocs, "_CACHE", None)
    heavy = r"ab[\s\S]{0,600}?\Qcd\E"  # 600 copies of a class, and \Q: not surely fitting by its text, nor priced
    assert not surely_fits(heavy) and program_bound(heavy) is None
    first = compile_regex(heavy, ["re"], ())
    assert first.raw is not None  # compiled at load: nothing known yet
    _restart(monkeypatch)
    second = compile_regex(heavy, ["re"], ())
    assert second.raw is None  # the cache's verdict for this RE2: only compiled on first use
    for text in ("ab xx cd", "ab" + "x" * 599 + "cd", "ab" + "x" * 601 + "cd", "", "abcd", "AB cd"):
        assert bool(second(text)) == bool(first(text)), text
    # another RE2 build (or options): the verdict is not reused
    monkeypatch.setattr(typed, "_FIT_MEMO", "regex-fits:another-build")
    assert compile_regex(heavy, ["re"], ()).raw is not None
    # a pattern too large for RE2 is refused at load on every start, its verdict cached or not
    too_large = r"(?:\pL\pL\pL\pL\pL\pL\pL\pL\pL\pL){200}"
    for _ in range(2):
        with pytest.raises(CompileError) as exc:
            compile_regex(too_large, ["re"], ())
        assert str(exc.value) == _full_compile_error(too_large)
        _restart(monkeypatch)
    # no cache: compiled at load, as before
    monkeypatch.setenv("SOCPIPE_RULE_CACHE", "off")
    monkeypatch.setattr(ruledocs, "_CACHE", None)
    monkeypatch.setattr(typed, "_FIT_MEMO", typed._fit_memo_name())
    assert compile_regex(heavy, ["re"], ()).raw is not None


_PIECES = st.sampled_from(
    ["a", "k", "K", "s", "é", "ſ", "(", ")", "(?:", "(?P<n>", "(?i)", "(?-i)", "(?s:", "[", "]", "[^", "[[:alpha:]]",
     "{", "}", "{2}", "{2,1}", "{1001}", "{,3}", "(?:x{100}){11}", "|", "*", "+", "?", "??", ".", "^", "$", "-", "a-z",
     "z-a", "\\", "\\d", "\\W", "\\b", "\\pL", "\\p{Greek}", "\\Q", "\\E", "\\x41", "\\x{41}", "\\8", "\\z", "\\C"]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(text=st.lists(_PIECES, max_size=8).map("".join))
def test_a_leading_flag_group_never_changes_whether_re2_parses_a_pattern(text):
    """compile_regex parses a pattern without the (?i)/(?m)/(?s) its modifiers put before it."""

    def parses(source: str) -> bool:
        return typed._PARSE_ONLY(source.encode()).error() == typed._TOO_LARGE

    alone = parses(text)
    for flags in ("i", "m", "s", "is", "ims"):
        assert parses(f"(?{flags})" + text) == alone, (flags, text)


def test_a_pattern_is_parsed_without_the_flag_group_of_its_modifiers(monkeypatch):
    parsed: list[bytes] = []
    real = typed._PARSE_ONLY

    def spy(text: bytes):
        parsed.append(text)
        return real(text)

    monkeypatch.setattr(typed, "_PARSE_ONLY", spy)
    monkeypatch.setattr(typed, "_PARSED", set())
    deferred = compile_regex(r"\\temp\\[^\\]+\.exe", ["re", "i"], ())
    assert parsed == [rb"\\temp\\[^\\]+\.exe"] and deferred.raw is None
    assert deferred(r"C:\TEMP\X.EXE") and not deferred(r"C:\temp\a\b.dll")
    with pytest.raises(CompileError) as exc:  # a syntax error: the full compile's message, as before
        compile_regex("(?P<n>a", ["re", "i"], ())
    assert str(exc.value) == _full_compile_error("(?i)(?P<n>a")
