"""Correlation inputs and their partition keys: what stage 1 sends to stage 2 (see the package doc).

An input rule's routes, one per chain of correlations it feeds up to a root that emits: the root's id
and the group-by names common to every correlation of the chain, each read from this input's own
field (aliases resolved). `correlation_inputs` groups an event's matched rules by the values of those
fields into one `CorrelationInput` per partition key: `k:` + the (name, value) pairs as JSON, "k:*"
with no group-by. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# (root correlation id, ((group-by name, this input's event field), ...) sorted by name)
Route = tuple[str, tuple[tuple[str, str], ...]]


@dataclass
class CorrelationInput:
    """One event's contribution to correlations, routed by `partition_key` (see package doc)."""

    partition_key: str
    ts: float
    event: dict[str, Any]
    rules: list[str]  # matched input rule ids
    roots: list[str]  # root correlation ids this key serves
    # stage 1's identity of the event (agent|source|seq, or partition@offset:line): a redelivered
    # input carries the same id and stage 2 counts it once. "" (old workers): never deduplicated.
    id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "partition_key": self.partition_key,
            "ts": self.ts,
            "event": self.event,
            "rules": self.rules,
            "roots": self.roots,
            "id": self.id,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CorrelationInput:
        ident = d.get("id", "")
        return cls(
            str(d["partition_key"]),
            float(d["ts"]),
            dict(d["event"]),
            list(d["rules"]),
            list(d["roots"]),
            ident if isinstance(ident, str) else "",
        )


def chain_routes(
    rule_id: str, parents: Mapping[Any, Any], emit_standalone: set[Any], by_id: Mapping[Any, Any]
) -> list[Route]:
    """(root id, key fields as (group name, event field of this input)) per chain.

    `parents[x]`: the correlations referring to rule x; `emit_standalone`: the ids whose detections
    are emitted (a chain ends at a correlation no other refers to, or one that emits)."""
    routes = []

    def walk(node_id: Any, path: Any) -> None:
        for parent in parents.get(node_id, []):
            chain = path + [parent]
            if parent.id not in parents or parent.id in emit_standalone:
                routes.append(chain)
            if parent.id in parents:
                walk(parent.id, chain)

    walk(rule_id, [])
    out = []
    for chain in routes:
        names = set(chain[0].group_by)
        for c in chain[1:]:
            names &= set(c.group_by)
        first = chain[0]
        rule = by_id[rule_id]
        fields = tuple(sorted((n, first.group_field(n, rule_id, rule.meta.name)) for n in names))
        out.append((chain[-1].id, fields))
    return out


def correlation_inputs(
    routes: Mapping[str, list[Route]], event: dict[str, Any], matched: list[Any], ts: float, input_id: str = ""
) -> list[CorrelationInput]:
    """One CorrelationInput per partition key the `matched` rules' routes send this event to."""
    # keys stay tuples while inputs are grouped; each distinct key is rendered once, at the end
    by_values: dict[Any, tuple[set[str], set[str]]] = {}
    get = event.get
    for rule in matched:
        for root, fields in routes.get(rule.id, ()):
            values: Any = tuple([(n, v if type(v := get(f)) is str else hashable(v)) for n, f in fields])
            try:
                item = by_values.get(values)
            except TypeError:  # an unhashable value in an odd event: key it by its text
                values = render_key(values)
                item = by_values.get(values)
            if item is None:
                item = by_values[values] = (set(), set())
            item[0].add(rule.id)
            item[1].add(root)
    if not by_values:
        return []
    by_key: dict[str, Any] = {}
    for values, (rule_ids, roots) in by_values.items():
        key = values if type(values) is str else render_key(values)
        have = by_key.get(key)
        if have is None:
            by_key[key] = (rule_ids, roots)
        else:  # two value tuples with one rendering (1 and 1.0): one partition key, one input
            have[0].update(rule_ids)
            have[1].update(roots)
    return [CorrelationInput(k, ts, event, sorted(v[0]), sorted(v[1]), input_id) for k, v in sorted(by_key.items())]


def render_key(values: tuple[Any, ...]) -> str:
    """The partition key as written to Kafka: `k:` + the group-by (name, value) pairs as JSON."""
    if not values:
        return "k:*"
    memo = all(type(v) is str for _, v in values)  # equal str pairs render equally (1 == 1.0 == True do not)
    if memo and (key := _KEYS.get(values)) is not None:
        return key
    key = "k:" + encode_key([list(p) for p in values])
    if memo:
        if len(_KEYS) >= 65536:
            _KEYS.clear()
        _KEYS[values] = key
    return key


# same bytes as json.dumps(..., separators=(",", ":"), default=str), without an encoder per call
encode_key = json.JSONEncoder(separators=(",", ":"), default=str).encode
_KEYS: dict[tuple[Any, ...], str] = {}  # str group values -> rendered partition key; bounded


def hashable(v: Any) -> Any:
    """A group or metric value as a hashable one: lists as tuples, mappings as their sorted JSON."""
    if isinstance(v, list):
        return tuple(hashable(x) for x in v)
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True, default=str)
    return v
