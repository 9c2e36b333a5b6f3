"""An alert's evidence: the events that made it, bounded so one alert stays a small document.

At most EVIDENCE_MAX_EVENTS events of at most EVIDENCE_MAX_FIELDS fields, strings cut to
EVIDENCE_MAX_CHARS, the fields an analyst reads first kept when a cap drops some. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detectors.alerts.nested import nest_plain, to_nested

EVIDENCE_MAX_EVENTS = 20
EVIDENCE_MAX_FIELDS = 128
EVIDENCE_MAX_CHARS = 2048


def bound_evidence(events: list[Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """At most 20 events of at most 128 fields, strings cut to 2 KiB; nested; plus the field names seen.

    An event within the bounds (the usual case) is nested as it is, without a bounded copy first."""
    kept: list[dict[str, Any]] = []
    names: set[str] = set()
    for event in events[:EVIDENCE_MAX_EVENTS]:
        if type(event) is not dict and not isinstance(event, Mapping):
            continue
        if len(event) <= EVIDENCE_MAX_FIELDS and type(event) is dict and _within_bounds(event):
            names.update(event)
            kept.append(nest_plain(event))
            continue
        flat = {}
        for key in sorted(event, key=_evidence_order)[:EVIDENCE_MAX_FIELDS]:
            flat[str(key)] = _bounded(event[key])
            names.add(str(key))
        kept.append(to_nested(flat))
    try:
        ordered = sorted(names)
    except TypeError:  # keys of several types
        ordered = []
    if ordered and type(ordered[0]) is str and type(ordered[-1]) is str:
        return kept, ordered  # str keys (str and other builtin keys do not sort together)
    return kept, sorted({k if type(k) is str else str(k) for k in names})


def _within_bounds(event: Mapping[Any, Any]) -> bool:
    """Every value already within what `_bounded` would make of it: strings of at most 2 KiB, plain
    scalars, lists of at most 64 of those (so, no mappings: `nest_plain` may nest it)."""
    for value in event.values():
        kind = type(value)
        if kind is str:
            if len(value) > EVIDENCE_MAX_CHARS:
                return False
        elif kind is list:
            if len(value) > 64 or not _PLAIN.issuperset(map(type, value)):
                return False
            for v in value:
                if type(v) is str and len(v) > EVIDENCE_MAX_CHARS:
                    return False
        elif kind not in _PLAIN:
            return False
    return True


_PLAIN = frozenset((str, int, float, bool, type(None)))


_EVIDENCE_FIRST = (
    "@timestamp",
    "message",
    "event.",
    "organization.",
    "host.",
    "source.",
    "destination.",
    "user.",
    "process.",
    "url.",
    "http.",
    "log.",
)


def _evidence_order(key: Any) -> tuple[bool, str]:
    """Fields an analyst needs first, so the cap drops exotic fields rather than the message."""
    k = str(key)
    return (not k.startswith(_EVIDENCE_FIRST), k)


def _bounded(value: Any) -> Any:
    if isinstance(value, str):
        return value[:EVIDENCE_MAX_CHARS]
    if isinstance(value, (list, tuple)):
        return [_bounded(v) for v in list(value)[:64]]
    if isinstance(value, Mapping):
        return {str(k): _bounded(v) for k, v in list(value.items())[:EVIDENCE_MAX_FIELDS]}
    return value
