"""Terminal output of text that comes from logs: never let a log line drive the analyst's terminal.

A hostile line can carry ANSI/OSC escape sequences (retitle the window, hide text, fake a prompt,
write to the clipboard), carriage returns that overwrite what was printed, or bidi overrides that
reorder it. `clean` shows every such character as a visible escape (`\\x1b`, `\\u202e`) instead:
nothing is lost, nothing is interpreted. JSON output needs none of this (json.dumps escapes C0 and
DEL itself; `ensure_ascii=False` keeps C1 and bidi characters, so JSON writers call `clean` too).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# C0 controls except tab, DEL, C1 controls, bidi embeddings/overrides/isolates, line/paragraph
# separators and the zero-width characters that can hide text
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")
# what json.dumps(ensure_ascii=False) leaves raw inside strings (it escapes C0 itself; structural
# newlines of indented JSON must stay)
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def clean(text: object) -> str:
    """`text` as str with every terminal-unsafe character shown as an escape."""
    s = text if isinstance(text, str) else str(text)
    return _UNSAFE.sub(_escape, s)


def clean_json(text: str) -> str:
    """A JSON document written with ensure_ascii=False, made terminal-safe; still valid JSON
    (the escapes it adds are JSON escapes; json.dumps already escapes C0)."""
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def table_row(columns: Sequence[tuple[str, int]], values: Sequence[object]) -> str:
    """One line of a fixed-width table of (name, width) columns: each value cleaned, cut to its width
    (a cut shows as `~`) and padded; width 0 = unbounded (the last column)."""
    cells = []
    for (_, width), value in zip(columns, values, strict=True):
        text = clean(value)
        cells.append(text if not width else (text[: width - 1] + "~" if len(text) > width else text.ljust(width)))
    return "  ".join(cells).rstrip()
