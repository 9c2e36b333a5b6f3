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
    out: list[str] = []

    def take(mapping: dict[str, Any]) -> None:
        for key in mapping:
            name = str(key).split("|", 1)[0]
            if name and name not in out:
                out.append(name)

    for name, body in detection.items():
        if name in ("condition", "timeframe"):
            continue
        if isinstance(body, dict):
            take(body)
        elif isinstance(body, list):
            for item in body:
                if isinstance(item, dict):
                    take(item)
    return out


class FieldChecker:
    def __init__(self, mappings: FieldMappings, events: Iterable[dict[str, Any]]):
        self.mappings = mappings
        self.events = list(events)
        # (event logsource, its fields, its dataset) per example event, made once
        self._derived: list[tuple[Any, frozenset[str], str]] | None = None
        self._seen: dict[tuple[Any, ...], tuple[frozenset[Any], frozenset[Any]]] = {}

    def emitted(self, logsource: dict[str, Any]) -> tuple[frozenset[Any], frozenset[Any]]:
        """(fields, datasets) of the example events this logsource admits."""
        key = tuple(sorted((k, str(v)) for k, v in logsource.items()))
        hit = self._seen.get(key)
        if hit is None:
            fields: set[str] = set()
            datasets: set[str] = set()
            if self._derived is None:
                self._derived = [
                    (self.mappings.derive(ev), frozenset(_base(k) for k in ev), str(ev.get("event.dataset")))
                    for ev in self.events
                ]
            for derived, names, dataset in self._derived:
                if derived.admits(logsource):
                    fields |= names
                    datasets.add(dataset)
            hit = self._seen[key] = (
                frozenset(fields | WORKER_FIELDS) if datasets else frozenset(),
                frozenset(datasets),
            )
        return hit

    def check(self, rules: list[Any]) -> list[LoadIssue]:
        by_ref: dict[str, SigmaRule] = {}
        for r in rules:
            if isinstance(r, SigmaRule):
                by_ref[r.meta.id] = r
                if r.meta.name:
                    by_ref[r.meta.name] = r
        issues: list[LoadIssue] = []
        for r in rules:
            if isinstance(r, SigmaRule):
                fields, datasets = self.emitted(r.logsource)
                if not datasets:
                    continue
                resolve = self.mappings.resolver(r.logsource)
                for name in detection_fields(r.detection):
                    issues.extend(self._issue(r, name, resolve(name), fields, datasets))
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
    def _issue(
        rule: Any, name: str, keys: tuple[Any, ...], fields: frozenset[Any], datasets: frozenset[Any], via: str = ""
    ) -> Any:
        if any(_base(k) in fields or k.startswith(RAW_NAMESPACES) for k in keys):
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
