"""The fast paths of alert building give exactly what the plain ones gave: nesting (key order included,
collisions, odd keys) and bounded evidence (events within the bounds are nested as they are)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.alerts.attack import threat_from_tags
from detectors.alerts.evidence import EVIDENCE_MAX_CHARS, EVIDENCE_MAX_FIELDS, _evidence_order, bound_evidence
from detectors.alerts.nested import COLLISION_KEY, to_flat, to_nested


def _ref_nested(flat: Mapping[Any, Any]) -> dict[str, Any]:
    """to_nested before the fast paths (sorted by str, split, _put per key)."""
    out: dict[str, Any] = {}
    for key in sorted(flat, key=str):
        value = flat[key]
        if isinstance(value, Mapping):
            value = _ref_nested(value)
        parts = [p for p in str(key).split(".") if p] or [str(key)]
        _ref_put(out, parts, value)
    return out


def _ref_put(node: dict[str, Any], parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {} if child is None else {COLLISION_KEY: child}
            node[part] = child
        node = child
    last = parts[-1]
    existing = node.get(last)
    if isinstance(existing, dict):
        if isinstance(value, dict):
            for k, v in value.items():
                _ref_put(existing, [k], v)
        else:
            _ref_put(existing, [COLLISION_KEY], value)
    elif existing is not None and isinstance(value, dict):
        node[last] = value
        _ref_put(value, [COLLISION_KEY], existing)
    else:
        node[last] = value


def _ref_bounded(value: Any) -> Any:
    if isinstance(value, str):
        return value[:EVIDENCE_MAX_CHARS]
    if isinstance(value, (list, tuple)):
        return [_ref_bounded(v) for v in list(value)[:64]]
    if isinstance(value, Mapping):
        return {str(k): _ref_bounded(v) for k, v in list(value.items())[:EVIDENCE_MAX_FIELDS]}
    return value


def _ref_evidence(events: list[Any]) -> tuple[list[dict[str, Any]], list[str]]:
    kept, names = [], set()
    for event in events[:20]:
        if not isinstance(event, Mapping):
            continue
        flat = {}
        for key in sorted(event, key=_evidence_order)[:EVIDENCE_MAX_FIELDS]:
            flat[str(key)] = _ref_bounded(event[key])
            names.add(str(key))
        kept.append(_ref_nested(flat))
    return kept, sorted(names)


_keys = st.sampled_from(
    ["a", "a.b", "a.b.c", "a.c", "b", "b.a", ".", "a..b", "a.", ".a", "", "source.ip", "source", "x.y.z", "x.y"]
)
_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=4))
_values = st.recursive(
    _scalars,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(_keys, kids, max_size=3),
    max_leaves=12,
)


def _same(a: Any, b: Any) -> None:
    assert json.dumps(a) == json.dumps(b)  # equal, and in the same key order


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=8))
def test_to_nested_equals_the_plain_walk(flat):
    for _ in range(3):  # first sight, second (planned) and planned use of the key layout
        _same(to_nested(flat), _ref_nested(flat))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_keys, _scalars, min_size=2, max_size=8), st.lists(_scalars, min_size=8, max_size=8))
def test_planned_layout_takes_any_values(flat, values):
    """A layout planned with some values nests other values (None, lists, mappings) like the walk."""
    to_nested(flat), to_nested(flat)
    for swap in (values, [None] * 8, [{"p": 1}] * 8, [[1, 2]] * 8):
        other = dict(zip(flat, swap))
        _same(to_nested(other), _ref_nested(other))


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.integers(0, 30), _scalars, max_size=6))
def test_to_nested_non_string_keys(flat):
    _same(to_nested(flat), _ref_nested(flat))


def _ref_flat(nested: Mapping[Any, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in nested.items():
        if isinstance(value, Mapping):
            out.update(_ref_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


_nested_values = st.recursive(_scalars, lambda inner: st.dictionaries(_keys, inner, max_size=4), max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_keys, _nested_values, max_size=6))
def test_to_flat_equals_the_plain_walk(nested):
    """Dotted keys that meet nested ones ({"a.b": 1, "a": {"b": 2}}) keep the first one's place and
    the last value, as repeated dict updates did."""
    _same(to_flat(nested), _ref_flat(nested))
    _same(to_flat(to_nested(nested)), _ref_flat(to_nested(nested)))


_event_values = st.one_of(
    _scalars,
    st.text(min_size=2040, max_size=2060),
    st.lists(st.one_of(_scalars, st.text(min_size=2045, max_size=2050)), max_size=70),
    st.tuples(st.integers(), st.text(max_size=3)),
    st.dictionaries(st.sampled_from(["p", "q.r"]), _scalars, max_size=2),
)


@settings(max_examples=120, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.dictionaries(_keys, _event_values, max_size=8),
            st.dictionaries(st.text(min_size=1, max_size=3), st.integers(), min_size=120, max_size=140),
            st.integers(),
        ),
        max_size=22,
    )
)
def test_bound_evidence_equals_the_plain_copy(events):
    ref_kept, ref_names = _ref_evidence(events)
    for _ in range(3):  # key layouts seen once, then planned
        kept, names = bound_evidence(events)
        _same(kept, ref_kept)
        assert names == ref_names


def test_threat_objects_are_fresh_copies():
    tags = ["attack.credential_access", "attack.t1110.001"]
    a = threat_from_tags(tags)
    a["tactic"]["id"].append("x")
    a["technique"]["subtechnique"]["id"].clear()
    b = threat_from_tags(tags)
    assert b["tactic"]["id"] == ["TA0006"] and b["technique"]["subtechnique"]["id"] == ["T1110.001"]
    assert threat_from_tags(["attack.g0032", "x"]) == {}


def test_nesting_plans_are_bounded_by_keys_not_by_count() -> None:
    """Layouts come from the logs: many varied wide layouts (each seen twice, so each would be planned)
    must not make the plans hold more than a bounded number of keys in total, and wide layouts nest
    exactly as the walk does whether planned or not."""
    from detectors.alerts import nested

    nested._PLANS.clear()
    nested._planned_keys = 0
    widest = 0
    for i in range(400):  # 400 layouts x 200 keys = 80,000 keys if every layout were kept
        flat = {f"auditd.log.k{i}_{j}.{'x' * 40}": j for j in range(200)}
        for _ in range(2):
            assert nested.to_nested(flat) == _ref_nested(flat)
        widest = max(widest, sum(len(layout) for layout in nested._PLANS))
    assert widest <= 40_000
    for i in range(2000):  # narrow layouts still get plans, within the same bound
        narrow = {f"a{i}.b": 1, f"a{i}.c": 2, "source.ip": "192.0.2.1"}
        for _ in range(2):
            assert nested.to_nested(narrow) == _ref_nested(narrow)
        widest = max(widest, sum(len(layout) for layout in nested._PLANS))
    assert widest <= 40_000
    assert any(isinstance(plan, nested._Plan) for plan in nested._PLANS.values())
