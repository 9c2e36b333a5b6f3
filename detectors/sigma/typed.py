"""Type modifiers that are not plain string tests: re, numbers, time parts, cidr, fieldref, expand.

They yield predicates without index atoms (except `re`, which offers a literal prefilter).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

import re2

from detectors.sigma import regex_literals
from detectors.sigma.casefold import fold
from detectors.sigma.fields import field_values, scalar_text, time_part, to_number
from detectors.sigma.regex_literals import required_literals
from detectors.sigma.ruledocs import document_cache
from detectors.sigma.values import Re2Found, direct_anchor, re2_options


class Compiled:
    """A compiled piece of a detection: `match`, its predicate, and `need`, its index atoms (see
    compile.py), given or worked out from its parts' on first read (`make`): an Engine reads them
    once per rule to build its candidate index; `rules lint` never does."""

    __slots__ = ("_make", "_need", "match")

    def __init__(
        self,
        match: Callable[[dict[str, Any]], bool],
        need: frozenset[Any] | None = None,
        make: Callable[[], frozenset[Any] | None] | None = None,
    ) -> None:
        self.match = match
        self._need = need
        self._make = make

    def get_need(self) -> frozenset[Any] | None:
        make = self._make
        if make is not None:
            self._need = make()
            self._make = None
        return self._need

    need = property(get_need)


class CompileError(Exception):
    """A detection the engine cannot compile; `path` locates it in the rule (for line numbers)."""

    def __init__(self, message: str, path: tuple[Any, ...] = ()):
        super().__init__(message)
        self.path = path


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
}


def expand_placeholders(v: str, placeholders: dict[str, Any], path: tuple[Any, ...]) -> list[str]:
    results = [""]
    i = 0
    while i < len(v):
        ch = v[i]
        if ch == "\\" and i + 1 < len(v) and v[i + 1] == "%":
            results = [r + "%" for r in results]
            i += 2
            continue
        if ch == "%":
            end = v.find("%", i + 1)
            if end < 0:
                raise CompileError(f"unterminated placeholder in {v!r}", path)
            name = v[i + 1 : end]
            if name not in placeholders:
                raise CompileError(f"placeholder %{name}% has no value in the configuration", path)
            repl = placeholders[name]
            repl = repl if isinstance(repl, list) else [repl]
            results = [r + str(x) for r in results for x in repl]
            i = end + 1
            continue
        results = [r + ch for r in results]
        i += 1
    return results


def compile_regex(pattern: str, mods: list[Any], path: tuple[Any, ...]) -> Any:
    flags = "".join(f for f in ("i", "m", "s") if f in mods)
    try:
        rx = re2.compile((f"(?{flags})" if flags else "") + pattern, re2_options())
    except re2.error as exc:
        raise CompileError(f"regex rejected (not linear-time/RE2 syntax): {exc}", path) from None

    return _RegexTest(rx, pattern)


_LITERALS_SOURCE = str(regex_literals.__file__)


def _literal_atoms(pattern: str) -> list[tuple[str, str]] | None:
    lits = document_cache().memo("regex-literals", pattern, lambda: required_literals(pattern), list, _LITERALS_SOURCE)
    return [("sub", fold(lit)) for lit in lits] or None


class _RegexTest(Re2Found):
    """A compiled `re` value: true when the pattern is found; `atoms` index its required literal,
    worked out on first read (the index reads it; `rules lint` never does: Python's regex parser,
    which finds the literal, costs about what RE2's compile does)."""

    __slots__ = ("_atoms", "_pattern")

    def __init__(self, rx: Any, pattern: str) -> None:
        super().__init__(rx, _UNANCHORED, "search")
        self._pattern: str | None = pattern
        self._atoms: list[tuple[str, str]] | None = None

    @property
    def atoms(self) -> list[tuple[str, str]] | None:
        pattern = self._pattern
        if pattern is not None:
            self._atoms = _literal_atoms(pattern)
            self._pattern = None
        return self._atoms


# found/not found asked of RE2 directly when the installed wrapper allows it (values.direct_anchor)
_UNANCHORED: Any = direct_anchor("UNANCHORED", "search")
_RAW_SEARCH = _UNANCHORED is not None


def compile_numeric(
    keys: Any, values: Any, time_parts: Any, numeric: Any, negate: Any, use_all: Any, path: Any
) -> Compiled:
    if len(time_parts) > 1 or len(numeric) > 1:
        raise CompileError("at most one time-part and one comparison modifier", path)
    op = numeric[0] if numeric else ("neq" if negate else "eq")
    nums = []
    for v in values:
        n = to_number(v)
        if n is None:
            raise CompileError(f"'{op}' needs a number, got {v!r}", path)
        nums.append(n)
    part = time_parts[0] if time_parts else None
    cmp = _COMPARE[op]

    def one(ev: dict[str, Any], n: Any) -> bool:
        for x in field_values(ev, keys):
            got = time_part(x, part) if part else to_number(x)
            if got is not None and cmp(got, n):
                return True
        return False

    combine: Callable[[Iterable[object]], bool] = all if use_all else any

    def match(ev: dict[str, Any]) -> bool:
        return combine(one(ev, n) for n in nums)

    if negate and numeric:

        def negated(ev: dict[str, Any]) -> bool:
            return bool(field_values(ev, keys)) and not match(ev)

        return Compiled(negated, None)
    return Compiled(match, None)


def compile_cidr(keys: Any, values: Any, negate: Any, use_all: Any, path: Any) -> Compiled:
    nets = []
    for v in values:
        try:
            nets.append(ipaddress.ip_network(str(v), strict=False))
        except ValueError:
            raise CompileError(f"not a CIDR network: {v!r}", path) from None

    def inside(x: Any, net: Any) -> bool:
        try:
            return ipaddress.ip_address(str(x)) in net
        except ValueError:
            return False

    combine: Callable[[Iterable[object]], bool] = all if use_all else any

    def match(ev: dict[str, Any]) -> bool:
        vals = field_values(ev, keys)
        return combine(any(inside(x, n) for x in vals) for n in nets)

    if negate:
        return Compiled(lambda ev: bool(field_values(ev, keys)) and not match(ev), None)
    return Compiled(match, None)


def compile_fieldref(keys: Any, values: Any, mods: Any, resolve: Any, negate: Any, path: Any) -> Compiled:
    cased = "cased" in mods
    kind = next((m for m in ("contains", "startswith", "endswith") if m in mods), "eq")
    other = [resolve(str(v)) for v in values]

    def test(a: str, b: str) -> bool:
        if not cased:
            a, b = fold(a), fold(b)
        if kind == "eq":
            return a == b
        if kind == "contains":
            return b in a
        return a.startswith(b) if kind == "startswith" else a.endswith(b)

    def match(ev: dict[str, Any]) -> bool:
        mine = [scalar_text(x) for x in field_values(ev, keys)]
        for okeys in other:
            refs = [scalar_text(x) for x in field_values(ev, okeys)]
            if any(test(a, b) for a in mine for b in refs):
                return True
        return False

    if negate:
        return Compiled(lambda ev: bool(field_values(ev, keys)) and not match(ev), None)
    return Compiled(match, None)
