"""What a web request is made of, as the request profiles see it (pure): method, endpoint (path with
numeric segments generalised), parameters (query string then form body, percent-decoded one character
per byte), and the shape of a value (letters -> A/a, digits -> 9, the rest kept) with its 3-grams."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_plus

MAX_PARAMS = 64
MAX_VALUE = 4096
GRAM_CHARS = 256  # shape 3-grams are taken from the first 256 characters of a value
_PATH_NUMBER = re.compile(r"^\d+$")


def _shape_table() -> dict[int, int]:
    table: dict[int, int] = {}
    for c in range(256):
        ch = chr(c)
        if ch.isdigit():
            table[c] = ord("9")
        elif ch.isalpha():
            table[c] = ord("A") if ch.isupper() else ord("a")
    return table


SHAPE = _shape_table()


def shape(value: str) -> str:
    return value[:GRAM_CHARS].translate(SHAPE)


def grams(value: str) -> set[str]:
    s = shape(value)
    return {s[i : i + 3] for i in range(len(s) - 2)} if len(s) >= 3 else {s} if s else set()


def endpoint_of(path: str) -> str:
    """Numeric path segments generalised (`/item/42` -> `/item/{n}`), so ids do not split endpoints."""
    if "/" not in path:
        return path
    parts = path[:1024].split("/")
    return "/".join("{n}" if _PATH_NUMBER.match(p) else p for p in parts)


def decode(text: str) -> str:
    """Percent-decoded, one character per byte (latin-1). Characters above U+00FF (a log line that
    carried raw UTF-8) become their UTF-8 bytes too, so alphabets and shapes stay within 256 symbols."""
    if "%" not in text:  # the common case, without urllib's machinery
        value = text.replace("+", " ")
    else:
        value = unquote_plus(text, encoding="latin-1")
    if not value.isascii() and max(value) > "\xff":
        value = value.encode("utf-8", "surrogatepass").decode("latin-1")
    return value


def parse_params(query: str, body: str = "") -> list[tuple[str, str]]:
    """(name, decoded value) of query then form-body parameters, at most MAX_PARAMS."""
    out: list[tuple[str, str]] = []
    for part in (query, body):
        if not part:
            continue
        for item in part.split("&"):
            if not item:
                continue
            name, _, value = item.partition("=")
            name = decode(name[:128])
            # numeric names are cache-busters (`?x=1&1644219144817`): one name, like `{n}` path segments
            out.append(("{n}" if name.isdigit() else name, decode(value[:MAX_VALUE])))
            if len(out) >= MAX_PARAMS:
                return out
    return out


def request_parts(event: dict[str, Any]) -> tuple[str, str, list[tuple[str, str]]]:
    """(method, path, parameters) of a flat ECS web event; form bodies only (not JSON/XML)."""
    path = event.get("url.path")
    query = event.get("url.query")
    if path is None:
        original = str(event.get("url.original") or "")
        path, _, query = original.partition("?")
    body = event.get("http.request.body.content")
    if not isinstance(body, str) or body[:1] in ("{", "[", "<"):
        body = ""
    return str(event.get("http.request.method") or ""), str(path or ""), parse_params(str(query or ""), body)
