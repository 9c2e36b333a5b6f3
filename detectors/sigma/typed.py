"""Type modifiers that are not plain string tests: re, numbers, time parts, cidr, fieldref, expand.

They yield predicates without index atoms (except `re`, which offers a literal prefilter).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Iterable
from typing import Any

import re2

from detectors.common.digests import blake2b
from detectors.sigma import regex_literals, regex_price, values
from detectors.sigma.casefold import fold
from detectors.sigma.fields import field_values, scalar_text, time_part, to_number
from detectors.sigma.regex_literals import required_literals
from detectors.sigma.regex_price import FITS_BOUND, program_bound
from detectors.sigma.ruledocs import document_cache
from detectors.sigma.values import NO_MATCH, Re2Found, direct_anchor, re2_options


class Compiled:
    """A compiled piece of a detection: `match`, its predicate, and `need`, its index atoms (see
    compile.py), given or worked out from its parts' on first read (`make`, which gives the atoms and
    the piece's `clauses`, atoms.py): an Engine reads them once per rule to build its candidate index;
    `rules lint` never does."""

    __slots__ = ("_clauses", "_make", "_need", "match")

    def __init__(
        self,
        match: Callable[[dict[str, Any]], bool],
        need: frozenset[Any] | None = None,
        make: Callable[[], tuple[frozenset[Any] | None, tuple[frozenset[Any], ...]]] | None = None,
    ) -> None:
        self.match = match
        self._need = need
        self._clauses: tuple[frozenset[Any], ...] = (need,) if need else ()
        self._make = make

    def get_index(self) -> tuple[frozenset[Any] | None, tuple[frozenset[Any], ...]]:
        """(need, clauses), worked out on the first call."""
        make = self._make
        if make is not None:
            self._need, self._clauses = make()
            self._make = None
        return self._need, self._clauses

    def get_need(self) -> frozenset[Any] | None:
        return self.get_index()[0]

    need = property(get_need)
    clauses = property(lambda self: self.get_index()[1])


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
    source = (f"(?{flags})" if flags else "") + pattern
    if _PARSE_ONLY is not None and surely_fits(source):
        if _parses(pattern):
            return _RegexTest(None, pattern, source)
        # anything else: a syntax error, which the compile below reports as it always has
    elif _PARSE_ONLY is not None:
        # priced by its parts (regex_price) or else compiled in full, once: a later start that finds this
        # verdict in the rule cache defers it too
        compiled: list[Any] = []
        verdict = document_cache().memo(
            _FIT_MEMO, source, lambda: _fit_verdict(source, pattern, compiled), str, _FIT_SOURCE
        )
        if verdict == "fits":
            return _RegexTest(compiled[0], pattern) if compiled else _RegexTest(None, pattern, source)
    try:
        rx = re2.compile(source, re2_options())
    except re2.error as exc:
        raise CompileError(f"regex rejected (not linear-time/RE2 syntax): {exc}", path) from None

    return _RegexTest(rx, pattern)


def _parses(pattern: str) -> bool:
    """Whether RE2 parses `pattern` (parse only: a valid pattern then fails for want of room, as asked).

    The pattern is parsed without the flag group its modifiers put before it ((?i), (?m), (?s)): a flag
    group at the start only changes how literals, `.` and the anchors are read, never whether the text
    parses (test_sigma_regex_deferred checks it on generated texts), and under (?i) RE2 builds every
    literal's case-folded class: parsing the bench paths' ~660 patterns took 22-25 ms with it, 7-12 ms
    without (in-process, best of 9)."""
    if pattern in _PARSED:
        return True
    if _PARSE_ONLY is None or _PARSE_ONLY(pattern.encode()).error() != _TOO_LARGE:
        return False
    if len(_PARSED) < 10_000:
        _PARSED.add(pattern)
    return True


def _fit_verdict(source: str, pattern: str, compiled: list[Any]) -> str:
    """'fits' when the program regex_price bounds `source`'s to is within FITS_BOUND and RE2 parses
    `pattern` (only parsed: compiled on first use), else _fits'."""
    bound = program_bound(source)
    if bound is not None and bound <= FITS_BOUND and _parses(pattern):
        return "fits"
    return _fits(source, compiled)


def _fits(source: str, compiled: list[Any]) -> str:
    """'fits' when RE2 compiles `source` under re2_options() (the program is appended to `compiled`),
    else 'refused' (the caller's full compile then raises RE2's error as it always has)."""
    try:
        compiled.append(re2.compile(source, re2_options()))
    except re2.error:
        return "refused"
    return "fits"


def _fit_memo_name() -> str:
    """The memo's name carries the installed RE2 extension's size and mtime (an upgrade or a reinstall
    rewrites it) and regex_price's content: a verdict is reused only with the RE2 and the pricing that
    gave it; re2_options() is in _FIT_SOURCE."""
    try:
        st = os.stat(re2._re2.__file__)
        with open(regex_price.__file__, "rb") as fh:
            price = blake2b(fh.read(), digest_size=8).hexdigest()
        return f"regex-fits:{st.st_size}:{st.st_mtime_ns}:{price}"
    except (AttributeError, OSError):
        return f"regex-fits:unknown:{os.getpid()}"  # never matches a stored verdict


_FIT_MEMO = _fit_memo_name()
_FIT_SOURCE = str(values.__file__)


# RE2 checks a pattern in two steps: it parses it (its syntax errors), then compiles the parsed pattern
# into a program, which fails only when the program outgrows max_mem ("pattern too large"). The compile
# is most of the cost (about 3/4 of the ~25 ms the SigmaHQ and province regexes take), so a pattern
# whose program surely fits is only parsed when it is loaded (RE2 given no room for any instruction:
# its syntax errors come with the same messages, and a valid pattern fails for size), and compiled on
# its first evaluation (_RegexTest). What surely fits: ASCII text of at most DEFER_MAX_CHARS characters
# with no Unicode class (\p, \P) and no hex or octal escape (\x, \0-\7),
# the constructs whose program can be far larger than their text. Without them a character costs at
# most ~14 instructions (`(?i)\W`: UTF-8 sequences of everything but the word characters and their
# case-fold partners; `.` 8), so such a pattern needs at most ~28,000 of the ~87,000 that
# re2_options()' 8 MiB allow (two thirds of it for the program, 16 bytes an instruction;
# test_sigma_regex_deferred compiles the costliest atoms repeated to the length bound).
#
# A counted repetition (x{n}, x{n,}, x{n,m}) is compiled as up to n or m copies of x (x{n,}: n copies, the
# last one starred), and nested ones multiply; so the text's length is weighed by (largest count + 1) of
# every counted repetition in it, nested or not (a product over all of them bounds the product over any
# nesting), and that weight must stay within DEFER_MAX_CHARS: ~14 instructions a weighed character again.
# Such a form in a class or after an escaped `\{` is weighed as a repetition all the same (more than
# it costs); a pattern with any other `{` (a literal to RE2) or a count of more than 4 digits is compiled.
DEFER_MAX_CHARS = 2000
_LARGE_ESCAPES = ("\\p", "\\P", "\\x", "\\0", "\\1", "\\2", "\\3", "\\4", "\\5", "\\6", "\\7")
_COUNTED = re.compile(r"\{([0-9]{1,4})(?:,([0-9]{0,4}))?\}")


def repetition_weight(source: str) -> int:
    """len(source) times (largest count + 1) of each counted repetition in it (see above); a `{` not
    read as one of those forms (RE2 reads it as a literal, or it is part of a class or escape) makes
    the weight DEFER_MAX_CHARS + 1."""
    weight = len(source)
    if "{" not in source:
        return weight
    counts = _COUNTED.findall(source)
    if len(counts) != source.count("{"):
        return DEFER_MAX_CHARS + 1
    for low, high in counts:
        weight *= max(int(low), int(high or 0)) + 1
        if weight > DEFER_MAX_CHARS:
            return DEFER_MAX_CHARS + 1
    return weight


def surely_fits(source: str) -> bool:
    """Whether RE2's program for `source` surely fits in re2_options()'s memory bound (see above)."""
    if len(source) > DEFER_MAX_CHARS or not source.isascii() or repetition_weight(source) > DEFER_MAX_CHARS:
        return False
    # escaped backslashes taken out (pairs, from the left, as RE2 reads them): a backslash left is an escape
    bare = source.replace("\\\\", "") if "\\" in source else source
    return not any(e in bare for e in _LARGE_ESCAPES)


def _parse_only_options() -> tuple[Any, Any]:
    """A function of a pattern's UTF-8 text giving RE2's pattern object under options that parse it and
    leave no room for its program (max_mem*2/3 is 1 byte; 0 would mean no limit), and the error a valid
    pattern then has; (None, None) unless a probe shows RE2 so (a valid pattern fails with that error,
    an invalid one with the error it has when compiled in full). The wrapper's own compile is not used
    for this: it raises an exception object for each pattern (what it keeps are compiled patterns)."""
    try:
        options = re2_options()
        options.max_mem = 2
        compiled = re2._re2.RE2

        def make(text: bytes) -> Any:
            return compiled(text, options)

        valid, invalid = make(b"a(b)c"), make(b"a(b")
        too_large = valid.error()
        full = re2._re2.RE2(b"a(b", re2_options())
        if valid.ok() or invalid.ok() or full.ok() or invalid.error() != full.error() or invalid.error() == too_large:
            return None, None
        return make, too_large
    except Exception:  # noqa: BLE001 - another RE2 wrapper: every pattern compiled in full
        return None, None


_PARSE_ONLY, _TOO_LARGE = _parse_only_options()
_PARSED: set[str] = set()  # patterns parsed without error (RE2 caches compiled patterns, not failures)


_LITERALS_SOURCE = str(regex_literals.__file__)


def _literal_atoms(pattern: str) -> list[tuple[str, str]] | None:
    lits = document_cache().memo("regex-literals", pattern, lambda: required_literals(pattern), list, _LITERALS_SOURCE)
    return [("sub", fold(lit)) for lit in lits] or None


def _guard_literals(pattern: str) -> tuple[str, ...] | None:
    """Case-folded literals one of which every match contains, however short (a backtick, '${'): what a
    `re` item looks for before it calls RE2 (too short for an index atom, enough to skip a search)."""
    lits = document_cache().memo(
        "regex-guard", pattern, lambda: required_literals(pattern, shortest=1), list, _LITERALS_SOURCE
    )
    return tuple(fold(lit) for lit in lits) or None


class _RegexTest(Re2Found):
    """A `re` value: true when the pattern is found; `atoms` index its required literal, worked out on
    first read (the index reads it; `rules lint` never does: Python's regex parser, which finds the
    literal, costs about what RE2's compile does). Made from a compiled pattern, or from the `source` of
    one only parsed so far (compile_regex), which is compiled on the first call: until then `raw` is None,
    so Re2Found.__call__ calls `public`, which compiles, puts the compiled pattern in place and searches.

    Once the literals are worked out, an ASCII text that holds none of its guard literals (case-folded;
    as the index's, but as short as one character) is answered without RE2: every match contains one
    (regex_literals), so there is none to find. A `re` item is
    most often evaluated because another part of its rule was found, and RE2's call (the text encoded,
    its program run) costs several times a lower() and a substring search."""

    __slots__ = ("_atoms", "_guard", "_pattern", "_source")

    def __init__(self, rx: Any, pattern: str, source: str | None = None) -> None:
        if rx is None:
            self.rx, self.anchor, self.raw = None, _UNANCHORED, None
            self.public = self._compile_then_search
        else:
            super().__init__(rx, _UNANCHORED, "search")
        self._source = source
        self._pattern: str | None = pattern
        self._atoms: list[tuple[str, str]] | None = None
        self._guard: tuple[str, ...] | None = None  # the literals, case-folded, once worked out

    def __call__(self, s: str) -> bool:
        guard = self._guard
        if guard is not None and s.isascii():
            low = s.lower()  # fold(s) of an ASCII text
            for lit in guard:
                if lit in low:
                    break
            else:
                return False
        raw = self.raw  # Re2Found.__call__, inlined: this runs for every `re` item evaluated
        if raw is None:
            return self.public(s) is not None
        b = s.encode()
        return bool(raw.Match(self.anchor, b, 0, len(b))[0] != NO_MATCH)

    def _compile_then_search(self, s: str) -> Any:
        source = self._source
        if source is not None:  # surely_fits: compiles (a failure would be counted as the rule's error)
            Re2Found.__init__(self, re2.compile(source, re2_options()), _UNANCHORED, "search")
            self._source = None
        return self.public(s)

    @property
    def atoms(self) -> list[tuple[str, str]] | None:
        pattern = self._pattern
        if pattern is not None:
            self._atoms = _literal_atoms(pattern)
            self._pattern = None
            self._guard = _guard_literals(pattern)
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
