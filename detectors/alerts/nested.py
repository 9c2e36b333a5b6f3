"""Flat dotted ECS keys -> nested objects, the one conversion used at the Elasticsearch boundary.

Events travel flat (fast for matching); Elasticsearch mappings, Kibana and the ECS reference are
nested. A key that is both a value and a parent (`process: "sshd"` next to `process.pid: 1`, which
valid ECS never produces but a hostile log can) keeps both: the scalar moves to `<parent>.value`,
whatever the key order, so the conversion never loses data and never depends on dict order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COLLISION_KEY = "value"


def to_nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Nest dotted keys (`{"source.ip": x}` -> `{"source": {"ip": x}}`); nested input merges too."""
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


def to_flat(nested: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Inverse of `to_nested` for display (lists are kept as values)."""
    out: dict[str, Any] = {}
    for key, value in nested.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(to_flat(value, dotted + "."))
        else:
            out[dotted] = value
    return out
