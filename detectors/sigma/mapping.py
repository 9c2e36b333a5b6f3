"""Field mappings (Sigma field -> ECS fields) and logsource derivation, loaded from YAML.

Mapping files (detectors/mappings/*.yml) hold, in the spirit of pySigma processing pipelines:

    mappings:                       # field renames, chosen by the RULE's logsource
      - logsource: {category: webserver}
        fields: {cs-method: http.request.method, cs-uri-query: [url.original]}
      - logsource: {product: windows}
        fields: {EventID: event.code}
        unmapped: ["winlog.event_data.{field}"]   # any other undotted name, by template
    logsources:                     # how an EVENT's logsource is derived from its ECS fields
      - when: {event.dataset: [apache.access, nginx.access]}
        category: webserver

A field mapped to a list matches if any of the listed event fields matches. Unmapped fields are
used as written (so rules written directly in ECS need no mapping). Derivation entries add their
product/category/service values to the event's logsource; an event can have several services
(an sshd line in auth.log is service `auth` and service `sshd`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detectors.sigma.ruledocs import RuleYAMLError, document_cache
from detectors.sigma.starglob import star_fits

DEFAULT_MAPPINGS_DIR = Path(__file__).resolve().parent.parent / "mappings"
DERIVATION_FIELDS = ("event.dataset", "event.module", "process.name", "event.category", "winlog.channel", "event.code")
LOGSOURCE_KEYS = ("product", "category", "service")


class MappingError(Exception):
    """A mapping file is malformed (message names the file and the entry)."""


@dataclass(frozen=True)
class EventLogsource:
    """An event's logsource as derived from its fields (products, categories, services)."""

    products: frozenset[Any]
    categories: frozenset[Any]
    services: frozenset[Any]

    def admits(self, rule_logsource: dict[str, Any]) -> bool:
        """A rule sees an event when every logsource attribute it names is one of the event's."""
        for key, have in (("product", self.products), ("category", self.categories), ("service", self.services)):
            want = rule_logsource.get(key)
            if want is not None and str(want).lower() not in have:
                return False
        return True


@dataclass
class _Derivation:
    """One `logsources` entry of a mapping file: field globs, and the logsource values they add."""

    when: dict[str, tuple[str, ...]]  # field -> tuple of glob patterns (lower-case)
    adds: dict[str, tuple[str, ...]]  # "product"/"category"/"service" -> tuple of values

    def __post_init__(self) -> None:
        # per field: the patterns that match only themselves (a set), and the globs (as tests)
        self.tests = tuple(
            (
                f,
                frozenset(p for p in pats if not _WILDCARD.intersection(p)),
                tuple(_glob_test(p) for p in pats if _WILDCARD.intersection(p)),
            )
            for f, pats in self.when.items()
        )


@dataclass
class FieldMappings:
    """The mapping files read: field renames by rule logsource, and logsource derivation."""

    entries: list[Any] = field(default_factory=list)  # (logsource dict, {sigma field: (ecs...)})
    unmapped: list[Any] = field(default_factory=list)  # (logsource dict, templates for fields no entry maps)
    derivations: list[Any] = field(default_factory=list)
    _cache: dict[Any, EventLogsource] = field(default_factory=dict)
    _resolvers: dict[tuple[tuple[str, str], ...], Any] = field(default_factory=dict)

    def resolver(self, rule_logsource: dict[str, Any]) -> Any:
        """Function mapping a rule field to the event keys to read, for this rule's logsource (one
        per distinct logsource: hundreds of rules share a few, and the lint asks again per rule)."""
        try:  # the attributes as given (a rule's are text): the resolver depends on nothing else
            key = tuple(sorted(rule_logsource.items()))
            hit = self._resolvers.get(key)
        except TypeError:  # keys of several types, or a value that cannot be a key
            return self._resolver(rule_logsource)
        if hit is None:
            hit = self._resolvers[key] = self._resolver(rule_logsource)
        return hit

    def _resolver(self, rule_logsource: dict[str, Any]) -> Any:
        matching = [(ls, fields) for ls, fields in self.entries if _applies(ls, rule_logsource)]
        # most specific mapping first: entries naming more logsource attributes win
        matching.sort(key=lambda entry: -len(entry[0]))
        applicable = [fields for _, fields in matching]
        templates = [t for ls, t in sorted(self.unmapped, key=lambda e: -len(e[0])) if _applies(ls, rule_logsource)]
        default = templates[0] if templates else None

        def resolve_once(name: str) -> tuple[Any, ...]:
            for fields in applicable:
                if name in fields:
                    mapped: tuple[Any, ...] = fields[name]
                    return mapped
            # a name with a dot is already an event field (ECS, winlog.*): never prefixed
            if default is not None and "." not in name:
                return tuple(t.replace("{field}", name) for t in default)
            return (name,)

        resolved: dict[str, tuple[Any, ...]] = {}  # rules of a logsource name the same fields again and again

        def resolve(name: str) -> tuple[Any, ...]:
            hit = resolved.get(name)
            if hit is None:
                hit = resolve_once(name)
                if len(resolved) < 10_000:
                    resolved[name] = hit
            return hit

        return resolve

    def derive(self, event: dict[str, Any]) -> EventLogsource:
        key: tuple[Any, ...] | None = derivation_key(event)
        try:
            hit = self._cache.get(key)
        except TypeError:  # an unhashable value in an odd event: derive without caching
            key, hit = None, None
        if hit is None:
            hit = self._derive({f: _lowered_key(event.get(f)) for f in DERIVATION_FIELDS})
            if key is not None and len(self._cache) < 10000:
                self._cache[key] = hit
        return hit

    def _derive(self, values: dict[str, Any]) -> EventLogsource:
        adds: dict[str, Any] = {k: set() for k in LOGSOURCE_KEYS}
        for d in self.derivations:
            for f, exact, globs in d.tests:
                if not _field_matches(values.get(f), exact, globs):
                    break
            else:
                for k, vs in d.adds.items():
                    adds[k].update(vs)
        return EventLogsource(frozenset(adds["product"]), frozenset(adds["category"]), frozenset(adds["service"]))


def _applies(ls: dict[str, Any], rule_logsource: dict[str, Any]) -> bool:
    return all(str(rule_logsource.get(k, "")).lower() == str(v).lower() for k, v in ls.items())


def derivation_key(event: dict[str, Any]) -> tuple[Any, ...]:
    """The raw values logsource derivation depends on (a cache key; may hold unhashables)."""
    cat = event.get("event.category")
    return (
        event.get("event.dataset"),
        event.get("event.module"),
        event.get("process.name"),
        tuple(cat) if type(cat) is list else cat,
        event.get("winlog.channel"),
        event.get("event.code"),
    )


def _lowered_key(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(str(x).lower() for x in v)
    return None if v is None else str(v).lower()


def _field_matches(value: Any, exact: frozenset[str], globs: tuple[Callable[[str], bool], ...]) -> bool:
    """A derivation's condition on one field: the event's (lower-cased) value, or any of its values,
    is one of the plain patterns or fits one of the globs; an absent field only matches ''."""
    if value is None:
        return "" in exact
    if isinstance(value, tuple):
        return any(v in exact or any(fits(v) for fits in globs) for v in value)
    return value in exact or any(fits(value) for fits in globs)


def _glob_test(pattern: str) -> Callable[[str], bool]:
    """fnmatch.fnmatchcase(value, pattern) as a test. A pattern of text and `*` only (all shipped
    ones but `sshd[*`) is matched by its head, tail and the parts between in order (a `*` spans any
    text, newlines too, as fnmatch's): no regex compiled per pattern."""
    if "?" in pattern or "[" in pattern:
        return lambda v: fnmatch.fnmatchcase(v, pattern)
    head, *middle, tail = pattern.split("*")
    return lambda v: star_fits(v, head, middle, tail)


_WILDCARD = frozenset("*?[")  # a pattern without them matches itself only (no regex to compile)


def _as_tuple(v: Any) -> tuple[Any, ...]:
    return tuple(str(x) for x in (v if isinstance(v, list) else [v]))


def parse_mapping_document(doc: dict[str, Any], origin: str, into: FieldMappings) -> None:
    if not isinstance(doc, dict):
        raise MappingError(f"{origin}: top level must be a map")
    into._resolvers.clear()  # resolvers made before these entries would miss them
    for i, entry in enumerate(doc.get("mappings") or []):
        if not isinstance(entry, dict) or not isinstance(entry.get("fields"), dict):
            raise MappingError(f"{origin}: mappings[{i}] needs 'fields' (a map)")
        ls = entry.get("logsource") or {}
        bad = set(ls) - set(LOGSOURCE_KEYS)
        if bad:
            raise MappingError(f"{origin}: mappings[{i}].logsource has unknown keys {sorted(bad)}")
        fields = {str(k): _as_tuple(v) for k, v in entry["fields"].items()}
        into.entries.append((dict(ls), fields))
        if "unmapped" in entry:
            templates = _as_tuple(entry["unmapped"])
            if not templates or not all("{field}" in t for t in templates):
                raise MappingError(f"{origin}: mappings[{i}].unmapped must name '{{field}}' in each template")
            into.unmapped.append((dict(ls), templates))
    for i, entry in enumerate(doc.get("logsources") or []):
        if not isinstance(entry, dict) or not isinstance(entry.get("when"), dict):
            raise MappingError(f"{origin}: logsources[{i}] needs 'when' (a map)")
        bad = set(entry["when"]) - set(DERIVATION_FIELDS)
        if bad:
            raise MappingError(
                f"{origin}: logsources[{i}].when may only test {list(DERIVATION_FIELDS)}, not {sorted(bad)}"
            )
        when = {f: tuple(p.lower() for p in _as_tuple(v)) for f, v in entry["when"].items()}
        adds = {k: tuple(x.lower() for x in _as_tuple(entry[k])) for k in LOGSOURCE_KEYS if k in entry}
        into.derivations.append(_Derivation(when, adds))


_DEFAULT: FieldMappings | None = None


def load_mappings(paths: list[Any] | None = None) -> FieldMappings:
    """Read mapping files (default: the ones shipped in detectors/mappings/, read once)."""
    global _DEFAULT
    if paths is None:
        if _DEFAULT is None:
            _DEFAULT = _read_mappings([DEFAULT_MAPPINGS_DIR])
        return _DEFAULT
    return _read_mappings(paths)


def _read_mappings(paths: list[Any]) -> FieldMappings:
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        files.extend(sorted(p.glob("*.yml")) if p.is_dir() else [p])
    out = FieldMappings()
    cache = document_cache()
    for f in files:
        try:
            docs, _ = cache.documents(f.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, RuleYAMLError) as exc:
            raise MappingError(f"{f}: {exc}") from None
        for doc in docs:
            if doc is not None:
                parse_mapping_document(doc, str(f), out)
    cache.save()
    return out
