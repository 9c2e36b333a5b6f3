"""A rule regex's test answers exactly what google-re2's `search` answers (found or not), on any text,
whether it calls RE2 through the wrapper's compiled object (the installed wrapper: asserted) or
through `search`."""

import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.sigma import typed
from detectors.sigma.typed import compile_regex

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
    assert compile_regex(PATTERNS[0], ["re"], ()).raw is not None


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(PATTERNS),
    st.sampled_from([["re"], ["re", "i"], ["re", "m", "s"]]),
    st.text(alphabet="abcxé:\\ '\"+\n\r\tC(GetTypeFromProgID", max_size=30),
)
def test_regex_test_answers_what_search_answers(pattern, mods, text):
    test = compile_regex(pattern, mods, ())
    want = test.rx.search(text) is not None
    assert test(text) is want
    test.raw = None  # the public path
    assert test(text) is want


def test_text_re2_cannot_take_fails_as_search_fails():
    test = compile_regex("a", ["re"], ())
    for call in (test, lambda s: test.rx.search(s)):
        try:
            call("\ud800a")
        except UnicodeEncodeError:
            continue
        raise AssertionError("a lone surrogate encodes")
    assert re2  # the wrapper under test
