"""Flat dotted ECS keys -> nested objects, the one conversion used at the Elasticsearch boundary.

Events travel flat (fast for matching); Elasticsearch mappings, Kibana and the ECS reference are
nested. A key that is both a value and a parent (`process: "sshd"` next to `process.pid: 1`, which
valid ECS never produces but a hostile log can) keeps both: the scalar moves to `<parent>.value`,
whatever the key order, so the conversion never loses data and never depends on dict order.

Events of one parser share their keys, so the shape of the result is planned once per key layout
(seen twice) and then filled in C-level steps (`_Plan`): the same document, key order included, as
the general walk gives; odd layouts (collisions, non-str keys), wide ones and mapping values take the
walk. The plans are bounded by the keys they hold in total, not only by their number.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COLLISION_KEY = "value"


def to_nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Nest dotted keys (`{"source.ip": x}` -> `{"source": {"ip": x}}`); nested input merges too."""
    if type(flat) is dict and _LEAF_TYPES.issuperset(map(type, flat.values())):
        return nest_plain(flat)
    return _walk(flat)


def nest_plain(flat: dict[str, Any]) -> dict[str, Any]:
    """`to_nested` of a dict none of whose values is a mapping (the caller has checked)."""
    global _planned_keys
    n = len(flat)
    if n < 2 or n > _PLAN_MAX_KEYS:  # wide layouts (hostile or rare) take the walk: no plan, nothing kept
        return _walk(flat)
    layout = tuple(flat)
    plan = _PLANS.get(layout, _UNSEEN)
    if plan is _UNSEEN:
        if len(_PLANS) >= _MAX_PLANS or _planned_keys + n > _MAX_PLANNED_KEYS:
            _PLANS.clear()
            _planned_keys = 0
        _PLANS[layout] = _SEEN_ONCE  # a plan only for layouts that come back
        _planned_keys += n
        return _walk(flat)
    if plan is _SEEN_ONCE:
        plan = _PLANS[layout] = _Plan.of(layout)
    return plan.fill(flat) if plan is not None else _walk(flat)


def _walk(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    prev_parents: tuple[str, ...] = _PARENTS[()]
    prev_node = out
    paths = _PATHS
    for key in _sorted_keys(flat):  # sorted: collisions resolve the same for any input order
        value = flat[key]
        kind = type(value)
        if kind is not str and kind not in _SCALARS and (kind is dict or isinstance(value, Mapping)):
            value = to_nested(value)
        path = paths.get(key) if type(key) is str else None
        if path is None:
            path = _path(str(key))
        parents, last = path
        if parents is prev_parents:  # sorted keys: siblings are neighbours, their parent is known
            node = prev_node
        else:
            node = out  # _put, inlined for the common case
            for part in parents:
                child = node.get(part)
                if type(child) is not dict:
                    child = {} if child is None else {COLLISION_KEY: child}
                    node[part] = child
                node = child
            prev_parents, prev_node = parents, node
        if node.get(last) is None:
            node[last] = value
        else:
            _put(node, [last], value)
    return out


# dotted key -> (parent segments, last segment); bounded, as keys come from the logs
_PATHS: dict[str, tuple[tuple[str, ...], str]] = {}


_PARENTS: dict[tuple[str, ...], tuple[str, ...]] = {(): ()}


def _path(key: str) -> tuple[tuple[str, ...], str]:
    parts = [p for p in key.split(".") if p] or [key]
    parents = tuple(parts[:-1])
    if len(_PATHS) < 8192:
        parents = _PARENTS.setdefault(parents, parents)  # one object per parent path: `is` compares
        _PATHS[key] = (parents, parts[-1])
    return parents, parts[-1]


_SCALARS = frozenset((str, int, float, bool, list, type(None)))


def _sorted_keys(flat: Mapping[str, Any]) -> list[Any]:
    """The keys in str order (as `sorted(flat, key=str)`), without str() per key when they are str."""
    try:
        keys = sorted(flat)
    except TypeError:
        return sorted(flat, key=str)
    if keys and type(keys[0]) is not str:
        keys.sort(key=str)
    return keys


def _put(node: dict[str, Any], parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        child = node.get(part)
        if type(child) is not dict:
            child = {} if child is None else {COLLISION_KEY: child}
            node[part] = child
        node = child
    last = parts[-1]
    existing = node.get(last)
    if type(existing) is dict:
        if type(value) is dict:
            for k, v in value.items():
                _put(existing, [k], v)
        else:
            _put(existing, [COLLISION_KEY], value)
    elif existing is not None and type(value) is dict:
        node[last] = value
        _put(value, [COLLISION_KEY], existing)
    else:
        node[last] = value


class _Leaf:
    """A stand-in value while a layout is planned: where the walk puts it is where its key goes."""

    __slots__ = ("key",)

    def __init__(self, key: str):
        self.key = key


class _Plan:
    """The nested document of one key layout as one expression: a dict display per object, each
    value read from the flat event by its key (`{"source": {"ip": f["source.ip"]}, ...}`), in the
    walk's key order. Only `repr` of str keys goes into the source, which always reads back as that
    same string."""

    __slots__ = ("fill",)

    def __init__(self, fill: Any):
        self.fill = fill

    @classmethod
    def of(cls, layout: tuple[Any, ...]) -> _Plan | None:
        """The plan of a key layout, or None when the walk must decide (collisions, odd keys)."""
        if len(layout) > _PLAN_MAX_KEYS or not all(type(k) is str for k in layout):
            return None
        shape = _walk({k: _Leaf(k) for k in layout})
        placed = 0

        def source(node: dict[str, Any], at: tuple[str, ...]) -> str | None:
            nonlocal placed
            if len(at) > _PLAN_MAX_DEPTH:
                return None
            parts = []
            for name, value in node.items():
                if type(value) is dict:
                    inner = source(value, (*at, name))
                    if inner is None:
                        return None
                    parts.append(f"{name!r}: {inner}")
                elif type(value) is _Leaf and _path(value.key) == (at, name):
                    parts.append(f"{name!r}: f[{value.key!r}]")
                    placed += 1
                else:
                    return None  # a value moved aside by a collision
            return "{" + ", ".join(parts) + "}"

        body = source(shape, ())
        if body is None or placed != len(layout):
            return None
        return cls(eval(compile(f"lambda f: {body}", "<nesting plan>", "eval"), {}))  # noqa: S307


# Memory is bounded by keys, not layouts: a plan keeps ~0.5-0.7 KiB per key (its code and the layout),
# and layouts come from the logs (auditd copies every record key), so a count of plans alone let varied
# wide layouts hold hundreds of MB per worker. Layouts of more than _PLAN_MAX_KEYS keys are never
# planned; all layouts kept (planned or seen once) hold at most _MAX_PLANNED_KEYS keys together.
_PLAN_MAX_KEYS = 128
_PLAN_MAX_DEPTH = 16
_UNSEEN: Any = object()
_SEEN_ONCE: Any = object()
_MAX_PLANS = 1024
_MAX_PLANNED_KEYS = 32768
_PLANS: dict[tuple[Any, ...], Any] = {}  # key layout -> _Plan | None (walk) | _SEEN_ONCE; bounded
_planned_keys = 0  # keys of the layouts in _PLANS
_LEAF_TYPES = frozenset((str, int, float, bool, list, type(None)))  # values the walk keeps as they are


def to_flat(nested: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Inverse of `to_nested` for display (lists are kept as values)."""
    out: dict[str, Any] = {}
    _flatten_into(out, nested, prefix)
    return out


def _flatten_into(out: dict[str, Any], nested: Mapping[str, Any], prefix: str) -> None:
    """`out.update(to_flat(nested, prefix))` without a dict per level: a key already in `out` takes
    the new value in its old place, as update does."""
    for key, value in nested.items():
        kind = type(value)
        if kind is dict or (kind not in _SCALARS and isinstance(value, Mapping)):
            _flatten_into(out, value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
