"""Logsource derivation (detectors.sigma.mapping) with each condition split into plain patterns and globs
gives what matching every pattern in turn gave (the reference below): on every example event, on every
value a shipped derivation names, and on generated values and patterns."""

import fnmatch

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.normalise.reference import example_events
from detectors.sigma.mapping import (
    DERIVATION_FIELDS,
    EventLogsource,
    FieldMappings,
    _Derivation,
    _lowered_key,
    load_mappings,
)


def _reference_matches(value, patterns) -> bool:
    if value is None:
        return "" in patterns
    vals = value if isinstance(value, tuple) else (value,)
    return any((fnmatch.fnmatchcase(v, p) if set("*?[") & set(p) else v == p) for v in vals for p in patterns)


def _reference_derive(mappings: FieldMappings, values: dict) -> EventLogsource:
    adds: dict = {k: set() for k in ("product", "category", "service")}
    for d in mappings.derivations:
        if all(_reference_matches(values.get(f), pats) for f, pats in d.when.items()):
            for k, vs in d.adds.items():
                adds[k].update(vs)
    return EventLogsource(frozenset(adds["product"]), frozenset(adds["category"]), frozenset(adds["service"]))


def _values(event: dict) -> dict:
    return {f: _lowered_key(event.get(f)) for f in DERIVATION_FIELDS}


def test_every_example_event_and_every_named_value_derives_as_before():
    mappings = load_mappings()
    events = [ev for _, ev in example_events()]
    for d in mappings.derivations:  # an event made of each derivation's own patterns, taken as values
        events.append({f: (list(pats) if len(pats) > 1 else pats[0]) for f, pats in d.when.items()})
        events.append({f: pats[-1] + "x" for f, pats in d.when.items()})
    for ev in events:
        assert mappings._derive(_values(ev)) == _reference_derive(mappings, _values(ev)), ev
    assert len(events) > 200


_text = st.text(alphabet="ab*?[]!-.\n", max_size=6)


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(st.lists(_text, min_size=1, max_size=4), min_size=1, max_size=3),
    st.one_of(st.none(), _text, st.lists(_text, max_size=3)),
)
def test_generated_patterns_and_values_derive_as_before(pattern_sets, value):
    mappings = FieldMappings()
    for i, pats in enumerate(pattern_sets):
        field = DERIVATION_FIELDS[i]
        mappings.derivations.append(_Derivation({field: tuple(pats)}, {"product": (f"p{i}",)}))
    values = {f: _lowered_key(value) for f in DERIVATION_FIELDS}
    assert mappings._derive(values) == _reference_derive(mappings, values)
