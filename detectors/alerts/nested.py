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
    for key in sorted(flat, key=str):  # sorted: collisions resolve the same for any input order
        value = flat[key]
        if isinstance(value, Mapping):
            value = to_nested(value)
        parts = [p for p in str(key).split(".") if p] or [str(key)]
        _put(out, parts, value)
    return out


def _put(node: dict[str, Any], parts: list[str], value: Any) -> None:
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
                _put(existing, [k], v)
        else:
            _put(existing, [COLLISION_KEY], value)
    elif existing is not None and isinstance(value, dict):
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
