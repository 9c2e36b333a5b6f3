"""One selection item's values -> its string tests (the `field|mods: values` entries that are neither
regexes nor numbers, CIDRs or field references).

Every value is parsed for wildcards (placeholders expanded with `expand`), the transformation
modifiers map its alternatives, and compile_alternatives groups them into one StringTest. Without
`|all`, one test serves the whole item (a value matches if any alternative does): built at once from
every value's alternatives, it is what merging one test per value gives, which is also how a bad value
is reported (the first problem in value order).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from detectors.sigma.fields import scalar_text
from detectors.sigma.typed import CompileError, expand_placeholders
from detectors.sigma.values import ANY, TRANSFORMS, ValueError_, apply_transform, compile_alternatives, parse_wildcards


def string_tests(
    values: list[Any], mods: list[str], placeholders: dict[str, Any], path: tuple[Any, ...], cased: bool, each: bool
) -> list[Any]:
    """The string tests of one item's values: one per value when `each` (`|all`), else one testing
    them all, built at once from every value's alternatives (what merging one test per value gives)."""
    if not each:
        try:
            return [_one_test(values, mods, placeholders, path, cased)]
        except (CompileError, ValueError_):
            pass  # a bad value (rare): the value-by-value path reports the first problem, as always
    tests = tests_per_value(values, mods, placeholders, path, cased)
    if each:
        return tests
    merged = tests[0]
    for t in tests[1:]:
        merged = _merge(merged, t)
    return [merged]


def _one_test(
    values: list[Any], mods: list[str], placeholders: dict[str, Any], path: tuple[Any, ...], cased: bool
) -> Any:
    expand = "expand" in mods
    if not expand and len(mods) == 1 and mods[0] in _WRAPS and all(type(v) is str and _plain(v) for v in values):
        # one of contains/startswith/endswith over texts without wildcards or escapes (most items): the
        # tokens parse_wildcards and apply_transform make, built directly
        wrap = _WRAPS[mods[0]]
        return compile_alternatives([wrap(v) for v in values], cased)
    alts: list[Any] = []
    for v in values:
        if type(v) is str and not expand:
            alts.append(parse_wildcards(v))
        elif isinstance(v, (dict, list)):
            raise CompileError("a value must be a string, number or boolean", path)
        else:
            for one in _expand(v, mods, placeholders, path):
                alts.extend(one)
    for m in mods:  # each transformation maps every alternative on its own, in order
        if m in TRANSFORMS:
            alts = apply_transform(m, alts)
    return compile_alternatives(alts, cased)


_WRAPS: dict[str, Callable[[str], tuple[Any, ...]]] = {
    "contains": lambda v: (ANY, v, ANY),
    "startswith": lambda v: (v, ANY),
    "endswith": lambda v: (ANY, v),
}


def _plain(v: str) -> bool:
    """A non-empty text that parse_wildcards keeps whole: no `*` or `?`, no escaped backslash (a
    backslash before anything else is literal)."""
    return bool(v) and "*" not in v and "?" not in v and "\\\\" not in v


def tests_per_value(
    values: list[Any], mods: list[str], placeholders: dict[str, Any], path: tuple[Any, ...], cased: bool
) -> list[Any]:
    """One string test per value, each value's problems raised in value order."""
    tests = []
    for i, v in enumerate(values):
        if isinstance(v, (dict, list)):
            raise CompileError("a value must be a string, number or boolean", path + (i,))
        alts_list = _expand(v, mods, placeholders, path)
        alts: list[Any] = []
        for alts_one in alts_list:
            try:
                for m in mods:
                    if m in TRANSFORMS:
                        alts_one = apply_transform(m, alts_one)
            except ValueError_ as exc:
                raise CompileError(str(exc), path) from None
            alts.extend(alts_one)
        try:
            tests.append(compile_alternatives(alts, cased))
        except ValueError_ as exc:
            raise CompileError(str(exc), path) from None
    return tests


def _merge(a: Any, b: Any) -> Any:
    a.exact |= b.exact
    a.prefixes += b.prefixes
    a.suffixes += b.suffixes
    a.substrings += b.substrings
    a.globs += b.globs
    a.atoms = None if a.atoms is None or b.atoms is None else a.atoms + b.atoms
    return a


def _expand(v: Any, mods: list[Any], placeholders: dict[str, Any], path: tuple[Any, ...]) -> list[list[Any]]:
    """A raw value -> list (placeholder expansion) of alternative lists (wildcard-parsed)."""
    if not isinstance(v, str):
        return [[(scalar_text(v),)]]
    if "expand" not in mods:
        return [[parse_wildcards(v)]]
    out = expand_placeholders(v, placeholders, path)
    return [[parse_wildcards(x)] for x in out]
