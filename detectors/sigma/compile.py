"""Sigma detection section -> one predicate over a flat ECS event, plus its index atoms.

Each compiled piece carries `need` (worked out on first read: `rules lint` never reads it): a set of atoms (field, "eq"|"sub", case-folded text, casefold.fold) such
that the piece can only be true if at least one atom holds on the event, or None when no such
set exists (negations, numeric comparisons...). The candidate index (index.py) uses `need` to
skip rules that cannot match; the predicate is always the final word.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from detectors.sigma.atoms import Index, and_index, leaf_index, or_index
from detectors.sigma.casefold import fold
from detectors.sigma.condition import ConditionError, parse_condition, resolve_of
from detectors.sigma.fields import field_values, scalar_text
from detectors.sigma.itemvalues import string_tests
from detectors.sigma.typed import (
    Compiled,
    CompileError,
    compile_cidr,
    compile_fieldref,
    compile_numeric,
    compile_regex,
)
from detectors.sigma.values import ANY, TRANSFORMS

Predicate = Callable[[dict[str, Any]], bool]
Need = "frozenset | None"

NUMERIC = {"lt", "lte", "gt", "gte"}
TIME_PARTS = {"minute", "hour", "day", "week", "month", "year"}
FLAGS = {"all", "cased", "neq", "exists", "re", "i", "m", "s", "cidr", "expand", "fieldref"}
KNOWN_MODIFIERS = TRANSFORMS | NUMERIC | TIME_PARTS | FLAGS
_REGEX_FLAGS = frozenset({"i", "m", "s"})
KEYWORD_FIELDS = ("message", "event.original")
KEYWORD_INDEX_FIELD = "\x00keywords"  # pseudo-field of the candidate index for keyword atoms


# The predicates below spell fold(s) as `s.lower() if s.isascii() else fold(s)`: the same text without a
# call for ASCII values (nearly all); the call costs about what lower() itself does (~30 ns on a
# 45-character value), on every field value every evaluated rule reads.


def _string_pred(keys: tuple[Any, ...], test: Any, cased: bool) -> Predicate:
    if len(keys) == 1 and not keys[0].endswith("]"):
        key = keys[0]

        def pred(ev: dict[str, Any]) -> bool:
            v = ev.get(key)
            if v is None:
                return False
            if type(v) is str:  # the usual case
                return bool(test(v if cased else v.lower() if v.isascii() else fold(v)))
            for x in v if isinstance(v, (list, tuple)) else (v,):
                if x is not None:
                    s = scalar_text(x)
                    if test(s if cased else s.lower() if s.isascii() else fold(s)):
                        return True
            return False

        return pred

    if any(k.endswith("]") for k in keys):

        def pred_multi(ev: dict[str, Any]) -> bool:
            for x in field_values(ev, keys):
                s = scalar_text(x)
                if test(s if cased else s.lower() if s.isascii() else fold(s)):
                    return True
            return False

        return pred_multi

    def pred_keys(ev: dict[str, Any]) -> bool:
        # field_values' order and values, read key by key without building its list: a rule field
        # mapped to several event fields (EventID, Image, CommandLine of Sysmon and 4688) is read by
        # most Windows rules on every event they are evaluated on
        for key in keys:
            v = ev.get(key)
            if v is None:
                continue
            if type(v) is str:
                if test(v if cased else v.lower() if v.isascii() else fold(v)):
                    return True
                continue
            for x in v if isinstance(v, (list, tuple)) else (v,):
                if x is not None:
                    s = scalar_text(x)
                    if test(s if cased else s.lower() if s.isascii() else fold(s)):
                        return True
        return False

    return pred_keys


def _keyword_pred(test: Any, cased: bool) -> Predicate:
    def pred(ev: dict[str, Any]) -> bool:
        v = ev.get("message")
        if v is None:
            v = ev.get("event.original")
            if v is None:
                return False
        s = v if type(v) is str else scalar_text(v)
        return bool(test(s if cased else s.lower() if s.isascii() else fold(s)))

    return pred


_KEY_PARTS: dict[str, tuple[str, list[str], str, list[str], list[str]]] = {}


def _key_parts(key: str) -> tuple[str, list[str], str, list[str], list[str]]:
    """(field, modifiers, problem or '', time-part and comparison modifiers) of a selection key, worked
    out once per distinct key: rules repeat a few hundred keys thousands of times. The lists are shared:
    never changed by their readers."""
    hit = _KEY_PARTS.get(key)
    if hit is None:
        field, *mods = key.split("|")
        problem = next((f"unknown modifier '{m}'" for m in mods if m not in KNOWN_MODIFIERS), "")
        if not problem and not _REGEX_FLAGS.isdisjoint(mods) and "re" not in mods:
            problem = "regex flags i/m/s need the 're' modifier"
        if not field and not {"re", "contains", "startswith", "endswith"} & set(mods):
            mods = mods + ["contains"]  # a keyword is found anywhere in the message
        hit = (field, mods, problem, [m for m in mods if m in TIME_PARTS], [m for m in mods if m in NUMERIC])
        if len(_KEY_PARTS) < 20_000:
            _KEY_PARTS[key] = hit
    return hit


def compile_item(
    key: str, value: Any, resolve: Callable[[str], tuple[Any, ...]], placeholders: dict[str, Any], path: tuple[Any, ...]
) -> Compiled:
    """One `field|mod|mod: value(s)` entry of a selection map (field '' = keyword search)."""
    field, mods, problem, time_parts, numeric = _key_parts(key)
    if problem:
        raise CompileError(problem, path)
    keys = resolve(field) if field else KEYWORD_FIELDS
    values = value if isinstance(value, list) else [value]
    if not values:
        raise CompileError("empty value list", path)
    use_all = "all" in mods
    if use_all and len(values) < 2:
        raise CompileError("'all' needs a list of at least two values", path)
    negate = "neq" in mods

    if "exists" in mods:
        if len(values) != 1 or not isinstance(values[0], bool):
            raise CompileError("'exists' takes true or false", path)
        want = values[0]
        return Compiled(lambda ev: (len(field_values(ev, keys)) > 0) == want, None)

    if None in values:
        if len(values) != 1:
            raise CompileError("null cannot be part of a value list", path)
        if not field:
            raise CompileError("null is not a keyword", path)

        def is_null(ev: dict[str, Any]) -> bool:
            return not field_values(ev, keys)

        return Compiled((lambda ev: not is_null(ev)) if negate else is_null, None)

    if time_parts or numeric:
        return compile_numeric(keys, values, time_parts, numeric, negate, use_all, path)
    if "cidr" in mods:
        return compile_cidr(keys, values, negate, use_all, path)
    if "fieldref" in mods:
        return compile_fieldref(keys, values, mods, resolve, negate, path)
    if "re" in mods:
        tests = [compile_regex(str(v), mods, path) for v in values]
        cased = True
    else:
        cased = "cased" in mods
        tests = string_tests(values, mods, placeholders, path, cased, each=use_all)
    make = _string_pred if field else (lambda _k, t, c: _keyword_pred(t, c))
    preds = [make(keys, t, cased) for t in tests]
    match = _all_of(preds) if use_all else preds[0] if len(preds) == 1 else _any_of(preds)
    if negate:
        return Compiled(_absent_or_not(keys, match), None)
    return Compiled(match, make=lambda: leaf_index([_atoms(keys, t) for t in tests], use_all))  # when first read


def _all_of(preds: list[Predicate]) -> Predicate:
    """AND of predicates, in order, stopping at the first false one. Two or three (most selection
    maps and conditions) are chained directly: all() over a generator costs more than the tests."""
    if len(preds) == 2:
        a, b = preds
        return lambda ev: True if a(ev) and b(ev) else False
    if len(preds) == 3:
        a, b, c = preds
        return lambda ev: True if a(ev) and b(ev) and c(ev) else False
    return lambda ev: all(p(ev) for p in preds)


def _any_need(parts: list[Compiled]) -> Callable[[], Index]:
    """An OR's atoms and clauses, from its parts' (worked out when first read)."""
    return lambda: or_index([p.get_index() for p in parts])


def _all_need(parts: list[Compiled]) -> Callable[[], Index]:
    """An AND's atoms (the best of its parts') and clauses (all of its parts'), worked out when first read."""
    return lambda: and_index([p.get_index() for p in parts])


def _any_of(preds: list[Predicate]) -> Predicate:
    """OR of predicates, in order, stopping at the first true one (two or three chained directly)."""
    if len(preds) == 2:
        a, b = preds
        return lambda ev: True if a(ev) or b(ev) else False
    if len(preds) == 3:
        a, b, c = preds
        return lambda ev: True if a(ev) or b(ev) or c(ev) else False

    def match(ev: dict[str, Any]) -> bool:
        return any(p(ev) for p in preds)

    return match


def _absent_or_not(keys: tuple[Any, ...], inner: Predicate) -> Predicate:
    """A negated value test: true when the field has values and none passes (a missing field is no match)."""

    def match(ev: dict[str, Any]) -> bool:
        return bool(field_values(ev, keys)) and not inner(ev)

    return match


def _atoms(keys: tuple[Any, ...], test: Any) -> frozenset[Any] | None:
    if test.atoms is None:
        return None
    if keys == KEYWORD_FIELDS:  # the index reads message, else event.original, like the predicate
        return frozenset((KEYWORD_INDEX_FIELD, kind, text) for kind, text in test.atoms)
    # an indexed key `f[N]` is looked up in the index under its list field `f`
    bases = [k.split("[", 1)[0] for k in keys]
    return frozenset([(base, kind, text) for base in bases for kind, text in test.atoms])


def compile_selection(name: str, body: Any, resolve: Any, placeholders: Any) -> Compiled:
    path = ("detection", name)
    if isinstance(body, dict):
        return _compile_map(body, resolve, placeholders, path)
    if isinstance(body, list):
        if not body:
            raise CompileError("empty search identifier", path)
        if all(isinstance(x, dict) for x in body):
            parts = [_compile_map(x, resolve, placeholders, path + (i,)) for i, x in enumerate(body)]
            preds = [p.match for p in parts]
            return Compiled(_any_of(preds), make=_any_need(parts))
        if any(isinstance(x, (dict, list)) or x is None for x in body):
            raise CompileError("a list mixes maps and keywords (or contains null)", path)
        return compile_item("", body, resolve, placeholders, path)
    if isinstance(body, (str, int, float)) and not isinstance(body, bool):
        return compile_item("", [body], resolve, placeholders, path)
    raise CompileError("a search identifier must be a map, a list or a keyword", path)


def _compile_map(body: dict[str, Any], resolve: Any, placeholders: Any, path: Any) -> Compiled:
    if not body:
        raise CompileError("empty selection map", path)
    parts = [compile_item(str(k), v, resolve, placeholders, path + (k,)) for k, v in body.items()]
    preds = [p.match for p in parts]
    if len(preds) == 1:
        return parts[0]
    return Compiled(_all_of(preds), make=_all_need(parts))


def compile_detection(detection: dict[str, Any], resolve: Any, placeholders: dict[str, Any]) -> Compiled:
    if not isinstance(detection, dict) or "condition" not in detection:
        raise CompileError("detection needs search identifiers and a condition", ("detection",))
    selections = {str(k): v for k, v in detection.items() if k != "condition"}
    if not selections:
        raise CompileError("detection has no search identifier", ("detection",))
    compiled = {n: compile_selection(n, b, resolve, placeholders) for n, b in selections.items()}
    conditions = detection["condition"]
    conditions = conditions if isinstance(conditions, list) else [conditions]
    nodes = []
    for cond in conditions:
        try:
            nodes.append(parse_condition(cond))
        except ConditionError as exc:
            raise CompileError(f"condition: {exc}", ("detection", "condition")) from None
    built = [_build(n, compiled, list(selections)) for n in nodes]
    if len(built) == 1:
        return built[0]
    preds = [b.match for b in built]
    return Compiled(_any_of(preds), make=_any_need(built))


def _build(node: Any, compiled: dict[str, Any], names: list[Any]) -> Compiled:
    kind = node[0]
    if kind == "id":
        if node[1] not in compiled:
            raise CompileError(f"condition names unknown identifier '{node[1]}'", ("detection", "condition"))
        found: Compiled = compiled[node[1]]
        return found
    if kind == "not":
        inner = _build(node[1], compiled, names).match
        return Compiled(lambda ev: not inner(ev), None)
    if kind == "of":
        _, quant, pattern = node
        chosen = resolve_of(pattern, names)
        if not chosen:
            raise CompileError(f"'{quant} of {pattern}' matches no identifier", ("detection", "condition"))
        parts = [compiled[n] for n in chosen]
        preds = [p.match for p in parts]
        if quant == "all":
            return Compiled(_all_of(preds), make=_all_need(parts))
        if quant == 1:
            return Compiled(_any_of(preds), make=_any_need(parts))
        return Compiled(lambda ev: sum(1 for p in preds if p(ev)) >= quant, make=_any_need(parts))
    parts = [_build(n, compiled, names) for n in node[1]]
    preds = [p.match for p in parts]
    if kind == "and":
        return Compiled(_all_of(preds), make=_all_need(parts))
    return Compiled(_any_of(preds), make=_any_need(parts))


__all__ = ["ANY", "CompileError", "Compiled", "compile_detection", "compile_item"]
