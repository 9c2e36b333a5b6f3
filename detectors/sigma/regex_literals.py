"""Literal prefilter for regexes: a substring every match must contain.

Uses Python's own regex parser only to read the pattern's structure (never to match); syntax the
two read differently gets no literal (RE2's POSIX classes; what Python cannot parse); case flags are
irrelevant because the index compares case-folded text.

`required_literals` gives a set of literals one of which every match contains: a literal run of the
pattern, or a literal of each branch of an alternation (`(?:get-wmiobject|gwmi) ` -> {get-wmiobject,
gwmi}; a repeat at least once offers its body's set), so a rule whose regex is an alternation of
commands is indexed too.
"""

from __future__ import annotations

import re._parser as sre_parse  # type: ignore[import-not-found]
from re._constants import (  # type: ignore[import-not-found]
    AT,
    AT_BEGINNING,
    AT_BEGINNING_STRING,
    BRANCH,
    LITERAL,
    MAX_REPEAT,
    MIN_REPEAT,
    SUBPATTERN,
)
from typing import Any

MIN_LITERAL = 3  # shorter literals prune too little to be worth an index atom
# ... except the run a pattern starts with after '^': a value's first characters are a program's or a
# path's own ('^\\\\' - a UNC path - rarely starts an Image), and every match contains them all the same
MIN_LEADING_LITERAL = 2


def _parsed(pattern: str) -> Any:
    if "[:" in pattern:
        # RE2 reads [[:alpha:]] as a POSIX class; Python's parser reads '[[:alph' as a set and the
        # closing ']' as a literal, which RE2's matches need not contain: no prefilter (still correct)
        return None
    try:
        return sre_parse.parse(pattern)
    except Exception:  # noqa: BLE001 - RE2 syntax Python cannot read: no prefilter, still correct
        return None


def required_literals(pattern: str, shortest: int = MIN_LITERAL) -> list[str]:
    """Literals (each at least `shortest` characters: MIN_LITERAL for an index atom) one of which every
    match of `pattern` contains, sorted; [] when the pattern offers no such set."""
    parsed = _parsed(pattern)
    if parsed is None:
        return []
    items = list(parsed)
    if items and items[0][0] is AT and items[0][1] in (AT_BEGINNING, AT_BEGINNING_STRING):
        return sorted(_best_set(items[1:], shortest, leading=True))
    return sorted(_best_set(items, shortest))


# Literals most ordinary events hold (a program's extension, the system folders, the usual shells):
# a set with one of them prunes almost nothing, so any other set of the pattern is preferred
COMMON_LITERALS = frozenset(
    {".exe", ".dll", ".com", "exe", "dll", "cmd", ".cmd", "powershell", "system32", "windows", "\\windows\\", "http"}
)


def _score(lits: frozenset[str]) -> tuple[bool, int, int, int]:
    # no common literal first, then fewer alternatives once each is 4+ characters long, then longer ones
    shortest = min(len(t) for t in lits)
    return (not (COMMON_LITERALS & {t.lower() for t in lits}), min(shortest, 4), -len(lits), shortest)


def _best_set(items: Any, shortest: int = MIN_LITERAL, leading: bool = False) -> frozenset[str]:
    """The best set of a sequence: of its literal runs (one each), the sets of its alternations
    (a literal set of every branch, united) and of its repeats at least once. `leading`: the sequence
    starts the pattern (after '^'), so its first run may be MIN_LEADING_LITERAL long."""
    sets: list[frozenset[str]] = []
    run: list[str] = []
    first = [leading]  # the run being read is the sequence's first

    def flush() -> None:
        if len(run) >= (min(shortest, MIN_LEADING_LITERAL) if first[0] else shortest):
            sets.append(frozenset(["".join(run)]))
        run.clear()
        first[0] = False

    def walk(seq: Any) -> None:
        for op, arg in seq:
            if op is LITERAL:
                run.append(chr(arg))
            elif op is SUBPATTERN and arg[-1] is not None:
                walk(arg[-1])  # a plain group: its literals are still consecutive
            elif op is BRANCH:
                # Python's parser factors out the branches' common prefix ('g(?:et-wmiobject|wmi)'):
                # put the pending run back in front of each branch
                prefix = [(LITERAL, ord(c)) for c in run]
                flush()  # the run alone is required too
                branches = [_best_set(prefix + list(b), shortest) for b in arg[1]]
                if branches and all(branches):
                    sets.append(frozenset().union(*branches))
            elif (op is MAX_REPEAT or op is MIN_REPEAT) and arg[0] >= 1:
                flush()
                body = _best_set(list(arg[2]), shortest)
                if body:
                    sets.append(body)
            else:
                flush()

    walk(items)
    flush()
    return max(sets, key=_score) if sets else frozenset()
