"""Plain (non-regex) case-insensitive Sigma matching is RE2's `(?i)` matching of the same value, and the
candidate index offers the rule whenever the predicate matches.

Before casefold.fold the predicates lower-cased with str.lower(), which spells 'Σ' by context ('ΟΔΟΣ' ->
'οδος', so a rule 'ΟΔΟΣ' missed an event 'οδοσ'), keeps 'ſ'/'s', 'µ'/'μ', 'ς'/'σ' apart, and makes
'İ' two characters (a `?` no longer matched it), while the index already folded those classes: the
two disagreed. The reference here is independent of the engine: the value's wildcards turned into an
RE2 pattern of escaped characters, matched case-insensitively against the raw event text."""

from __future__ import annotations

import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.sigma.compile import compile_item
from detectors.sigma.index import CandidateIndex
from detectors.sigma.values import re2_options

IDENT = lambda name: (name,)  # noqa: E731 - no field mapping
# the characters whose case folding str.lower() gets wrong or that fold across scripts, their
# neighbours in their classes, and the wildcards
TRICKY = "σςΣſsSkK\u212aiIİı\u0307µμΜßẞΩω\u2126ϑθΘ"
ALPHABET = TRICKY + "aAé *?"
MODIFIERS = ["", "contains", "startswith", "endswith"]


def _reference(value: str, modifier: str, text: str, cased: bool = False) -> bool:
    """RE2 fullmatch of the Sigma value (no backslashes in these values: `*` and `?` are wildcards)."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re2.escape(c) for c in value)
    if modifier in ("contains", "endswith"):
        body = ".*" + body
    if modifier in ("contains", "startswith"):
        body += ".*"
    return bool(re2.compile(body, re2_options(case_sensitive=cased, dot_nl=True)).fullmatch(text))


def _engine(value: str, modifier: str, text: str, cased: bool = False) -> tuple[bool, bool]:
    """(the predicate matched, the candidate index offered the rule) for `field|modifier: value`."""
    key = "field" + "".join(f"|{m}" for m in (modifier, "cased" if cased else "") if m)
    compiled = compile_item(key, value, IDENT, {}, ())
    event = {"field": text}
    offered = CandidateIndex.build([compiled.need]).candidates(event) == [0]
    return compiled.match(event), offered


def test_greek_sigma_matches_in_every_spelling() -> None:
    for value in ("ΟΔΟΣ", "οδοσ", "οδος", "Οδος"):
        for text in ("ΟΔΟΣ", "οδοσ", "οδος", "ΟΔΟς"):
            assert _engine(value, "", text) == (True, True), (value, text)
    assert _engine("ΟΣ", "endswith", "κοσμοσ") == (True, True)  # event spells the final sigma 'σ'
    assert _engine("ς", "contains", "ΣΑΣ") == (True, True)
    assert _engine("οδοσ", "", "οδοι")[0] is False


def test_other_folding_classes_match_like_re2() -> None:
    assert _engine("/bin/baſh", "", "/BIN/BASH") == (True, True)
    assert _engine("\u212aerberos", "", "kerberos") == (True, True)  # Kelvin sign
    assert _engine("µs", "endswith", "latency 5 μs") == (True, True)  # micro sign and mu
    assert _engine("ẞ", "", "ß") == (True, True)
    assert _engine("ss", "", "ß")[0] is False  # simple folding: one character is one character


def test_dotted_capital_i_is_one_character() -> None:
    assert _engine("a?b", "", "aİb") == (True, True)  # lower() made 'İ' two characters
    assert _engine("admin", "", "ADMİN")[0] is False  # RE2 (simple case folding) keeps 'İ' and 'i' apart
    assert _engine("İ", "", "i\u0307")[0] is False  # no normalisation: one character is not two
    assert _engine("ΑΣİ", "", "ασİ") == (True, True)


def test_keyword_and_fieldref_fold_too() -> None:
    keyword = compile_item("", ["οδοσ"], IDENT, {}, ())
    assert keyword.match({"message": "Η ΟΔΟΣ"})
    ref = compile_item("a|fieldref", "b", IDENT, {}, ())
    assert ref.match({"a": "/bin/baſh", "b": "/BIN/BASH"})
    assert ref.match({"a": "ΟΔΟΣ", "b": "οδοσ"})
    assert not ref.match({"a": "ΟΔΟΣ", "b": "οδοι"})


@settings(max_examples=600, deadline=None)
@given(
    st.text(alphabet=ALPHABET, min_size=1, max_size=6),
    st.sampled_from(MODIFIERS),
    st.text(alphabet=ALPHABET.replace("*", "").replace("?", ""), max_size=8),
    st.booleans(),
)
def test_plain_matching_is_re2_case_insensitive_matching(value, modifier, text, cased) -> None:
    want = _reference(value, modifier, text, cased)
    matched, offered = _engine(value, modifier, text, cased)
    assert matched == want
    assert offered or not matched  # the index may offer more, never less


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=TRICKY + "a ", min_size=1, max_size=6), st.text(alphabet=TRICKY + "a ", max_size=8))
def test_a_value_found_in_text_matches_every_case_spelling_of_it(value, prefix) -> None:
    """Upper-, lower-, case-folded and swapped spellings of the value (what random texts rarely hit)
    match as RE2 says: most do; 'ı'.upper() is 'I', which case folding keeps apart from 'ı'."""
    for text in (value, value.upper(), value.lower(), value.casefold(), value.swapcase()):
        want = _reference(value, "contains", prefix + text)
        matched, offered = _engine(value, "contains", prefix + text)
        assert matched == want, (value, text)
        assert offered or not matched


@settings(max_examples=500, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from("aZ \u00a0\u00b5\u00c9\u00e9\u00ff\u0178\u03a3\u03c2\u0130\u017f\u1e9eK\u212a"),
        max_size=12,
    )
)
def test_latin1_text_folds_as_the_table_folds_it(text):
    """fold's Latin-1 shortcut (only the micro sign maps) gives what the whole table gives."""
    from detectors.sigma.casefold import _FOLD, _MICRO, FOLD_CLASSES, fold

    assert min(FOLD_CLASSES) == _MICRO and sorted(FOLD_CLASSES)[1] > "\u00ff"
    parts = text.split("\u0130")
    assert fold(text) == "\u0130".join(p.lower().translate(_FOLD) for p in parts)
