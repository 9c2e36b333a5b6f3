"""Lint: a rule field that no parser of the rule's logsource emits can never match.

Which events a rule sees is decided by logsource derivation (detectors/mappings); which fields
those events carry is the field reference (detectors/normalise/reference.py, generated from the
parser examples). A rule whose logsource no parser serves (a Windows rule, say) is not checked
here: it simply never sees an event.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from detectors.sigma.mapping import FieldMappings
from detectors.sigma.model import CorrelationRule, LoadIssue, SigmaRule

# Namespaces that hold a source's own raw field names (Windows EventData: every provider has its own,
# no parser example can list them all): a rule field mapped there is not checked.
RAW_NAMESPACES = ("winlog.event_data.", "winlog.user_data.")
# Fields the worker adds to every event before matching (not the parsers' doing)
WORKER_FIELDS = frozenset({"organization.id", "agent.id", "agent.type", "host.name", "log.offset", "socpipe.seq"})


def _base(name: str) -> str:
    return name.split("[", 1)[0]


def detection_fields(detection: dict[str, Any]) -> list[str]:
    """Field names (as written, modifiers stripped) of every selection; keywords excluded."""
    seen: dict[str, None] = {}  # first-seen order
    for name, body in detection.items():
        if name in ("condition", "timeframe"):
            continue
        if isinstance(body, dict):
            maps: list[Any] = [body]
        elif isinstance(body, list):
            maps = [item for item in body if isinstance(item, dict)]
        else:
            continue
        for mapping in maps:
            for key in mapping:
                field = (key if type(key) is str else str(key)).split("|", 1)[0]
                if field:
                    seen[field] = None
    return list(seen)


_LOGSOURCE_KEYS = frozenset({"product", "category", "service"})


def _logsource_key(logsource: dict[str, Any]) -> tuple[Any, ...]:
    """Equal for logsources that are equal (so are what they admit and how their fields map)."""
    if logsource.keys() <= _LOGSOURCE_KEYS:  # a rule's (loader._logsource)
        return (logsource.get("product"), logsource.get("category"), logsource.get("service"))
    return tuple(sorted((k, str(v)) for k, v in logsource.items()))


class FieldChecker:
    def __init__(self, mappings: FieldMappings, events: Iterable[dict[str, Any]]):
        self.mappings = mappings
        self.events = list(events)
        # per distinct logsource of the example events: (that logsource, the fields and datasets of its
        # events), made once
        self._derived: list[tuple[Any, frozenset[str], frozenset[str]]] | None = None
        self._seen: dict[tuple[Any, ...], tuple[frozenset[Any], frozenset[Any]]] = {}

    def emitted(self, logsource: dict[str, Any]) -> tuple[frozenset[Any], frozenset[Any]]:
        """(fields, datasets) of the example events this logsource admits."""
        return self._emitted(_logsource_key(logsource), logsource)

    def _emitted(self, key: tuple[Any, ...], logsource: dict[str, Any]) -> tuple[frozenset[Any], frozenset[Any]]:
        hit = self._seen.get(key)
        if hit is None:
            fields: set[str] = set()
            datasets: set[str] = set()
            for derived, names, sets in self._by_logsource():
                if derived.admits(logsource):
                    fields |= names
                    datasets |= sets
            hit = self._seen[key] = (
                frozenset(fields | WORKER_FIELDS) if datasets else frozenset(),
                frozenset(datasets),
            )
        return hit

    def _by_logsource(self) -> list[tuple[Any, frozenset[str], frozenset[str]]]:
        if self._derived is None:
            grouped: dict[Any, tuple[set[str], set[str]]] = {}
            for ev in self.events:
                names, sets = grouped.setdefault(self.mappings.derive(ev), (set(), set()))
                names.update(_base(k) for k in ev)
                sets.add(str(ev.get("event.dataset")))
            self._derived = [(ls, frozenset(n), frozenset(d)) for ls, (n, d) in grouped.items()]
        return self._derived

    def check(self, rules: list[Any]) -> list[LoadIssue]:
        by_ref: dict[str, SigmaRule] = {}
        for r in rules:
            if isinstance(r, SigmaRule):
                by_ref[r.meta.id] = r
                if r.meta.name:
                    by_ref[r.meta.name] = r
        issues: list[LoadIssue] = []
        known: dict[tuple[Any, ...], bool] = {}  # (logsource key, field) -> emitted
        for r in rules:
            if isinstance(r, SigmaRule):
                key = _logsource_key(r.logsource)
                fields, datasets = self._emitted(key, r.logsource)
                if not datasets:
                    continue
                resolve = None
                for name in detection_fields(r.detection):
                    ok = known.get((key, name))
                    if not ok:  # not worked out yet (None), or not emitted
                        resolve = resolve or self.mappings.resolver(r.logsource)
                        keys = resolve(name)
                        if ok is None:
                            ok = known[(key, name)] = self._emits(keys, fields)
                        if not ok:
                            issues.extend(self._issue(r, name, keys, fields, datasets))
            elif isinstance(r, CorrelationRule):
                inputs = [by_ref[ref] for ref in r.rule_refs if ref in by_ref]
                for inp in inputs:
                    fields, datasets = self.emitted(inp.logsource)
                    if not datasets:
                        continue
                    wanted = list(r.group_by) + list(r.value_fields)
                    for name in wanted:
                        keys = (r.group_field(name, inp.meta.id, inp.meta.name),)
                        issues.extend(self._issue(r, name, keys, fields, datasets, via=inp.meta.name or inp.meta.id))
        return issues

    @staticmethod
    def _emits(keys: tuple[Any, ...], fields: frozenset[Any]) -> bool:
        return any(_base(k) in fields or k.startswith(RAW_NAMESPACES) for k in keys)

    @staticmethod
    def _issue(
        rule: Any, name: str, keys: tuple[Any, ...], fields: frozenset[Any], datasets: frozenset[Any], via: str = ""
    ) -> Any:
        if FieldChecker._emits(keys, fields):
            return []
        shown = name if keys == (name,) else f"{name} (-> {', '.join(keys)})"
        where = f" (events of input rule {via})" if via else ""
        return [
            LoadIssue(
                rule.meta.path,
                rule.meta.line,
                rule.meta.title,
                f"field {shown} is emitted by no parser of this logsource{where}: datasets "
                f"{', '.join(sorted(datasets))}; see `socpipe fields`",
                "warning",
            )
        ]


def field_warnings(rules: list[Any], mappings: FieldMappings | None = None) -> list[LoadIssue]:
    from detectors.normalise.reference import example_events
    from detectors.sigma.mapping import load_mappings

    events = [ev for _, ev in example_events()]
    return FieldChecker(mappings if mappings is not None else load_mappings(), events).check(rules)
