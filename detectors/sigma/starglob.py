"""A glob of text and `*` only, matched without a regex: what condition `x of pattern` and the
logsource derivation's field patterns use (both compile many small patterns at start-up)."""

from __future__ import annotations


def star_fits(text: str, head: str, middle: list[str], tail: str) -> bool:
    """`text` is head*middle...*tail whole (`pattern.split("*")`; a `*` spans any text): each middle
    part at its first place after the last, which leaves the most room for the rest."""
    if len(text) < len(head) + len(tail) or not text.startswith(head) or not text.endswith(tail):
        return False
    pos, end = len(head), len(text) - len(tail)
    for part in middle:
        i = text.find(part, pos, end)
        if i < 0:
            return False
        pos = i + len(part)
    return True
