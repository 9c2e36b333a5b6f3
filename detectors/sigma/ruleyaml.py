"""Rule YAML read straight into Python objects, for the block subset Sigma rules are written in.

A cold start read every rule file through libyaml's events, which PyYAML turns into one Python object
per event before our builder (yamlsafe) makes dicts and lists of them: the largest part of a cold
`socpipe rules lint`, plus importing PyYAML. Rule files use a small part of YAML, which this module
reads line by line with str methods, one frame per open collection:

- block mappings and sequences (also a sequence at its key's indentation, `- key: value` and `- - x`
  entries), `---` documents, comments and blank lines;
- plain scalars (on one line, or continued on more-indented lines), single- and double-quoted scalars
  on one line, literal and folded block scalars (`|`, `>`, with `-` or `+` chomping);
- anchors on any node, aliases as values, one-line flow sequences of scalars and the empty `[]`/`{}`.

A text with anything else - tags, directives, `...`, complex or merge keys, explicit indentation
indicators, quoted scalars over several lines, flow mappings, tabs, carriage returns, a byte-order mark,
control characters, nesting deeper than FAST_MAX_DEPTH, more than MAX_NODES nodes, an alias to an
unknown anchor, and anything that is not valid YAML - is declined (parse returns None), and yamlsafe
reads it exactly as before: it reports every error and refuses every hostile input with its line, so
this reader never has to be right about an error, only to accept texts whose every line it understood.

The result is what yamlsafe.load_documents_typed gives for the same text (plain scalars typed by PyYAML's
YAML 1.1 resolver, timestamps kept as text: see ruleyaml_scalars.resolve): the documents, the 1-based
line of each document's root node (for an empty document, of the token after it), and whether every float is finite.
tests/unit/test_sigma_ruleyaml.py compares the two on every shared and province rule file. Pure.
"""

from __future__ import annotations

import re
from typing import Any

from detectors.sigma.ruledocs import MAX_NODES
from detectors.sigma.ruleyaml_scalars import (
    FIRST_CHARS,
    INDICATORS,
    PLAIN_AVOID,
    RESOLVED,
    Decline,
    Unclosed,
    after_quote,
    block_scalar,
    flow_collection,
    quoted,
    resolve,
    split_key,
)

__all__ = ["FAST_MAX_DEPTH", "parse"]

FAST_MAX_DEPTH = 48  # below yamlsafe's MAX_DEPTH: deeper texts are declined, and refused there

# Bytes an ASCII text may hold: \n and the printable characters (tabs, CR and other controls decline).
_ASCII_OK = bytes([10, *range(32, 127)])
# What a text with other characters must not hold: C0 and C1 controls but \n (\x85 is a YAML line
# break), DEL, surrogates, the byte-order mark, U+FFFE/U+FFFF, the line and paragraph separators.
_UNUSUAL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufeff\ufffe\uffff\u2028\u2029]")
_ANCHOR = re.compile(r"[&*]([0-9A-Za-z_-]+)(?= |\Z)")


class _Reader:
    __slots__ = ("anchors", "declared", "finite", "last_break", "lines", "nodes")

    def __init__(self, lines: list[str], last_break: bool) -> None:
        self.lines = lines
        self.last_break = last_break  # whether the last line ends with a line break
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.declared: set[str] = set()  # the document's anchor names: one twice is declined (PyYAML refuses it)
        self.nodes = 0  # as yamlsafe counts them: every scalar and collection, an alias as its anchor's
        self.finite = True

    def plain(self, text: str) -> Any:
        if text and text[0] not in FIRST_CHARS:
            return text
        obj = resolve(text)
        if type(obj) is float and obj - obj != 0.0:  # inf or nan
            self.finite = False
        return obj

    def value(self, text: str, i: int, parent: int) -> tuple[Any, int]:
        """The node written on line `i` from `text` on (after a key's colon, an entry's dash, or alone
        on its line: not empty, not a comment, not a key) in a collection at column `parent`, and the
        line after it. Counts its nodes."""
        first = text[0]
        if first == "&":
            m = _ANCHOR.match(text)
            rest = text[m.end() :].lstrip(" ") if m else ""
            if not rest or rest[0] in "&*#" or m.group(1) in self.declared:  # type: ignore[union-attr]
                raise Decline  # the main loop reads an anchor before a node on the lines below
            self.declared.add(m.group(1))  # type: ignore[union-attr]
            before = self.nodes
            obj, i = self.value(rest, i, parent)
            self.anchors[m.group(1)] = (obj, self.nodes - before)  # type: ignore[union-attr]
            return obj, i
        if first == "*":
            m = _ANCHOR.match(text)
            if m is None:
                raise Decline
            after_quote(text[m.end() :])
            hit = self.anchors.get(m.group(1))
            if hit is None:
                raise Decline  # an undefined alias: yamlsafe reports it
            self.nodes += hit[1]
            if self.nodes > MAX_NODES:
                raise Decline
            return hit[0], i + 1
        if first == "[" or first == "{":
            lines = self.lines
            while True:
                try:
                    obj, count, after = flow_collection(text, self.plain, self.anchors, self.declared)
                    break
                except Unclosed:  # join the next line (a flow collection's line breaks fold into spaces)
                    more = lines[i + 1] if i + 1 < len(lines) else ""
                    body = more.lstrip(" ")
                    if not body or len(more) - len(body) <= parent or "#" in more or "#" in text:
                        raise Decline from None
                    if text.endswith("\\") or len(text) > 20_000:
                        raise Decline from None
                    text = text.rstrip(" ") + " " + body.rstrip(" ")
                    i += 1
            after_quote(after)
            self.nodes += count
            if self.nodes > MAX_NODES:
                raise Decline
            return obj, i + 1
        self.nodes += 1
        if first == "'" or first == '"':
            obj, after = quoted(text)
            after_quote(after)
            return obj, i + 1
        if first == "|" or first == ">":
            return block_scalar(self.lines, self.last_break, text, i, parent)
        if first in INDICATORS or (first in "-?:" and text[1:2] in ("", " ")):
            raise Decline
        cut = text.find(" #")
        if cut >= 0:
            text = text[:cut]
        text = text.rstrip(" ")
        if ": " in text or text[-1] == ":":
            raise Decline
        lines = self.lines
        n = len(lines)
        j = i + 1
        if j < n and cut < 0:
            more = lines[j]
            body = more.lstrip(" ")
            if body and len(more) - len(body) > parent and body[0] != "#":
                parts = [text]
                while True:  # continuation lines: folded into one line, single spaces between
                    if body[0] in PLAIN_AVOID or " #" in body or ": " in body:
                        raise Decline
                    body = body.rstrip(" ")
                    if body[-1] == ":":
                        raise Decline
                    parts.append(body)
                    j += 1
                    if j >= n:
                        break
                    more = lines[j]
                    body = more.lstrip(" ")
                    if not body or len(more) - len(body) <= parent or body[0] == "#":
                        break
                text = " ".join(parts)
        return self.plain(text), j

    def read(self, docs: list[Any], starts: list[int]) -> None:
        """Every document into `docs`, the line of each one's root into `starts`.

        The open collection is in locals (cont, col, is_map, seq_at_key: a sequence at its key's
        column, deeper: col + 1 spaces, anchor and opened: its anchor and the node count before it);
        the ones around it on `stack`. A key or entry with nothing after it leaves a pending slot: the
        next line holding a node decides whether its value is below it or null. The node count is kept
        in `nodes` (self.nodes while value() reads a node)."""
        lines = self.lines
        n = len(lines)
        anchors = self.anchors
        plain = self.plain
        known = RESOLVED.get
        stack: list[tuple[Any, int, bool, bool, str, str | None, int]] = []
        cont: Any = None  # None: at the document level
        col = -1
        is_map = seq_at_key = False
        deeper = ""
        anchor: str | None = None
        opened = 0
        pending = False  # a key or entry waiting for its value
        pend_key: Any = None
        pend_anchor: str | None = None
        pend_nodes = 0
        explicit = False  # a `---` whose document has no root yet
        rooted = False  # the open document has its root node
        nodes = 0
        i = 0
        while True:
            while i < n:  # the next line holding a node
                line = lines[i]
                body = line.lstrip(" ")
                if body and body[0] != "#":
                    break
                i += 1
            else:
                line = body = ""
            if i >= n:
                indent = -2
            else:
                indent = len(line) - len(body)
                if indent == 0 and body[0] in "-.%":
                    if body.startswith("---") and body[3:4] in ("", " "):
                        if body[3:].lstrip(" ")[:1] not in ("", "#"):
                            raise Decline  # a node on the marker's line
                        indent = -1
                    elif body[0] != "-" or body.startswith("..."):
                        raise Decline  # `...`, directives
            if pending:
                pending = False
                new: Any = _NONE
                if indent > col:
                    first = body[0]
                    if first == "-" and body[1:2] in ("", " "):
                        new = []
                    elif (": " in body or body[-1] == ":") if first not in "'\"" else split_key(body) is not None:
                        new = {}  # (or a scalar with ': ' in it, which the key's reading declines)
                    else:  # a scalar (or anything else) on the lines below
                        if pend_anchor is not None and first in "&*":
                            raise Decline  # two anchors, or an anchored alias
                        self.nodes = nodes
                        obj, i = self.value(body, i, col)
                        nodes = self.nodes
                        if pend_anchor is not None:
                            anchors[pend_anchor] = (obj, nodes - pend_nodes)
                        if is_map:
                            cont[pend_key] = obj
                        else:
                            cont.append(obj)
                        continue
                elif is_map and indent == col and body[0] == "-" and body[1:2] in ("", " "):
                    new = []  # a sequence at its key's column
                else:
                    nodes += 1
                    if pend_anchor is not None:
                        anchors[pend_anchor] = (None, 1)
                    if is_map:
                        cont[pend_key] = None
                    else:
                        cont.append(None)
                if new is not _NONE:
                    if is_map:
                        cont[pend_key] = new
                    else:
                        cont.append(new)
                    stack.append((cont, col, is_map, seq_at_key, deeper, anchor, opened))
                    seq_at_key = indent == col
                    cont, col, is_map, deeper = new, indent, type(new) is dict, " " * (indent + 1)
                    anchor, opened = pend_anchor, pend_nodes
                    nodes += 1
                    if len(stack) > FAST_MAX_DEPTH:
                        raise Decline
            # close the collections this line is outside of
            while cont is not None and (
                indent < col or (seq_at_key and indent == col and not (body[0] == "-" and body[1:2] in ("", " ")))
            ):
                if anchor is not None:
                    anchors[anchor] = (cont, nodes - opened)
                cont, col, is_map, seq_at_key, deeper, anchor, opened = stack.pop()
            if cont is None:  # at the document level
                if indent < 0:
                    if explicit:  # an empty document: libyaml marks its null at the next token
                        docs.append(None)
                        starts.append(i + 1 if indent == -1 else n + 1)  # (the end: on a line of its own)
                    if indent == -2:
                        self.nodes = nodes
                        return
                    explicit, rooted = True, False
                    i += 1
                    continue
                if rooted:
                    raise Decline  # a second node in one document
                anchors.clear()  # anchors are scoped to their document
                self.declared.clear()
                if body[0] == "-" and body[1:2] in ("", " "):
                    new = []
                elif split_key(body) is not None:
                    new = {}
                else:
                    raise Decline  # a document that is a scalar
                docs.append(new)
                starts.append(i + 1)
                explicit, rooted = False, True
                stack.append((None, -1, False, False, "", None, 0))
                cont, col, is_map, seq_at_key, deeper = new, indent, type(new) is dict, False, " " * (indent + 1)
                anchor, opened = None, nodes
                nodes += 1
            elif indent != col:
                raise Decline  # more indented, with nothing waiting for a value
            text = body
            while True:  # the line, from column col: a key of cont, or an entry of cont
                if is_map:
                    if "#" in text or text[0] in PLAIN_AVOID:
                        split = split_key(text)
                        if split is None:
                            raise Decline  # a scalar or an entry where a key belongs
                        key_text, key_quoted, rest = split
                    else:
                        key_quoted = False
                        colon = text.find(": ")
                        if colon > 0:
                            key_text = text[:colon]
                            rest = text[colon + 2 :]
                            if rest[:1] == " ":
                                rest = rest.lstrip(" ")
                        elif text[-1] == ":":
                            key_text = text[:-1]
                            rest = ""
                        else:
                            raise Decline
                        if key_text[-1] == " " or len(key_text) > 1000:
                            split = split_key(text)
                            if split is None:
                                raise Decline
                            key_text, key_quoted, rest = split
                    if key_quoted:
                        if key_text == "<<":
                            raise Decline  # yamlsafe hands any "<<" key to PyYAML's constructor
                        key = key_text
                    elif key_text[0] not in FIRST_CHARS:
                        key = key_text
                    else:
                        key = known(key_text, _NONE)
                        if key is _NONE:
                            key = plain(key_text)
                    nodes += 1
                else:
                    if text[0] != "-" or text[1:2] not in ("", " "):
                        raise Decline  # a scalar or a key where an entry belongs
                    text = text[1:].lstrip(" ")
                    key = None
                    rest = text
                    if rest and rest[0] != "#" and (": " in rest or rest[-1] == ":" or rest[0] == "-"):
                        c2 = len(line) - len(rest)
                        if rest[0] == "-" and rest[1:2] in ("", " "):
                            new = []
                        elif split_key(rest) is not None:
                            new = {}
                        else:
                            new = _NONE
                        if new is not _NONE:  # an entry that opens a collection on this line
                            cont.append(new)
                            stack.append((cont, col, is_map, seq_at_key, deeper, anchor, opened))
                            if len(stack) > FAST_MAX_DEPTH:
                                raise Decline
                            cont, col, is_map, seq_at_key, deeper = new, c2, type(new) is dict, False, " " * (c2 + 1)
                            anchor, opened = None, nodes
                            nodes += 1
                            continue
                if not rest or rest[0] == "#":
                    pending, pend_key, pend_anchor, pend_nodes = True, key, None, nodes
                    i += 1
                    break
                first = rest[0]
                if first == "'" and rest.find("'", 1) == len(rest) - 1:
                    obj = rest[1:-1]  # 'text', nothing quoted inside, nothing after
                    nodes += 1
                    i += 1
                elif (
                    first not in PLAIN_AVOID
                    and rest[-1] not in ": "
                    and " #" not in rest
                    and ": " not in rest
                    and not (lines[i + 1] if i + 1 < n else "").startswith(deeper)
                ):
                    if first not in FIRST_CHARS:
                        obj = rest
                    else:
                        obj = known(rest, _NONE)
                        if obj is _NONE:
                            obj = plain(rest)
                    nodes += 1
                    i += 1
                elif first == "&" and (m := _ANCHOR.match(rest)) and rest[m.end() :].lstrip(" ")[:1] in ("", "#"):
                    if m.group(1) in self.declared:
                        raise Decline
                    self.declared.add(m.group(1))
                    pending, pend_key, pend_anchor, pend_nodes = True, key, m.group(1), nodes
                    i += 1
                    break
                else:
                    self.nodes = nodes
                    obj, i = self.value(rest, i, col)
                    nodes = self.nodes
                if is_map:
                    cont[key] = obj
                else:
                    cont.append(obj)
                break


_NONE = object()


def parse(text: str) -> tuple[list[Any], list[int], bool] | None:
    """The documents of `text`, the 1-based line of each one's root node (for an empty document, of the token after it),
    and whether every float in them is finite; None when `text` is outside the subset (see the module
    docstring: yamlsafe reads those)."""
    if text.isascii():
        if text.encode("ascii").translate(None, _ASCII_OK):
            return None
    elif _UNUSUAL.search(text):
        return None
    lines = text.split("\n")
    last_break = lines[-1] == ""
    if last_break:
        lines.pop()
    reader = _Reader(lines, last_break)
    docs: list[Any] = []
    starts: list[int] = []
    try:
        reader.read(docs, starts)
    except Decline:
        return None
    if reader.nodes > MAX_NODES:
        return None
    return docs, starts, reader.finite
