"""Read rule YAML fast and safely: libyaml (C) with bounds on nesting and alias expansion.

Rule files come from authors we do not fully control. Two shapes of hostile YAML are refused before
any Python object is built, with the line where the limit was crossed:

- alias bombs ("billion laughs"): anchors referring to anchors, a few hundred bytes that expand to
  billions of nodes once anything walks the tree. The expanded size of every document is counted on
  the event stream (an alias counts as the whole subtree it names) and capped at MAX_NODES;
- deep nesting: collections nested deeper than MAX_DEPTH (no Sigma rule needs more than ~8).

Timestamps stay the strings they were written as (`date: 2023-01-01`), so no second pass converts them.
Rule loading reads through detectors.sigma.ruledocs, which caches what this module builds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from detectors.sigma.pyyaml_import import import_pyyaml
from detectors.sigma.ruledocs import MAX_DEPTH, MAX_NODES, RuleYAMLError

if TYPE_CHECKING:
    import yaml
else:
    yaml = import_pyyaml()  # without compiling the pure-Python reader's pattern (see pyyaml_import)

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "RuleYAMLError",
    "check_bounds",
    "compose_documents",
    "load_documents",
    "load_documents_typed",
    "load_one",
    "resolve_plain",
]

_CLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# libyaml's parser alone for the one-pass builder: a loader would also set up a constructor and a
# resolver per file, which the builder never uses
_EventSource: Any = getattr(getattr(yaml, "cyaml", None), "CParser", _CLoader)


class _Loader(_CLoader):  # type: ignore[misc, valid-type]
    pass


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_str)

_SCALAR = yaml.ScalarEvent
_ALIAS = yaml.AliasEvent
_MAP_START, _SEQ_START = yaml.MappingStartEvent, yaml.SequenceStartEvent
_MAP_END, _SEQ_END = yaml.MappingEndEvent, yaml.SequenceEndEvent
_START = (_MAP_START, _SEQ_START)
_END = (_MAP_END, _SEQ_END)
_DOC_START = yaml.DocumentStartEvent
_STREAM_END = yaml.StreamEndEvent


class _Unusual(Exception):
    """A construct the one-pass builder leaves to PyYAML's constructor (explicit tags, merge keys...)."""


_STR_TAG = "tag:yaml.org,2002:str"
_PLAIN_TAGS = {
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_resolver: Any = yaml.resolver.Resolver()
_constructor = yaml.constructor.SafeConstructor()
_FIRST_CHARS = frozenset(k for k in yaml.resolver.Resolver.yaml_implicit_resolvers if k)
# What Resolver.resolve tries for a plain scalar, by its first character ('' for an empty one): the
# resolvers registered for it, then those for any character, the first whose pattern matches giving the
# tag (else str). Read once, so _scalar tries them without a call and two list copies per value;
# None (resolve called) if path resolvers were added, which resolve would consult too.
_IMPLICIT: dict[str, tuple[tuple[str, Any], ...]] | None = None
if not yaml.resolver.Resolver.yaml_path_resolvers:
    _by_char = yaml.resolver.Resolver.yaml_implicit_resolvers
    _IMPLICIT = {k: tuple(_by_char[k] + _by_char.get(None, [])) for k in _by_char if k is not None}
_ANY_CHAR = tuple(yaml.resolver.Resolver.yaml_implicit_resolvers.get(None, []))


# Plain scalars already resolved, by text: what a plain scalar becomes depends on its text alone, and
# every result is immutable (str, int, float, bool, None). Rule files repeat their keys and values.
_RESOLVED: dict[str, Any] = {}
_MAX_RESOLVED = 50_000
_MISS = object()


def _plain_tag(value: str) -> str:
    """The tag of a plain scalar `value`: what Resolver.resolve(ScalarNode, value, (True, False)) gives."""
    if _IMPLICIT is None:
        return str(_resolver.resolve(yaml.ScalarNode, value, (True, False)))
    for tag, pattern in _IMPLICIT.get(value[:1], _ANY_CHAR):
        if pattern.match(value):
            return str(tag)
    return _STR_TAG


def resolve_plain(value: str) -> Any:
    """What the one-pass builder makes of the plain scalar `value` (detectors.sigma.ruleyaml asks for the
    few it does not type itself); ValueError for what the builder leaves to PyYAML's constructor."""
    tag = _plain_tag(value)
    if tag == _STR_TAG or tag == "tag:yaml.org,2002:timestamp":
        return value
    if tag in _PLAIN_TAGS:
        return _constructor.yaml_constructors[tag](_constructor, yaml.ScalarNode(tag, value))
    raise ValueError(f"{tag} is not built by the one-pass builder")


def _scalar(ev: Any) -> Any:
    value = ev.value
    if ev.implicit[0]:  # plain scalar: its type comes from how it looks
        if value and value[0] not in _FIRST_CHARS:
            return value
        obj = _RESOLVED.get(value, _MISS)
        if obj is not _MISS:
            return obj
        tag = _plain_tag(value)
        if tag == _STR_TAG or tag == "tag:yaml.org,2002:timestamp":
            obj = value
        elif tag in _PLAIN_TAGS:
            try:
                obj = _constructor.yaml_constructors[tag](_constructor, yaml.ScalarNode(tag, value))
            except ValueError:  # a text the pattern takes but the constructor cannot read ('0b_', '0x_')
                raise RuleYAMLError(f"invalid {tag.rsplit(':', 1)[-1]} {value!r}", ev.start_mark.line + 1) from None
        else:
            raise _Unusual
        if len(_RESOLVED) < _MAX_RESOLVED:
            _RESOLVED[value] = obj
        return obj
    if ev.tag is None or ev.tag == "!":  # quoted
        return value
    raise _Unusual


def _build(text: str, lines: list[int]) -> tuple[list[Any], bool]:
    """Documents built straight from libyaml's events, bounds checked on the way (one parse), and
    whether every float in them is finite (all else is dict, list, str, int, bool or None).

    The open collection lives in locals (container, is_map, key, opened, anchor), the ones around it
    on `outer`; a plain scalar that cannot be anything but a string is taken without the resolver."""
    finite = True
    docs: list[Any] = []
    anchors: dict[str, tuple[object, int]] = {}  # anchor -> (object, expanded size)
    outer: list[tuple[Any, bool, Any, int, str | None]] = []
    container: Any = None  # the open collection (None at a document's root)
    is_map = False
    key: Any = _NO_KEY  # a mapping's key waiting for its value
    opened = 0  # expanded count when the open collection started
    anchor: str | None = None  # the open collection's anchor
    expanded = 0
    want_line = False
    first_chars = _FIRST_CHARS
    resolved = _RESOLVED.get
    # module names read per event, as locals
    scalar_event, alias_event, map_start, seq_start = _SCALAR, _ALIAS, _MAP_START, _SEQ_START
    map_end, seq_end, doc_start, stream_end = _MAP_END, _SEQ_END, _DOC_START, _STREAM_END
    no_key, miss, max_nodes = _NO_KEY, _MISS, MAX_NODES
    next_event = _EventSource(text).get_event
    while True:
        ev = next_event()
        kind = type(ev)
        if kind is scalar_event:
            if want_line:
                lines[-1] = ev.start_mark.line + 1
                want_line = False
            expanded += 1
            value = ev.value
            if ev.implicit[0]:  # plain scalar: its type comes from how it looks
                if value and value[0] not in first_chars:
                    obj = value
                else:
                    obj = resolved(value, miss)  # _scalar's memo, looked up here: no call for most
                    if obj is miss:
                        obj = _scalar(ev)
                    if type(obj) is float and obj - obj != 0.0:  # inf or nan (inf - inf is nan)
                        finite = False
            elif ev.tag is None or ev.tag == "!":  # quoted
                obj = value
            else:
                raise _Unusual
            if ev.anchor is not None:
                anchors[ev.anchor] = (obj, 1)
            if expanded > max_nodes:
                raise _too_many(ev)
        elif kind is map_start or kind is seq_start:
            if want_line:
                lines[-1] = ev.start_mark.line + 1
                want_line = False
            if ev.tag is not None and not ev.implicit:
                raise _Unusual
            expanded += 1
            outer.append((container, is_map, key, opened, anchor))
            is_map = kind is map_start
            container = {} if is_map else []
            key = no_key
            opened = expanded - 1
            anchor = ev.anchor
            if len(outer) > MAX_DEPTH:
                raise RuleYAMLError(f"nested deeper than {MAX_DEPTH} levels", ev.start_mark.line + 1)
            if expanded > max_nodes:
                raise _too_many(ev)
            continue
        elif kind is map_end or kind is seq_end:
            obj = container
            if anchor is not None:
                anchors[anchor] = (obj, expanded - opened)
            container, is_map, key, opened, anchor = outer.pop()
        elif kind is alias_event:
            if want_line:
                lines[-1] = ev.start_mark.line + 1
                want_line = False
            hit = anchors.get(ev.anchor)
            if hit is None:
                raise RuleYAMLError(f"undefined alias {ev.anchor!r}", ev.start_mark.line + 1)
            obj, size = hit
            expanded += size
            if expanded > max_nodes:
                raise _too_many(ev)
        elif kind is doc_start:
            anchors.clear()  # anchors are scoped to their document
            lines.append(0)
            docs.append(None)
            want_line = True
            continue
        elif kind is stream_end or ev is None:
            break
        else:
            continue
        if container is None:
            docs[-1] = obj
        elif not is_map:
            container.append(obj)
        elif key is no_key:
            if type(obj) in (dict, list) or obj == "<<":
                raise _Unusual  # complex or merge key
            key = obj
        else:
            container[key] = obj
            key = no_key
    return docs, finite


_NO_KEY = object()


def _too_many(ev: Any) -> RuleYAMLError:
    return RuleYAMLError(f"expands to more than {MAX_NODES} nodes (aliases of aliases?)", ev.start_mark.line + 1)


def check_bounds(text: str) -> list[int]:
    """Walk the parser's events once; raise RuleYAMLError past the bounds. Returns the 1-based line of
    each document's root node (0 for an empty document), in document order."""
    lines: list[int] = []
    anchors: dict[str, int] = {}
    starts: list[tuple[int, str | None]] = []  # (expanded count when the collection opened, its anchor)
    expanded = 0
    want_line = False
    try:
        events: Iterable[Any] = yaml.parse(text, Loader=_CLoader)  # typed loosely: the hot path reads attributes
        for ev in events:
            kind = type(ev)
            if kind is _SCALAR or kind is _ALIAS or kind in _START:
                if want_line:
                    lines[-1] = ev.start_mark.line + 1
                    want_line = False
                if kind is _SCALAR:
                    expanded += 1
                    if ev.anchor is not None:
                        anchors[ev.anchor] = 1
                elif kind is _ALIAS:
                    expanded += anchors.get(ev.anchor, 1)
                else:
                    expanded += 1
                    starts.append((expanded - 1, ev.anchor))
                    if len(starts) > MAX_DEPTH:
                        raise RuleYAMLError(f"nested deeper than {MAX_DEPTH} levels", ev.start_mark.line + 1)
                if expanded > MAX_NODES:
                    raise _too_many(ev)
            elif kind in _END:
                opened, anchor = starts.pop()
                if anchor is not None:
                    anchors[anchor] = expanded - opened
            elif kind is _DOC_START:
                anchors.clear()
                lines.append(0)
                want_line = True
    except yaml.YAMLError as exc:
        raise _yaml_error(exc) from None
    return lines


def load_documents(text: str) -> tuple[list[Any], list[int]]:
    """Every document of `text` (None for an empty one) and the line of each, within the bounds."""
    docs, lines, _ = load_documents_typed(text)
    return docs, lines


def load_documents_typed(text: str) -> tuple[list[Any], list[int], bool]:
    """load_documents, and whether the documents hold only dict, list, str, int, finite float, bool
    and None (what the one-pass builder makes; False when PyYAML's constructor built them, which
    may make sets, bytes, tuples..., or when a float is inf or nan)."""
    lines: list[int] = []
    try:
        docs, finite = _build(text, lines)
        return docs, lines, finite
    except yaml.YAMLError as exc:
        raise _yaml_error(exc) from None
    except _Unusual:
        pass
    lines = check_bounds(text)  # a rare construct: bounds first, then PyYAML's own constructor
    try:
        docs = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as exc:
        raise _yaml_error(exc) from None
    except RuleYAMLError:
        raise
    except ValueError as exc:  # a scalar PyYAML's constructor cannot read (as above, where it has no line)
        raise RuleYAMLError(f"invalid YAML value: {exc}", 0) from None
    return docs, lines, False


def load_one(text: str) -> Any:
    """A single-document YAML file (rule tests), within the same bounds (None when empty)."""
    docs, _ = load_documents(text)
    if len(docs) > 1:
        raise RuleYAMLError("expected one YAML document, found several", 0)
    return docs[0] if docs else None


def compose_documents(text: str) -> list[Any]:
    """Node trees (with line marks) of every document; only for reporting a problem's line."""
    check_bounds(text)
    return list(yaml.compose_all(text, Loader=_CLoader))


def _yaml_error(exc: yaml.YAMLError) -> RuleYAMLError:
    mark = getattr(exc, "problem_mark", None)
    return RuleYAMLError(f"invalid YAML: {getattr(exc, 'problem', None) or exc}", mark.line + 1 if mark else 0)
