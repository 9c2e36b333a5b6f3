"""Typed rule objects produced by the loader and consumed by the engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

STATUSES = ("stable", "test", "experimental", "deprecated", "unsupported")
CORRELATION_TYPES = (
    "event_count",
    "value_count",
    "temporal",
    "temporal_ordered",
    "value_sum",
    "value_avg",
    "value_percentile",
)


@dataclass
class RuleMeta:
    """What a rule says of itself (id, title, level, tags...) and where it was read."""

    id: str
    title: str
    name: str | None = None
    description: str = ""
    level: str = "medium"
    status: str = "experimental"
    author: str = ""
    tags: list[Any] = field(default_factory=list)
    references: list[Any] = field(default_factory=list)
    falsepositives: list[Any] = field(default_factory=list)
    fields: list[Any] = field(default_factory=list)
    path: str = ""
    line: int = 0


@dataclass
class SigmaRule:
    """A single-event detection compiled to one predicate over flat ECS events."""

    meta: RuleMeta
    logsource: dict[str, Any]
    match: Callable[[dict[str, Any]], bool]
    # index atoms (see compile.py) or None: always evaluate; or how to work them out (read as `need`): a
    # callable giving them, or giving (atoms, clauses) (typed.Compiled.get_index)
    need_of: frozenset[Any] | None | Callable[[], Any]
    detection: dict[str, Any] = field(default_factory=dict, repr=False)
    kind: str = "single"
    _clauses: tuple[frozenset[Any], ...] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def id(self) -> str:
        return self.meta.id

    @property
    def need(self) -> frozenset[Any] | None:
        """The index atoms, worked out on first read (an Engine reads them; `rules lint` never does)."""
        src = self.need_of
        if callable(src):
            try:
                got = src()
            except RecursionError:  # a condition nested too deep to work out: no atoms, always evaluated
                got = None, ()
            src, clauses = got if type(got) is tuple else (got, None)
            self.need_of, self._clauses = src, clauses
        return src

    @property
    def clauses(self) -> tuple[frozenset[Any], ...]:
        """Atom sets that must ALL hold for the rule to match (atoms.py; the first-read rule as `need`);
        a rule given only its atoms has those as its one clause."""
        need = self.need
        clauses = self._clauses
        if clauses is None:
            clauses = self._clauses = (need,) if need else ()
        return clauses


@dataclass
class CorrelationRule:
    """A Sigma v2 correlation over other rules' matches, on event time."""

    meta: RuleMeta
    type: str
    rule_refs: list[str]  # as written (ids or names)
    group_by: list[Any]
    timespan: float  # seconds
    condition: dict[str, Any]  # {"gte": 5, ...}; empty for temporal types = all rules
    value_fields: list[str]  # `condition.field` for value_* types
    aliases: dict[str, dict[str, str]]  # alias -> {rule name/id: field}
    generate: bool = False
    rules: list[Any] = field(default_factory=list)  # resolved referenced rule ids, in order
    kind: str = "correlation"

    @property
    def id(self) -> str:
        return self.meta.id

    def group_field(self, group: str, rule_id: str, rule_name: str | None) -> str:
        """Event field holding group-by `group` for events matched by the given input rule."""
        alias = self.aliases.get(group)
        if alias:
            return alias.get(rule_id) or alias.get(rule_name or "") or group
        return group


@dataclass
class MetaFilter:
    """A Sigma meta-filter: events its detection matches are taken out of the rules it names."""

    meta: RuleMeta
    logsource: dict[str, Any]
    rule_refs: list[Any]
    match: Callable[[dict[str, Any]], bool]


@dataclass
class LoadIssue:
    """A problem found loading rules: file, line, rule title, why."""

    path: str
    line: int
    rule: str
    message: str
    severity: str = "error"  # "error": rule not loaded; "warning": loaded, but note it

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.rule + ': ' if self.rule else ''}{self.message}"


@dataclass
class LoadResult:
    """What load_rules gives: the rules and meta-filters loaded, the problems, the counts."""

    rules: list[Any] = field(default_factory=list)  # SigmaRule and CorrelationRule, load order
    filters: list[Any] = field(default_factory=list)  # MetaFilter, already applied to their rules
    errors: list[Any] = field(default_factory=list)  # LoadIssue(severity="error")
    warnings: list[Any] = field(default_factory=list)
    documents: int = 0  # rule documents seen (loaded + failed)
    files: int = 0

    @property
    def loaded(self) -> int:
        return len(self.rules) + len(self.filters)
