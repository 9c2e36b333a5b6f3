"""A rule regex's test answers exactly what google-re2's `search` answers (found or not), and a `?`
glob what its `fullmatch` answers, on any text, whether RE2 is called through the wrapper's compiled
object (the installed wrapper: asserted) or through the public method."""

import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.sigma import typed, values
from detectors.sigma.typed import compile_regex
from detectors.sigma.values import ANY, ONE, _compile_glob, _Re2Glob

PATTERNS = [
    r"^[a-z]:\\[^:]*:[^\\:]+$",
    r"(?:ab|é)+c?$",
    r"\bx\b|^$",
    r"(a)(b)?(c)",
    r"GetTypeFrom(?:ProgID|CLSID)\s*\(",
    r"['\"][^'\"\r\n]{1,6}['\"]\+['\"]",
]


def test_the_installed_wrapper_is_called_directly():
    assert typed._RAW_SEARCH
    test = compile_regex(PATTERNS[0], ["re"], ())
    test("x")  # a pattern only parsed at load is compiled by its first call (test_sigma_regex_deferred)
    assert test.raw is not None


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(PATTERNS),
    st.sampled_from([["re"], ["re", "i"], ["re", "m", "s"]]),
    st.text(alphabet="abcxé:\\ '\"+\n\r\tC(GetTypeFromProgID", max_size=30),
)
def test_regex_test_answers_what_search_answers(pattern, mods, text):
    test = compile_regex(pattern, mods, ())
    flags = "".join(f for f in "ims" if f in mods)
    want = re2.compile((f"(?{flags})" if flags else "") + pattern, values.re2_options()).search(text) is not None
    assert test(text) is want
    assert test(text) is want  # compiled by the first call if it was only parsed at load
    test.raw = None  # the public path
    assert test(text) is want


def test_text_re2_cannot_take_fails_as_search_fails():
    test = compile_regex("a", ["re"], ())
    test("a")
    for call in (test, lambda s: test.rx.search(s)):
        try:
            call("\ud800a")
        except UnicodeEncodeError:
            continue
        raise AssertionError("a lone surrogate encodes")
    assert re2  # the wrapper under test


GLOBS = [("a", ONE, "c"), (ANY, ">", ONE, "%temp%\\", ANY), (ONE,), (ANY, "é", ONE), ("x", ANY, ONE, "\n")]


def test_the_installed_wrapper_fullmatches_globs_directly():
    glob = _compile_glob(GLOBS[0])
    assert isinstance(glob, _Re2Glob) and glob.raw is not None


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(GLOBS), st.text(alphabet="ac>x%tempé\\\n ", max_size=20))
def test_glob_fullmatch_answers_what_the_wrapper_answers(toks, text):
    glob = _compile_glob(toks)
    want = glob.rx.fullmatch(text) is not None
    assert glob.fullmatch(text) is want
    glob.raw = None  # the public path
    assert glob.fullmatch(text) is want
