"""Sigma values -> string tests: wildcard parsing, transformation modifiers, case folding.

A rule value goes through three stages: parse into tokens (literals and the wildcards `*` `?`
honouring the spec's backslash escapes), transformation modifiers (windash, base64, utf16...,
contains/startswith/endswith) that may expand one value into several alternatives, and finally
compilation into a `StringTest` that groups alternatives by kind (exact set, prefix/suffix
tuples, substrings, linear-time globs) so one call tests them all.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

import re2

from detectors.sigma.casefold import fold

ANY = object()  # `*`
ONE = object()  # `?`

Alternative = tuple[Any, ...] | bytes  # tuple of tokens (str literal, ANY, ONE) or a bytes literal

WINDASH_CHARS = ("-", "/", "\u2013", "\u2014", "\u2015")
_WINDASH_RE = re.compile(r"\B[-/]\b")
MAX_PATTERN_LENGTH = 8192
MAX_WINDASH_EXPANSION = 256
# the modifiers apply_transform applies (every other modifier selects a kind of test)
TRANSFORMS = frozenset(
    {"contains", "startswith", "endswith", "windash", "base64", "base64offset", "utf16le", "utf16be", "utf16", "wide"}
)


class ValueError_(Exception):
    """A rule value the engine cannot compile (message says why)."""


def re2_options(*, case_sensitive: bool = True, dot_nl: bool = False, one_line: bool = True) -> re2.Options:
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = case_sensitive
    options.dot_nl = dot_nl
    options.one_line = one_line
    options.max_mem = 8 << 20  # bounded DFA memory: a hostile pattern fails to compile, not to run
    return options


# google-re2's search/fullmatch run RE2 through a generator that decodes every span into str offsets
# and builds a Match object: about half of a short rule regex's cost (~2.7 us vs ~1.3 us on a Sysmon
# Image path). A rule needs only found/not found, so regex and glob tests make the very call those
# methods make on the RE2 object the wrapper holds (`_regexp.Match(anchor, utf8, 0, len)`, first
# span (-1, -1) when nothing is found). A private layout: `direct_anchor` gives the anchor only when
# the installed wrapper has it and answers as the public method does on a probe, else None (the
# tests then call the public method).
NO_MATCH = (-1, -1)


def direct_anchor(name: str, public: str) -> Any:
    """RE2's anchor `name` ("UNANCHORED": search, "ANCHOR_BOTH": fullmatch) if a direct Match call
    answers as the wrapper's `public` method on a probe, else None."""
    try:
        anchor = getattr(re2._Anchor, name)
        rx = re2.compile("(b)(é)?c|^$", re2_options())
        for text in ("", "abc", "aébc", "xébéc", "bc", "zz", "ab"):
            b = text.encode()
            if (rx._regexp.Match(anchor, b, 0, len(b))[0] != NO_MATCH) != (getattr(rx, public)(text) is not None):
                return None
        return anchor
    except Exception:  # noqa: BLE001 - another layout: the public method
        return None


_ANCHOR_BOTH = direct_anchor("ANCHOR_BOTH", "fullmatch")


class Re2Found:
    """Found / not found of a compiled google-re2 pattern: RE2 asked directly with `anchor` (one that
    direct_anchor vouched for) when it can be, else the wrapper's `public` method ("search",
    "fullmatch"). Regex tests (typed._RegexTest) and `?` globs (_Re2Glob) are this."""

    __slots__ = ("anchor", "public", "raw", "rx")

    def __init__(self, rx: Any, anchor: Any, public: str) -> None:
        self.rx, self.anchor = rx, anchor
        self.public = getattr(rx, public)
        self.raw = rx._regexp if anchor is not None else None

    def __call__(self, s: str) -> bool:
        raw = self.raw
        if raw is None:
            return self.public(s) is not None
        b = s.encode()  # what the wrapper hands RE2 for a str (UTF-8; the same error if not encodable)
        return bool(raw.Match(self.anchor, b, 0, len(b))[0] != NO_MATCH)


class _Re2Glob(Re2Found):
    """A glob with `?` as RE2 (see glob_regex), matched whole."""

    __slots__ = ()

    def __init__(self, rx: Any) -> None:
        super().__init__(rx, _ANCHOR_BOTH, "fullmatch")

    fullmatch = Re2Found.__call__


_WILDCARD_SPLIT = re.compile(r"([*?])")


def parse_wildcards(text: str) -> tuple[Any, ...]:
    """Sigma string -> tokens. `\\*` `\\?` `\\\\` escape; any other backslash is literal."""
    if "\\" not in text:  # most values: no escapes, so split on the wildcards directly
        if "*" not in text and "?" not in text:
            return (text,) if text else ()
        return tuple(
            ANY if part == "*" else ONE if part == "?" else part for part in _WILDCARD_SPLIT.split(text) if part
        )
    tokens: list[Any] = []
    buf: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] in "*?\\":
            buf.append(text[i + 1])
            i += 2
            continue
        if ch in "*?":
            if buf:
                tokens.append("".join(buf))
                buf = []
            tokens.append(ANY if ch == "*" else ONE)
        else:
            buf.append(ch)
        i += 1
    if buf:
        tokens.append("".join(buf))
    return tuple(tokens)


def is_plain(alt: Alternative) -> bool:
    return isinstance(alt, bytes) or all(isinstance(t, str) for t in alt)


def plain_text(alt: Alternative, modifier: str) -> str | bytes:
    if isinstance(alt, bytes):
        return alt
    if not is_plain(alt):
        raise ValueError_(f"modifier '{modifier}' cannot apply to a value with wildcards")
    return "".join(alt)


def _as_tokens(alt: Alternative) -> tuple[Any, ...]:
    if isinstance(alt, bytes):
        return (alt.decode("latin-1"),) if alt else ()
    return alt


def apply_transform(modifier: str, alts: list[Alternative]) -> list[Alternative]:
    """One transformation modifier over the alternatives of one rule value."""
    out: list[Alternative] = []
    for alt in alts:
        if modifier == "contains":
            toks = alt if type(alt) is tuple else _as_tokens(alt)
            toks = toks if toks[:1] == (ANY,) else (ANY,) + toks
            out.append(toks if toks[-1:] == (ANY,) else toks + (ANY,))
        elif modifier == "startswith":
            toks = alt if type(alt) is tuple else _as_tokens(alt)
            out.append(toks if toks[-1:] == (ANY,) else toks + (ANY,))
        elif modifier == "endswith":
            toks = alt if type(alt) is tuple else _as_tokens(alt)
            out.append(toks if toks[:1] == (ANY,) else (ANY,) + toks)
        elif modifier == "windash":
            out.extend(_windash(_as_tokens(alt)))
        elif modifier == "base64":
            raw = plain_text(alt, modifier)
            raw = raw.encode() if isinstance(raw, str) else raw
            out.append((base64.b64encode(raw).decode(),))
        elif modifier == "base64offset":
            raw = plain_text(alt, modifier)
            raw = raw.encode() if isinstance(raw, str) else raw
            starts, ends = (0, 2, 3), (None, -3, -2)
            for shift in range(3):
                enc = base64.b64encode(b" " * shift + raw)
                out.append((enc[starts[shift] : ends[(len(raw) + shift) % 3]].decode(),))
        elif modifier in ("utf16le", "wide", "utf16be", "utf16"):
            raw = plain_text(alt, modifier)
            if isinstance(raw, bytes):
                raise ValueError_(f"modifier '{modifier}' applied twice")
            if modifier == "utf16be":
                out.append(raw.encode("utf-16-be"))
            elif modifier == "utf16":
                out.append(b"\xff\xfe" + raw.encode("utf-16-le"))
            else:
                out.append(raw.encode("utf-16-le"))
        else:  # pragma: no cover - caller only passes transformation modifiers
            raise ValueError_(f"unknown transformation '{modifier}'")
    return out


def _windash(toks: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    variants: list[list[Any]] = [[]]
    for tok in toks:
        if not isinstance(tok, str):
            for v in variants:
                v.append(tok)
            continue
        pieces = _WINDASH_RE.split(tok)
        if len(pieces) == 1:
            for v in variants:
                v.append(tok)
            continue
        # each dash position independently takes every dash character
        texts = [pieces[0]]
        for piece in pieces[1:]:
            texts = [t + d + piece for t in texts for d in WINDASH_CHARS]
            if len(texts) * len(variants) > MAX_WINDASH_EXPANSION:
                raise ValueError_("windash expands to too many values")
        variants = [v + [t] for v in variants for t in texts]
    return [tuple(v) for v in variants]


def glob_regex(toks: tuple[Any, ...]) -> str:
    parts = []
    for tok in toks:
        if tok is ANY:
            parts.append(".*")
        elif tok is ONE:
            parts.append(".")
        else:
            parts.append(re.escape(tok))
    return "".join(parts)


def longest_literal(toks: tuple[Any, ...]) -> str:
    return max((t for t in toks if isinstance(t, str)), key=len, default="")


@dataclass
class StringTest:
    """OR over compiled alternatives; callable on one string, case-folded (casefold.fold) unless cased."""

    cased: bool = False
    exact: set[Any] = field(default_factory=set)
    prefixes: tuple[Any, ...] = ()
    suffixes: tuple[Any, ...] = ()
    substrings: tuple[Any, ...] = ()
    globs: list[Any] = field(default_factory=list)
    # index atoms: ("eq", text) or ("sub", text), case-folded; None = cannot be indexed
    atoms: list[Any] | None = field(default_factory=list)

    def __call__(self, s: str) -> bool:
        if s in self.exact:
            return True
        if self.prefixes and s.startswith(self.prefixes):
            return True
        if self.suffixes and s.endswith(self.suffixes):
            return True
        for sub in self.substrings:
            if sub in s:
                return True
        for rx in self.globs:
            if rx.fullmatch(s):
                return True
        return False


def compile_alternatives(alts: list[Alternative], cased: bool) -> StringTest:
    # an uncased value's texts are folded already, and fold(fold(t)) == fold(t) (casefold tests): its
    # atoms take them as they are
    test = StringTest(cased=cased)
    exact, globs = test.exact, test.globs
    atoms: list[Any] | None = test.atoms  # None once an alternative cannot be indexed
    prefixes: list[str] = []
    suffixes: list[str] = []
    substrings: list[str] = []
    for alt in alts:
        toks = alt if type(alt) is tuple else _as_tokens(alt)
        n = len(toks)
        if n == 1 and type(toks[0]) is str:  # most values: a plain text
            text = toks[0] if cased else fold(toks[0])
            if len(text) > MAX_PATTERN_LENGTH:
                raise ValueError_(f"value longer than {MAX_PATTERN_LENGTH} characters")
            exact.add(text)
            if atoms is not None:
                atoms.append(("eq", fold(text) if cased else text))
            continue
        # |contains, |endswith, |startswith of one text (as the general path below would build them)
        into: list[str] | None = None
        lit: Any = None
        if n == 3 and toks[0] is ANY and toks[2] is ANY:
            lit, into = toks[1], substrings
        elif n == 2 and toks[0] is ANY:
            lit, into = toks[1], suffixes
        elif n == 2 and toks[1] is ANY:
            lit, into = toks[0], prefixes
        if into is not None and type(lit) is str:
            lit = lit if cased else fold(lit)
            if len(lit) > MAX_PATTERN_LENGTH:
                raise ValueError_(f"value longer than {MAX_PATTERN_LENGTH} characters")
            into.append(lit)
            if atoms is not None:
                if lit:
                    atoms.append(("sub", fold(lit) if cased else lit))
                else:
                    atoms = None
            continue
        if not cased:
            toks = tuple([fold(t) if type(t) is str else t for t in toks])
        lits = [t for t in toks if type(t) is str]
        if sum(map(len, lits)) > MAX_PATTERN_LENGTH:
            raise ValueError_(f"value longer than {MAX_PATTERN_LENGTH} characters")
        if len(lits) == len(toks):
            text = "".join(lits)
            exact.add(text)
            if atoms is not None:
                atoms.append(("eq", fold(text) if cased else text))
            continue
        if n == 1:  # `*` matches any present value (`?` alone: a glob)
            if toks[0] is ANY:
                substrings.append("")
                atoms = None
                continue
            globs.append(_compile_glob(toks))
        elif len(lits) == 1 and toks[0] is not ONE and toks[-1] is not ONE and ONE not in toks:
            lit = lits[0]
            if n == 3 and toks[0] is ANY and toks[-1] is ANY:
                substrings.append(lit)
            elif n == 2 and toks[-1] is ANY:
                prefixes.append(lit)
            elif n == 2 and toks[0] is ANY:
                suffixes.append(lit)
            else:
                globs.append(_compile_glob(toks))
        else:
            globs.append(_compile_glob(toks))
        if atoms is not None:
            lit = max(lits, key=len, default="")  # longest_literal(toks)
            if lit:
                atoms.append(("sub", fold(lit) if cased else lit))
            else:
                atoms = None
    test.atoms = atoms
    test.prefixes = tuple(prefixes)
    test.suffixes = tuple(suffixes)
    test.substrings = tuple(substrings)
    return test


class _StarGlob:
    """A glob with `*` only, matched by ordered str.find of its literal parts (linear time)."""

    def __init__(self, toks: tuple[Any, ...]):
        self.parts = [t for t in toks if isinstance(t, str)]
        self.head = toks[0] is not ANY
        self.tail = toks[-1] is not ANY

    def fullmatch(self, s: str) -> bool:
        parts = self.parts
        pos, end = 0, len(s)
        first, last = 0, len(parts)
        if self.head:
            if not s.startswith(parts[0]):
                return False
            pos = len(parts[0])
            first = 1
        if self.tail and last > first:
            if not s.endswith(parts[-1]) or end - len(parts[-1]) < pos:
                return False
            end -= len(parts[-1])
            last -= 1
        for part in parts[first:last]:
            i = s.find(part, pos, end)
            if i < 0:
                return False
            pos = i + len(part)
        return True


def _compile_glob(toks: tuple[Any, ...]) -> Any:
    if ONE not in toks and any(isinstance(t, str) for t in toks):
        return _StarGlob(toks)
    try:
        return _Re2Glob(re2.compile(glob_regex(toks), re2_options(dot_nl=True)))
    except re2.error as exc:
        raise ValueError_(f"wildcard pattern does not compile: {exc}") from None
