"""Sigma condition grammar -> small AST.

Precedence (least to most binding, per the spec): or, and, not, `x of`, parentheses.
AST nodes are tuples: ("or", [n...]), ("and", [n...]), ("not", n), ("id", name),
("of", quantifier, pattern) where quantifier is an int (at least N) or "all" and pattern is
"them" or a search-identifier pattern with `*` wildcards.
"""

from __future__ import annotations

import re
from typing import Any

from detectors.sigma.starglob import star_fits

_TOKEN_RE = re.compile(r"\(|\)|[^\s()]+")  # every character is whitespace, a parenthesis or in a word
KEYWORDS = {"and", "or", "not", "of", "them"}


class ConditionError(Exception):
    """The condition string does not follow the Sigma grammar."""


def tokenize(text: str) -> list[str]:
    tokens: list[str] = _TOKEN_RE.findall(text)
    return tokens


class _Parser:
    def __init__(self, tokens: list[str]):
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise ConditionError("condition ends too early")
        self.pos += 1
        return tok

    def parse(self) -> Any:
        if not self.tokens:
            raise ConditionError("empty condition")
        if "|" in self.tokens:
            raise ConditionError(
                "aggregation with '|' (e.g. count() by) is the obsolete Sigma v1 syntax; "
                "write a correlation rule instead"
            )
        node = self.parse_or()
        if self.peek() is not None:
            raise ConditionError(f"unexpected {self.peek()!r}")
        return node

    def parse_or(self) -> Any:
        items = [self.parse_and()]
        while (self.peek() or "").lower() == "or":
            self.take()
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else ("or", items)

    def parse_and(self) -> Any:
        items = [self.parse_not()]
        while (self.peek() or "").lower() == "and":
            self.take()
            items.append(self.parse_not())
        return items[0] if len(items) == 1 else ("and", items)

    def parse_not(self) -> Any:
        if (self.peek() or "").lower() == "not":
            self.take()
            return ("not", self.parse_not())
        return self.parse_atom()

    def parse_atom(self) -> Any:
        tok = self.take()
        low = tok.lower()
        if tok == "(":
            node = self.parse_or()
            if self.take() != ")":
                raise ConditionError("missing ')'")
            return node
        if tok == ")":
            raise ConditionError("unexpected ')'")
        if (self.peek() or "").lower() == "of":
            self.take()
            if low == "all":
                quant: int | str = "all"
            elif low.isdigit() and int(low) > 0:
                quant = int(low)
            else:
                raise ConditionError(f"'{tok} of': quantifier must be a positive number or 'all'")
            target = self.take()
            if target in ("(", ")") or target.lower() in {"and", "or", "not", "of"}:
                raise ConditionError(f"'{tok} of' needs 'them' or an identifier pattern")
            return ("of", quant, "them" if target.lower() == "them" else target)
        if low in KEYWORDS:
            raise ConditionError(f"unexpected keyword {tok!r}")
        return ("id", tok)


_PARSED: dict[str, Any] = {}


def parse_condition(text: str) -> Any:
    """The tree of a condition; the same text gives the same tree, parsed once (rules repeat a few
    hundred conditions: 'selection', 'all of selection_*'...) and shared: never changed by its readers."""
    text = str(text)
    tree = _PARSED.get(text)
    if tree is None:
        tree = _Parser(tokenize(text)).parse()
        if len(_PARSED) < 10_000:
            _PARSED[text] = tree
    return tree


def resolve_of(pattern: str, names: list[str]) -> list[str]:
    """Identifiers an `x of` clause ranges over (them: all names not starting with '_')."""
    if pattern == "them":
        return [n for n in names if not n.startswith("_")]
    if "*" not in pattern:
        return [n for n in names if n == pattern]
    head, *middle, tail = pattern.split("*")
    return [n for n in names if _fits(n, head, middle, tail)]


def _fits(name: str, head: str, middle: list[str], tail: str) -> bool:
    """`name` is head*middle...*tail whole, as re.fullmatch of the pattern with `.*` for each `*` (so
    no newline in a gap; a pattern, a condition token, holds no whitespace)."""
    return "\n" not in name and star_fits(name, head, middle, tail)


def identifiers(node: Any) -> set[str]:
    kind = node[0]
    if kind == "id":
        return {node[1]}
    if kind == "not":
        return identifiers(node[1])
    if kind in ("and", "or"):
        out: set[str] = set()
        for item in node[1]:
            out |= identifiers(item)
        return out
    return set()
