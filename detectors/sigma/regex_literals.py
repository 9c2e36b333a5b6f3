"""Literal prefilter for regexes: a substring every match must contain.

Uses Python's own regex parser only to read the pattern's structure (never to match); syntax the
two read differently gets no literal (RE2's POSIX classes; what Python cannot parse). Only
top-level literal runs are taken (no alternation at top level), so the literal is a necessary
condition for a match; case flags are irrelevant because the index compares case-folded text.
"""

from __future__ import annotations

from typing import Any

try:  # Python 3.11+
    import re._parser as sre_parse  # type: ignore[import-not-found]
    from re._constants import LITERAL, SUBPATTERN  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover
    import sre_parse  # type: ignore[no-redef, unused-ignore]
    from sre_constants import LITERAL, SUBPATTERN  # type: ignore[no-redef, unused-ignore]


def required_literal(pattern: str) -> str:
    if "[:" in pattern:
        # RE2 reads [[:alpha:]] as a POSIX class; Python's parser reads '[[:alph' as a set and the
        # closing ']' as a literal, which RE2's matches need not contain: no prefilter (still correct)
        return ""
    try:
        parsed = sre_parse.parse(pattern)
    except Exception:  # noqa: BLE001 - RE2 syntax Python cannot read: no prefilter, still correct
        return ""
    best, run = "", list[str]()

    def flush() -> None:
        nonlocal best, run
        text = "".join(run)
        if len(text) > len(best):
            best = text
        run = []

    def walk(items: Any) -> None:
        for op, arg in items:
            if op is LITERAL:
                run.append(chr(arg))
            elif op is SUBPATTERN and arg[-1] is not None:
                walk(arg[-1])  # a plain group: its literals are still consecutive
            else:
                flush()

    walk(list(parsed))
    flush()
    return best
