"""The local stack's credential files (`<state>/elasticsearch-credentials.json`,
`<state>/kafka/soc-credentials.json`): a JSON object, written once with mode 0600, read at every command."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pipeline.stack.plan import StackError

__all__ = ["load", "save"]

_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


def load(path: Path) -> dict[str, Any] | None:
    """The JSON object the file holds; None when there is no file or it does not parse (a write cut
    short: the caller creates the credentials anew). StackError naming the file when it holds JSON that
    is not an object (a list, a string, null ...): someone edited it, and new passwords in its place would
    not be those the servers already hold."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StackError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        kind = "null" if data is None else _KINDS.get(type(data), type(data).__name__)
        raise StackError(
            f"{path}: holds JSON {kind}, not the object of credentials socpipe wrote; put that object back "
            "(the servers know its passwords), or start the stack over from an empty state directory"
        )
    return data


def save(path: Path, data: dict[str, Any]) -> None:
    """Write `data` with mode 0600, atomically (a crash leaves the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps(data, indent=1).encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)
