"""Sigma value semantics: wildcards, escapes, every modifier of the spec appendix."""

import base64

import pytest

from detectors.sigma.compile import CompileError, compile_item

IDENT = lambda name: (name,)  # noqa: E731 - no field mapping


def m(key, value, event, placeholders=None):
    return compile_item(key, value, IDENT, placeholders or {}, ()).match(event)


def test_exact_is_case_insensitive_by_default():
    assert m("f", "Admin", {"f": "aDMIN"})
    assert not m("f", "Admin", {"f": "admin2"})


def test_cased_modifier():
    assert m("f|cased", "Admin", {"f": "Admin"})
    assert not m("f|cased", "Admin", {"f": "admin"})


@pytest.mark.parametrize(
    "pattern,value,want",
    [
        ("prog?.exe", "progA.exe", True),
        ("prog?.exe", "progAB.exe", False),
        ("antivirus_V*.exe", "antivirus_V21.2.1.exe", True),
        ("a\\*b", "a*b", True),  # escaped wildcard is literal
        ("a\\*b", "axxb", False),
        ("a\\?b", "a?b", True),
        ("C:\\Windows\\x*", "c:\\windows\\xy", True),  # plain backslash stays
        ("C:\\Windows\\*", "c:\\windows*", True),  # backslash-star is a literal star
        ("C:\\Windows\\*", "c:\\windows\\x", False),
        ("x\\\\*", "x\\anything", True),  # escaped backslash, then wildcard
        ("x\\\\\\*", "x\\*", True),  # backslash and literal star
        ("x\\\\\\*", "x\\y", False),
    ],
)
def test_wildcards_and_escapes(pattern, value, want):
    assert m("f", pattern, {"f": value}) is want


def test_list_is_or_and_all_is_and():
    assert m("f|contains", ["aa", "zz"], {"f": "xxaaxx"})
    assert not m("f|contains|all", ["aa", "zz"], {"f": "xxaaxx"})
    assert m("f|contains|all", ["aa", "zz"], {"f": "zzaa"})


def test_startswith_endswith():
    assert m("f|startswith", "/etc/", {"f": "/etc/shadow"})
    assert not m("f|startswith", "/etc/", {"f": "/tmp/etc/"})
    assert m("f|endswith", ".php", {"f": "/x/shell.PHP"})


def test_null_and_empty():
    assert m("f", None, {})
    assert m("f", None, {"f": None})
    assert not m("f", None, {"f": "x"})
    assert m("f", "", {"f": ""})
    assert not m("f", "", {})


def test_exists():
    assert m("f|exists", True, {"f": ""})
    assert not m("f|exists", True, {})
    assert m("f|exists", False, {})


def test_numbers_match_strings_and_ints():
    assert m("status", 404, {"status": 404})
    assert m("status", 404, {"status": "404"})
    assert m("status", "404", {"status": 404})


def test_numeric_comparisons():
    assert m("n|gt", 10, {"n": 11}) and not m("n|gt", 10, {"n": 10})
    assert m("n|gte", 10, {"n": "10"}) and m("n|lte", 10, {"n": 10})
    assert m("n|lt", 10, {"n": 9.5}) and not m("n|lt", 10, {"n": "abc"})


def test_neq():
    assert m("f|neq", "root", {"f": "alice"})
    assert not m("f|neq", "root", {"f": "ROOT"})
    assert m("n|neq", 5, {"n": 6})


def test_regex_with_flags_and_default_case():
    assert m("f|re", "^ab+c$", {"f": "abbc"})
    assert not m("f|re", "^ab+c$", {"f": "ABBC"})
    assert m("f|re|i", "^ab+c$", {"f": "ABBC"})
    assert m("f|re|m", "^two$", {"f": "one\ntwo"})
    assert m("f|re|s", "a.b", {"f": "a\nb"})
    assert not m("f|re", "a.b", {"f": "a\nb"})


@pytest.mark.parametrize("pattern", [r"(a)\1", r"(?=x)y", r"(?<!a)b"])
def test_unboundable_regex_rejected_at_load(pattern):
    with pytest.raises(CompileError, match="regex rejected"):
        compile_item("f|re", pattern, IDENT, {}, ())


def test_hostile_regex_is_linear():
    # catastrophic for backtracking engines; RE2 answers immediately
    assert not m("f|re", "^(a+)+$", {"f": "a" * 5000 + "!"})


def test_base64_and_offsets():
    enc = base64.b64encode(b"whoami").decode()
    assert m("f|base64", "whoami", {"f": enc})
    for prefix in (b"", b"x", b"xy"):
        blob = base64.b64encode(prefix + b"/bin/bash -i" + b"zz").decode()
        assert m("f|base64offset|contains", "/bin/bash -i", {"f": blob}), prefix


def test_utf16_variants():
    le = base64.b64encode("cmd".encode("utf-16-le")).decode()
    be = base64.b64encode("cmd".encode("utf-16-be")).decode()
    bom = base64.b64encode(b"\xff\xfe" + "cmd".encode("utf-16-le")).decode()
    assert m("f|utf16le|base64", "cmd", {"f": le})
    assert m("f|wide|base64", "cmd", {"f": le})
    assert m("f|utf16be|base64", "cmd", {"f": be})
    assert m("f|utf16|base64", "cmd", {"f": bom})


def test_windash():
    for dash in ("-", "/", "\u2013", "\u2014", "\u2015"):
        assert m("f|windash|contains", " -enc ", {"f": f"x {dash}enc y"}), dash
    assert not m("f|windash|contains", " -enc ", {"f": "x +enc y"})


def test_cidr():
    assert m("ip|cidr", "10.0.0.0/8", {"ip": "10.2.3.4"})
    assert not m("ip|cidr", "10.0.0.0/8", {"ip": "11.2.3.4"})
    assert m("ip|cidr", ["192.168.0.0/16", "2001:db8::/32"], {"ip": "2001:db8::1"})
    assert not m("ip|cidr", "10.0.0.0/8", {"ip": "not-an-ip"})


def test_expand_placeholders():
    ph: dict[str, list[str] | str] = {"Administrators": ["root", "admin*"]}  # a value: one or a list
    assert m("user|expand", "%Administrators%", {"user": "adminX"}, ph)
    assert not m("user|expand", "%Administrators%", {"user": "bob"}, ph)
    ph["name"] = "x"
    assert m("user|expand", "\\%plain%name%", {"user": "%plainx"}, ph)
    with pytest.raises(CompileError, match="placeholder"):
        compile_item("user|expand", "%Unknown%", IDENT, ph, ())


def test_fieldref():
    assert m("a|fieldref", "b", {"a": "X", "b": "x"})
    assert not m("a|fieldref", "b", {"a": "X", "b": "y"})
    assert m("a|fieldref|neq", "b", {"a": "X", "b": "y"})
    assert m("a|fieldref|startswith", "b", {"a": "abc", "b": "ab"})


def test_time_parts():
    ev = {"t": "2026-03-04T22:15:00.000Z"}
    assert m("t|hour", 22, ev) and m("t|minute", 15, ev) and m("t|day", 4, ev)
    assert m("t|month", 3, ev) and m("t|year", 2026, ev) and m("t|week", 10, ev)
    assert m("t|hour|gte", 20, ev) and not m("t|hour|lt", 6, ev)


def test_list_valued_event_fields():
    assert m("cat", "authentication", {"cat": ["process", "authentication"]})


def test_keywords_search_message():
    assert m("", ["evil thing"], {"message": "some EVIL THING here"})
    assert m("|all", ["a1", "b2"], {"message": "b2 and a1"})
    assert not m("|all", ["a1", "b2"], {"message": "b2 only"})
    assert m("", ["fallback"], {"event.original": "uses fallback"})


@pytest.mark.parametrize(
    "key,value,why",
    [
        ("f|nosuch", "x", "unknown modifier"),
        ("f|all", ["x"], "'all' needs"),
        ("f|exists", "yes", "exists"),
        ("f|gt", "abc", "needs a number"),
        ("f|cidr", "300.1.1.1/8", "CIDR"),
        ("f", ["x", None], "null"),
        ("f|i", "x", "need the 're'"),
    ],
)
def test_invalid_values_rejected(key, value, why):
    with pytest.raises(CompileError, match=why):
        compile_item(key, value, IDENT, {}, ())


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st

from detectors.sigma.values import _compile_glob, glob_regex, parse_wildcards  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab*", min_size=1, max_size=6), st.text(alphabet="abc", max_size=8))
def test_star_glob_agrees_with_regex(pattern, text):
    import re

    toks = parse_wildcards(pattern)
    if not any(t is not None and not isinstance(t, str) for t in toks):
        return
    want = re.fullmatch(glob_regex(toks), text, re.S) is not None
    assert bool(_compile_glob(toks).fullmatch(text)) == want


def _wildcards_reference(text: str) -> tuple:
    """The character-by-character reading of the spec, against which the fast split is checked."""
    from detectors.sigma.values import ANY, ONE

    tokens: list[object] = []
    buf, i = "", 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in "*?\\":
            buf += text[i + 1]
            i += 2
            continue
        if ch in "*?":
            if buf:
                tokens.append(buf)
                buf = ""
            tokens.append(ANY if ch == "*" else ONE)
        else:
            buf += ch
        i += 1
    return tuple(tokens + ([buf] if buf else []))


def test_parse_wildcards_fast_path_equals_reference():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from detectors.sigma.values import parse_wildcards

    @settings(max_examples=500, deadline=None)
    @given(st.text(alphabet="ab*?\\", max_size=12))
    def check(text):
        assert parse_wildcards(text) == _wildcards_reference(text)

    check()


def test_a_bare_wildcard_before_a_plain_alternative_compiles() -> None:
    """Found by mypy strict: `['*', 'foo']` set the index atoms to None, then appended to them."""
    from detectors.sigma.values import compile_alternatives, parse_wildcards

    test = compile_alternatives([parse_wildcards("*"), parse_wildcards("foo")], cased=False)
    assert test.atoms is None  # `*` matches any present value: the value cannot be indexed
    assert "foo" in test.exact


@pytest.mark.parametrize("lit", ["\\cmd.exe", "ΟΔΟΣ", "İstanbul", "ſtart", "x", ""])
@pytest.mark.parametrize("cased", [False, True])
def test_endswith_and_startswith_values_compile_to_suffixes_and_prefixes(lit, cased):
    """The |endswith / |startswith shape (one literal and `*`) as the general glob path makes it:
    the literal folded unless cased, a prefix or suffix, one `sub` atom of its folded text."""
    from detectors.sigma.casefold import fold
    from detectors.sigma.values import ANY, compile_alternatives

    want = lit if cased else fold(lit)
    ends, starts = compile_alternatives([(ANY, lit)], cased), compile_alternatives([(lit, ANY)], cased)
    assert (ends.suffixes, ends.prefixes, starts.prefixes, starts.suffixes) == ((want,), (), (want,), ())
    assert ends.atoms == starts.atoms == ([("sub", fold(want))] if want else None)
    assert not ends.exact and not ends.substrings and not ends.globs
    text = "abc" + lit
    assert ends(text if cased else fold(text)) and starts((lit + "abc") if cased else fold(lit + "abc"))
