"""The candidate index: exactly the rules with an atom that hits some value of its field
(exact: the whole value; substring: inside it), plus the rules it cannot index."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.sigma.casefold import fold
from detectors.sigma.compile import KEYWORD_INDEX_FIELD
from detectors.sigma.fields import scalar_text
from detectors.sigma.index import CandidateIndex

FIELDS = ["a", "b.c", "url", KEYWORD_INDEX_FIELD]
_text = st.text(alphabet="abAB/-é İ", max_size=5)
_atom = st.tuples(st.sampled_from(FIELDS), st.sampled_from(["eq", "sub"]), _text)
_need = st.one_of(st.none(), st.frozensets(_atom, min_size=1, max_size=3))
_value = st.one_of(
    _text, st.integers(-3, 3), st.booleans(), st.floats(allow_nan=False, width=16), st.lists(_text, max_size=3)
)


def _expected(needs: list, event: dict) -> list:
    out = set()
    for pos, need in enumerate(needs):
        if not need:
            out.add(pos)
            continue
        for fld, kind, text in need:
            if fld == KEYWORD_INDEX_FIELD:
                v = event.get("message")
                v = event.get("event.original") if v is None else v
            else:
                v = event.get(fld)
            if v is None:
                continue
            for x in v if isinstance(v, (list, tuple)) else [v]:
                s = fold(scalar_text(x))
                if (kind == "eq" and s == text) or (kind == "sub" and text and text in s):
                    out.add(pos)
    return sorted(out)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(_need, max_size=8),
    st.dictionaries(st.sampled_from(["a", "b.c", "url", "message", "event.original", "other"]), _value, max_size=5),
)
def test_one_pass_index_finds_exactly_the_rules_an_atom_hits(needs, event):
    needs = [
        None if n is None else frozenset((f, k, fold(t)) for f, k, t in n if k == "eq" or t) or None for n in needs
    ]
    assert CandidateIndex.build(needs).candidates(event) == _expected(needs, event)


def test_empty_substring_atom_makes_the_rule_always_a_candidate():
    index = CandidateIndex.build([frozenset({("url", "sub", "")}), frozenset({("url", "sub", "adm")})])
    assert index.candidates({"other": 1}) == [0] and index.candidates({"url": "/ADMIN"}) == [0, 1]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_need, max_size=8),
    st.lists(
        st.dictionaries(st.sampled_from(["a", "b.c", "url", "message", "event.original", "other"]), _value, max_size=5),
        min_size=2,
        max_size=12,
    ),
)
def test_remembered_values_give_the_same_candidates(needs, events):
    """One index over many events (its memo of values seen filling up): every event's candidates are
    still exactly the rules an atom hits, repeated values included."""
    needs = [
        None if n is None else frozenset((f, k, fold(t)) for f, k, t in n if k == "eq" or t) or None for n in needs
    ]
    index = CandidateIndex.build(needs)
    for event in events + events:
        assert index.candidates(event) == _expected(needs, event)


def test_memo_tells_true_from_one_and_stays_bounded():
    """True == 1 == 1.0 as dict keys, but they read as "true" and "1": only str and int values are
    remembered; a full memo starts again; long values are never kept."""
    from detectors.sigma import index as idx

    index = CandidateIndex.build([frozenset({("a", "eq", "true")}), frozenset({("a", "eq", "1")})])
    for value, want in [(1, [1]), (True, [0]), (1.0, [1]), (1, [1]), (True, [0]), ("TRUE", [0]), ("1", [1])]:
        assert index.candidates({"a": value}) == want, value
    for n in range(idx.MEMO_ENTRIES + 10):
        index.candidates({"a": f"v{n}"})
    held = [v for f in index.fields for v in f[3]]
    assert 0 < len(held) == index.memo_entries <= idx.MEMO_ENTRIES
    index.candidates({"a": "x" * (idx.MEMO_VALUE_CHARS + 1)})
    assert all(len(str(v)) <= idx.MEMO_VALUE_CHARS for f in index.fields for v in f[3])


_group_values = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.text(max_size=3),
    st.lists(st.one_of(st.integers(), st.text(max_size=2)), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=3), _group_values), max_size=3))
def test_partition_key_rendered_from_tuples_is_the_written_key(pairs):
    """Keys are grouped as tuples and rendered once: the text is what was always written to Kafka."""
    import json

    from detectors.sigma.partition import hashable, render_key

    values = [(n, hashable(v)) for n, v in pairs]
    written = "k:" + json.dumps(values, separators=(",", ":"), default=str) if values else "k:*"
    assert render_key(tuple(values)) == written
