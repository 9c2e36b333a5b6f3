"""Scalars for detectors.sigma.ruleyaml: plain-scalar typing as PyYAML resolves it, quoted scalars on one
line, block scalars as libyaml's scanner reads them, one-line flow sequences, and mapping keys.

Everything here either understands its input or raises Decline, so that the whole text is read by
yamlsafe instead (see ruleyaml). Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = [
    "FIRST_CHARS",
    "INDICATORS",
    "PLAIN_AVOID",
    "RESOLVED",
    "Decline",
    "Unclosed",
    "after_quote",
    "block_scalar",
    "flow_collection",
    "quoted",
    "resolve",
    "split_key",
]


class Decline(Exception):
    """Something outside the subset ruleyaml reads: yamlsafe reads the text instead."""


class Unclosed(Decline):
    """A flow collection not closed on its line: it may go on on the next one."""


# Quoted scalars on one line, written as "unrolled loops" (a run of ordinary characters, then each
# '' or escape with the run after it): the same strings and the same match as ((?:[^']|'')*) and
# ((?:[^"\\]|\\.)*), for which Python's re steps through the alternation once a character: reading the
# ~1,060 quoted scalars of the SigmaHQ rules took ~3.4 ms that way, ~0.4 ms this way
# (test_quoted_scalar_patterns_match_as_the_one_character_forms).
SINGLE = re.compile(r"'([^']*(?:''[^']*)*)'")
DOUBLE = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"')
_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)")
_ESCAPES = {
    "0": "\0", "a": "\a", "b": "\b", "t": "\t", "n": "\n", "v": "\v", "f": "\f", "r": "\r", "e": "\x1b",
    " ": " ", '"': '"', "/": "/", "\\": "\\", "N": "\x85", "_": "\xa0", "L": "\u2028", "P": "\u2029",
}  # fmt: skip
_BLOCK_HEADER = re.compile(r"[|>]([-+]?)(?: +(?:#.*)?)?\Z")
_FLOW_PLAIN = re.compile(r"(?:[^ ,\[\]{}#&*!|>'\"%@`:?-]|-[^ ,\[\]{}#:])[^,\[\]{}:#]*")
_NAME = re.compile(r"[0-9A-Za-z_-]+")
_DECIMAL = re.compile(r"[-+]?(?:0|[1-9][0-9]*)\Z")
_SIGN_INSIDE = re.compile(r"[^eE][-+]")

# A plain scalar whose first character is not one of these is a string to PyYAML's resolver (these are
# the first characters its implicit resolvers are registered for; '' is the empty scalar, null).
FIRST_CHARS = frozenset("yYnNtTfFoO-+0123456789.<~=")
INDICATORS = frozenset("[]{},#&*!|>'\"%@`")
FLOW_MAX_DEPTH = 8  # flow collections nested in one another (ruleyaml's block nesting stops at 48 of 64)
PLAIN_AVOID = INDICATORS | frozenset("-?:")  # first characters the fast paths leave to the general ones
_WORDS: dict[str, Any] = {w: True for w in ("yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON")}
_WORDS.update({w: False for w in ("no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF")})
_WORDS.update({w: None for w in ("null", "Null", "NULL", "~")})
# Every character an int or a float of PyYAML's resolver can hold: text with any other character is a
# string or a timestamp, which yamlsafe keeps as its text too.
_NUMBER_CHARS = frozenset("0123456789_.:+-xXabcdefABCDEFiInN")
_MISS = object()
RESOLVED: dict[str, Any] = {}  # plain scalars typed so far (no float that is not finite: see resolve)
_MAX_RESOLVED = 50_000


def resolve(text: str) -> Any:
    """The plain scalar `text` (empty, or its first character one of FIRST_CHARS) typed as yamlsafe
    types it: PyYAML's resolver, timestamps kept as text. The common forms are worked out here; what
    only a number pattern could still decide (`0x1F`, `1_000`, `12:30`, `1.5`, `.inf` ...) is asked of
    yamlsafe.resolve_plain, which imports PyYAML. Raises Decline for what yamlsafe hands to PyYAML's
    constructor (a merge key, the value tag)."""
    obj = RESOLVED.get(text, _MISS)
    if obj is not _MISS:
        return obj
    first = text[:1]
    if not first:
        obj = None
    elif first in "yYnNtTfFoO~":
        obj = _WORDS.get(text, text)
    elif first in "<=":
        if text in ("<<", "="):
            raise Decline
        obj = text
    elif _DECIMAL.match(text):
        obj = int(text)
    elif (
        text.count(".") > 1
        or not _NUMBER_CHARS.issuperset(text)
        or _SIGN_INSIDE.search(text)  # a sign inside, not an exponent's: a date, a range ...
        or not ("." in text or ":" in text or "_" in text or text.lstrip("+-")[:1] == "0")
    ):
        obj = text  # no int or float pattern of the resolver matches it
    else:
        from detectors.sigma.yamlsafe import resolve_plain  # PyYAML's resolver for the rest

        try:
            obj = resolve_plain(text)
        except ValueError:
            raise Decline from None
    if len(RESOLVED) < _MAX_RESOLVED and not (type(obj) is float and obj - obj != 0.0):
        RESOLVED[text] = obj  # (inf and nan are left out, so a text found here needs no finiteness check)
    return obj


def _unescape(body: str) -> str:
    def one(m: re.Match[str]) -> str:
        code = m.group(1)
        if len(code) == 1:
            out = _ESCAPES.get(code)
            if out is None:
                raise Decline
            return out
        value = int(code[1:], 16)
        if 0xD800 <= value <= 0xDFFF or value > 0x10FFFF:
            raise Decline
        return chr(value)

    return _ESCAPE.sub(one, body)


def after_quote(rest: str) -> None:
    """What may follow a complete scalar on its line: nothing, or spaces and a comment."""
    if rest and (rest[0] != " " or rest.lstrip(" ")[:1] not in ("", "#")):
        raise Decline


def quoted(text: str) -> tuple[str, str]:
    """The single- or double-quoted scalar `text` starts with, and what follows it on the line."""
    m = (SINGLE if text[0] == "'" else DOUBLE).match(text)
    if m is None:
        raise Decline  # over several lines
    body = m.group(1)
    if text[0] == "'":
        return (body.replace("''", "'") if "''" in body else body), text[m.end() :]
    return (_unescape(body) if "\\" in body else body), text[m.end() :]


def split_key(text: str) -> tuple[str, bool, str] | None:
    """A mapping entry's key text, whether it is quoted, and what follows its `:` (left-stripped; ''
    for nothing or a comment); None when `text` (a line from the key's column) holds no key."""
    first = text[0]
    if first in "[{&*":
        return None  # a flow collection, anchored or aliased node: a value (or a key outside the subset)
    if first == "'" or first == '"':
        key, after = quoted(text)
        after = after.lstrip(" ")
        if after[:1] != ":" or after[1:2] not in ("", " "):
            return None
        rest = after[1:].lstrip(" ")
        return key, True, "" if rest[:1] == "#" else rest
    colon = text.find(": ")
    cut = text.find(" #")
    if cut >= 0 and (colon < 0 or cut < colon):
        text = text[:cut]
        colon = -1
    if colon >= 0:
        key = text[:colon].rstrip(" ")
        rest = text[colon + 2 :].lstrip(" ")
        if rest[:1] == "#":
            rest = ""
    else:
        text = text.rstrip(" ")
        if text[-1:] != ":":
            return None
        key = text[:-1].rstrip(" ")
        rest = ""
    if not key or len(key) > 1000 or key[0] in INDICATORS or (key[0] in "-?:" and key[1:2] in ("", " ")):
        raise Decline  # an empty, long, complex or indicator-led key
    return key, False, rest


def flow_collection(
    text: str, plain: Callable[[str], Any], anchors: dict[str, tuple[Any, int]], declared: set[str]
) -> tuple[Any, int, str]:
    """The flow collection `text` starts with, all on its line (`[a, 'b']`, `{k: v, k2: [x, *y]}`:
    scalars, nested flow collections, anchors and aliases; `plain` types a plain scalar, `anchors`
    holds the document's anchors and their node counts, `declared` their names so far), its node count,
    and what follows it."""
    count = 0

    def skip(pos: int) -> int:
        while text[pos : pos + 1] == " ":
            pos += 1
        return pos

    def scalar(pos: int) -> tuple[Any, int]:
        nonlocal count
        count += 1
        first = text[pos : pos + 1]
        if first == "'" or first == '"':
            m = (SINGLE if first == "'" else DOUBLE).match(text, pos)
            if m is None:
                raise Unclosed  # (or not valid: the lines joined are read again, and declined)
            body = m.group(1)
            if first == "'":
                return body.replace("''", "'"), m.end()
            return (_unescape(body) if "\\" in body else body), m.end()
        m = _FLOW_PLAIN.match(text, pos)
        if m is None:
            raise Unclosed if pos >= len(text) else Decline
        return plain(m.group().rstrip(" ")), m.end()

    def node(pos: int, depth: int) -> tuple[Any, int]:
        nonlocal count
        first = text[pos : pos + 1]
        if first == "&" or first == "*":
            m = _NAME.match(text, pos + 1)
            if m is None:
                raise Decline
            if first == "*":
                hit = anchors.get(m.group())
                if hit is None:
                    raise Decline  # an undefined alias: yamlsafe reports it
                count += hit[1]
                return hit[0], m.end()
            if text[m.end() : m.end() + 1] != " " or m.group() in declared:
                raise Decline
            declared.add(m.group())
            after = skip(m.end())
            if text[after : after + 1] in ("", "&", "*", ",", "]", "}"):
                raise Decline
            before = count
            obj, pos = node(after, depth)
            anchors[m.group()] = (obj, count - before)
            return obj, pos
        if first != "[" and first != "{":
            return scalar(pos)
        if depth >= FLOW_MAX_DEPTH:
            raise Decline  # deeper flow nesting: yamlsafe reads (and bounds) it
        count += 1
        closing = "]" if first == "[" else "}"
        out: Any = [] if first == "[" else {}
        pos = skip(pos + 1)
        if text[pos : pos + 1] == closing:
            return out, pos + 1
        while True:
            if first == "[":
                obj, pos = node(pos, depth + 1)
                out.append(obj)
            else:
                key, pos = scalar(pos)
                if key == "<<":
                    raise Decline  # yamlsafe hands any "<<" key to PyYAML's constructor
                pos = skip(pos)
                if text[pos : pos + 2] != ": ":
                    raise Unclosed if pos + 1 >= len(text) else Decline
                obj, pos = node(skip(pos + 2), depth + 1)
                out[key] = obj
            pos = skip(pos)
            sep = text[pos : pos + 1]
            if sep == closing:
                return out, pos + 1
            if not sep:
                raise Unclosed
            pos = skip(pos + 1)
            if sep != "," or text[pos : pos + 1] in ("]", "}", ","):
                raise Decline  # a pair in a sequence, a trailing comma ...
            if pos >= len(text):
                raise Unclosed

    obj, end = node(0, 0)
    return obj, count, text[end:]


def block_scalar(lines: list[str], last_break: bool, header: str, i: int, parent: int) -> tuple[str, int]:
    """The literal (`|`) or folded (`>`) scalar whose header `header` ends line `i` of `lines` (the last
    of which ends with a line break if `last_break`), in a collection at column `parent`: its text, and
    the line after it. Follows libyaml's scanner (yaml_parser_scan_block_scalar) for content whose
    indentation is set by its first line; leading empty lines and explicit indentation are declined."""
    m = _BLOCK_HEADER.match(header)
    if m is None:
        raise Decline  # an indentation indicator, or text after the header
    literal = header[0] == "|"
    chomp = m.group(1)
    n = len(lines)
    j = i + 1
    if j >= n:
        raise Decline
    first = lines[j]
    body = first.lstrip(" ")
    indent = len(first) - len(body)
    if not body or indent <= parent:
        raise Decline  # empty, or leading empty lines (which may set the indentation)
    pad = " " * indent
    out: list[str] = []
    leading_break = ""
    leading_blank = False
    trailing = 0  # empty lines since the last content line
    while j < n:
        line = lines[j]
        if len(line) > indent and line.startswith(pad):
            content = line[indent:]
            blank = content[0] == " "
            if not literal and leading_break and not leading_blank and not blank:
                if not trailing:
                    out.append(" ")
            else:
                out.append(leading_break)
            if trailing:
                out.append("\n" * trailing)
                trailing = 0
            leading_blank = blank
            out.append(content)
            leading_break = "\n" if (j < n - 1 or last_break) else ""
        elif not line.strip(" "):
            if j == n - 1 and not last_break:
                raise Decline  # spaces at the very end, without a line break
            trailing += 1
        else:
            break
        j += 1
    if chomp != "-":
        out.append(leading_break)
        if chomp == "+" and trailing:
            out.append("\n" * trailing)
    return "".join(out), j
