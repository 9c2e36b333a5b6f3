"""regex_price.program_bound is at least the number of instructions RE2 compiles a pattern into, so a
pattern priced within FITS_BOUND is deferred to its first evaluation (typed.compile_regex) without being
compiled at load, and every pattern RE2 would refuse is still compiled, and refused, at load.

RE2 refuses a pattern when its program needs more instructions than max_mem allows (max_mem*2/3 for the
forward program, a fixed number of bytes an instruction), so "RE2 compiles P under the max_mem that
leaves room for exactly N instructions" is "P's program has at most N instructions": _room calibrates
that max_mem on literal texts (a program of one instruction a character) and each test compiles a
pattern in the room its bound gives it."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import re2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.sigma import typed
from detectors.sigma.compile import CompileError
from detectors.sigma.regex_price import FITS_BOUND, program_bound
from detectors.sigma.typed import compile_regex, surely_fits
from detectors.sigma.values import re2_options

SHARED = Path(__file__).resolve().parents[2].parent / "shared"


def _compiles(pattern: str, max_mem: int) -> bool:
    options = re2_options()
    options.max_mem = max_mem
    return bool(re2._re2.RE2(pattern.encode(), options).ok())


def _least_mem(pattern: str) -> int:
    low, high = 1, 64 << 20
    while low < high:
        mid = (low + high) // 2
        if _compiles(pattern, mid):
            high = mid
        else:
            low = mid + 1
    return low


@functools.cache
def _calibration() -> tuple[int, int]:
    """(bytes of max_mem an instruction, max_mem for a program of 0 instructions), from 'a'*n, whose
    program is n byte ranges plus 4 (fail, match, and the unanchored start's loop of two)."""
    one, two = _least_mem("a" * 1000), _least_mem("a" * 2000)
    per = (two - one) // 1000
    assert two - one == per * 1000 and per > 0
    return per, one - per * 1004


def _room(instructions: int) -> int:
    per, base = _calibration()
    return base + per * instructions


def test_the_room_is_exact():
    """The calibration: 'a'*n compiles with room for n + 4 instructions and not for one fewer."""
    for n in (10, 333, 5000):
        assert _compiles("a" * n, _room(n + 4))
        assert not _compiles("a" * n, _room(n + 3))


def _assert_bounded(pattern: str) -> None:
    assert re2._re2.RE2(pattern.encode(), re2_options()).ok(), pattern
    bound = program_bound(pattern)
    assert bound is not None, pattern
    assert _compiles(pattern, _room(bound)), (pattern, bound)


@pytest.mark.parametrize(
    "pattern",
    [
        r"(?i)\bxp_(instance_)?regwrite\b[\s\S]{0,600}?(\\CurrentVersion\\Run|\\Winlogon)",
        r"(?i)ShellIds[\\/]Microsoft\.PowerShell\b[^;&|\n]{0,200}?\b(?:Bypass|Unrestricted)\b",
        r"(?i)[-–—―](?:ep|exec|executionpolicy)\s+bypass|[-–—―]e(?:nc)?\s+[A-Za-z0-9+/=]{16}",
        r"(?i)\$\w+\s*=\s*(?:get-content|gc)\b[^;|\r\n]*\s[-–—―]s(?:t(?:r(?:e(?:a(?:m)?)?)?)?)?(?::|\s)[\s\S]{0,100}",
        r"(?i)[^k]{0,300}",
        r"(?i)[^ks\x80]{0,50}",
        r"(?i)[^θé–]{0,100}",
        r"(?i)\W{0,300}|\S{0,300}|\D{0,300}",
        r"(?i)[acegikmoqsuwy]{0,100}[^acegikmoqsuwy]{0,100}",
        r"(?s).{0,500}x.{0,500}?",
        r"(?m)^(?:a|b|)$.{3,}(?P<n>x){2,5}",
        r"(?:(?:[\w.-]{1,20}\s*,\s*){2,10}){0,4}",
        r"(?i:kelvin)+(?:\x41|\x7f|\xff){0,40}",
        r"[]a-][^]x]\b\B\A\z",
        r"(?i)ſ+K*é?",
        "",
        "|||",
        "()",
    ],
)
def test_the_bound_is_at_least_re2_s_program(pattern):
    _assert_bounded(pattern)


@pytest.mark.parametrize(
    "pattern",
    [
        r"\pL{0,10}",  # Unicode classes
        r"\PL",
        r"\p{Greek}",
        r"\Qa.b\E",
        r"a(?i)b",  # flags set after the start
        r"(?=a)",
        r"[[:alpha:]]",
        r"\x{41}",
        r"a{,3}",  # a literal to RE2
        r"a{x}",
        r"[é-ü]",  # a non-ASCII range
        r"(a)\1",
        r"\C",
        r"a)",
        r"(a",
        r"a**",
        r"[a-\d]",
    ],
)
def test_what_is_not_priced(pattern):
    assert program_bound(pattern) is None


_CLASS_ITEMS = st.sampled_from(
    ["a", "k", "S", "z", "0-9", "a-f", "A-Z", "K-k", "_", "-", r"\n", r"\t", r"\\", r"\]", r"\[", r"\s", r"\S",
     r"\d", r"\D", r"\w", r"\W", r"\x41", r"\x7f", "é", "–", "ſ", "θ", "\u212a", ".", "|", "$", "^", "(", "{"]
)  # fmt: skip


def _class(draw) -> str:
    items = draw(st.lists(_CLASS_ITEMS, min_size=1, max_size=6))
    body = "".join(items)
    if body.startswith("^"):
        body = "\\" + body
    return "[" + ("^" if draw(st.booleans()) else "") + body + "]"


@st.composite
def _patterns(draw, depth: int = 0) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 9 if depth < 2 else 6))
        if kind <= 1:
            atom = draw(st.sampled_from(["a", "k", "s", "K", "é", "ſ", "–", "θ", "xyz", "kelvins", "-", "\\.", "\\$"]))
        elif kind <= 3:
            atom = _class(draw)
        elif kind == 4:
            atom = draw(st.sampled_from([".", r"\s", r"\S", r"\w", r"\W", r"\d", r"\D", r"\x4b", r"\n"]))
        elif kind <= 6:
            atom = draw(st.sampled_from(["^", "$", r"\b", r"\B", r"\A", r"\z", ""]))
            parts.append(atom)
            continue
        else:
            inner = "|".join(draw(st.lists(_patterns(depth + 1), min_size=1, max_size=3)))
            atom = draw(st.sampled_from(["(", "(?:", "(?P<g>", "(?i:", "(?s:"])) + inner + ")"
        quant = draw(st.sampled_from(["", "", "*", "+", "?", "{3}", "{0,7}", "{2,}", "{1,40}", "{0,200}", "{5,5}"]))
        if quant and draw(st.booleans()):
            quant += "?"
        parts.append(atom + quant)
    return "".join(parts)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flags=st.sampled_from(["", "(?i)", "(?s)", "(?is)", "(?m)", "(?U)"]), body=_patterns())
def test_the_bound_is_at_least_re2_s_program_for_generated_patterns(flags, body):
    pattern = flags + body
    if not re2._re2.RE2(pattern.encode(), re2_options()).ok():
        return  # RE2's syntax error (a repetition of an empty-width assertion, a group name twice ...)
    bound = program_bound(pattern)
    if bound is not None:
        assert _compiles(pattern, _room(bound)), (pattern, bound)


def test_the_bound_holds_for_the_shared_and_province_regexes():
    """Every `re` value of the rule sets (bench paths, and rules-windows when present) that is not surely
    fitting by its text (the ones whose deferral rests on the bound), with and without (?i): priced at
    least as large as RE2 makes it, and nearly all within FITS_BOUND."""
    import yaml

    roots = [SHARED / "sigma" / d for d in ("rules", "rules-emerging-threats", "rules-threat-hunting", "rules-windows")]
    roots.append(Path(__file__).resolve().parents[2] / "rules")
    files = [f for root in roots if root.is_dir() for f in sorted(root.rglob("*.yml"))]
    if len(files) < 100:
        pytest.skip("shared rules not present")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    found: set[str] = set()

    def walk(node, regex: bool) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, isinstance(key, str) and "|re" in key)
        elif isinstance(node, list):
            for value in node:
                walk(value, regex)
        elif regex and isinstance(node, str):
            found.add(node)

    for f in files:
        try:
            for doc in yaml.load_all(f.read_text(encoding="utf-8"), Loader=loader):
                if isinstance(doc, dict):
                    walk(doc.get("detection"), False)
        except yaml.YAMLError:
            continue
    heavy = within = 0
    for pattern in sorted(found):
        for flags in ("", "(?i)"):
            source = flags + pattern
            if surely_fits(source) or not re2._re2.RE2(source.encode(), re2_options()).ok():
                continue
            heavy += 1
            bound = program_bound(source)
            if bound is not None:
                assert _compiles(source, _room(bound)), source
                within += bound <= FITS_BOUND
    assert heavy > 100 and within >= 0.9 * heavy, (within, heavy)


def test_a_priced_pattern_is_deferred_on_a_cold_start_and_matches_as_a_compiled_one(monkeypatch):
    from detectors.sigma import ruledocs

    monkeypatch.setenv("SOCPIPE_RULE_CACHE", "off")
    monkeypatch.setattr(ruledocs, "_CACHE", None)
    heavy = r"ab[\s\S]{0,600}?c[-–—]d"  # 600 copies of a class, non-ASCII text: not surely fitting by its text
    assert not surely_fits(heavy)
    bound = program_bound(heavy)
    assert bound is not None and bound <= FITS_BOUND
    deferred = compile_regex(heavy, ["re", "i"], ())
    assert deferred.raw is None and deferred.rx is None  # parsed only: compiled on first use
    compiled = re2.compile("(?i)" + heavy, re2_options())
    texts = ["AB xx c–d", "ab" + "x" * 599 + "c-d", "ab" + "é" * 601 + "c—d", "", "abc-d", "ab c_d"]
    assert [bool(deferred(t)) for t in texts] == [compiled.search(t) is not None for t in texts]


def test_patterns_priced_over_the_bound_are_compiled_at_load_and_refused_as_before(monkeypatch):
    from detectors.sigma import ruledocs

    monkeypatch.setenv("SOCPIPE_RULE_CACHE", "off")
    monkeypatch.setattr(ruledocs, "_CACHE", None)
    big = r"[\s\S]{1000}" * 3  # fits RE2, but priced over FITS_BOUND: compiled at load
    assert program_bound(big) > FITS_BOUND  # type: ignore[operator]
    assert compile_regex(big, ["re"], ()).raw is not None
    too_large = r"[\s\S]{1000}" * 90  # more than RE2's memory bound allows
    with pytest.raises(re2.error) as exc:
        re2.compile(too_large, re2_options())
    with pytest.raises(CompileError) as refused:
        compile_regex(too_large, ["re"], ())
    assert str(refused.value) == f"regex rejected (not linear-time/RE2 syntax): {exc.value}"
    # a syntax error in a pattern priced within the bound: reported as RE2 reports it
    for bad in (r"[\s\S]{0,600}x{2,1}", r"[\s\S]{0,600}x{1001}", r"[\s\S]{0,600}(?:x{0,40}){0,40}"):
        assert program_bound(bad) is not None and program_bound(bad) <= FITS_BOUND  # type: ignore[operator]
        with pytest.raises(re2.error) as exc:
            re2.compile(bad, re2_options())
        with pytest.raises(CompileError) as refused:
            compile_regex(bad, ["re"], ())
        assert str(refused.value) == f"regex rejected (not linear-time/RE2 syntax): {exc.value}"
    assert typed._PARSE_ONLY is not None


def test_groups_nested_past_python_s_stack_are_not_priced_and_compiled_as_before(monkeypatch):
    """The pricer reads groups recursively: ~400 nested groups (RE2 takes up to 1000) raised RecursionError,
    which the loader reported as 'rule nests too deeply' for a rule that loaded before the pricing."""
    from detectors.sigma import ruledocs

    monkeypatch.setenv("SOCPIPE_RULE_CACHE", "off")
    monkeypatch.setattr(ruledocs, "_CACHE", None)
    deep = "(?:" * 600 + "whoami–x" + ")" * 600  # non-ASCII: not surely fitting by its text
    assert program_bound(deep) is None
    test = compile_regex(deep, ["re"], ())
    assert test.raw is not None  # compiled at load, as an unpriced pattern is
    assert [bool(test(t)) for t in ("run whoami–x now", "whoami-x")] == [True, False]
