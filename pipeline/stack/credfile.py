"""The local stack's credential files (`<state>/elasticsearch-credentials.json`,
`<state>/kafka/soc-credentials.json`): a JSON object, written once with mode 0600, read at every command.

The servers must always end up holding the passwords these files hold (an operator who deletes a file
gets new passwords, which `stack up --secure` then applies). What a server was last given is recorded
as a `digest` per user (never the password itself) beside the server's state; `stale` says which users
need their password applied again."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.stack.plan import StackError

__all__ = ["digest", "entry", "load", "load_applied", "save", "save_applied", "stale"]

_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


def load(path: Path) -> dict[str, Any] | None:
    """The JSON object the file holds; None when there is no file or it does not parse (a write cut
    short: the caller creates the credentials anew). StackError naming the file when it holds JSON that
    is not an object (a list, a string, null ...): someone edited it, and new passwords in its place would
    not be those the servers already hold."""
    try:
        text = path.read_bytes()  # bytes that are not UTF-8 make json.loads raise ValueError: "does not parse"
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
    tmp.unlink(missing_ok=True)  # one left there keeps its mode through O_CREAT, and a symlink would be followed
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, json.dumps(data, indent=1).encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def entry(path: Path, data: dict[str, Any], key: str | None, user: str) -> dict[str, str] | None:
    """The credential `{"username": user, "password": ...}` at `data[key]` (`data` itself when `key` is
    None); None when it is missing (the caller makes a new one). StackError naming the file and the entry
    when it is there but of another shape (a password that is not a non-empty string, another username)."""
    held = data if key is None else data.get(key)
    if held is None or (key is None and not held):
        return None
    where = f"{path}: " + ("the credential" if key is None else f"entry {key!r}")
    if not isinstance(held, dict):
        kind = _KINDS.get(type(held), type(held).__name__)
        raise StackError(f"{where} is {kind}, not an object with username and password{_FIX}")
    name, password = held.get("username"), held.get("password")
    wrong = []
    if not isinstance(password, str) or not password:
        wrong.append(f"password must be a non-empty string, not {_what(password, 'password')}")
    elif not password.isprintable():  # a newline ends the users tool's prompt; a lone surrogate cannot be encoded
        wrong.append("password must be printable characters (no newline, control character or lone surrogate)")
    if name != user:
        wrong.append(f"username must be {user!r}, not {_what(name, 'username')}")
    if wrong:
        raise StackError(f"{where}: {', '.join(wrong)}{_FIX}")
    return {"username": user, "password": str(password)}


def _what(value: object, key: str) -> str:
    """A field's wrong value, said without repeating a password."""
    if value is None:
        return "missing"
    if key == "username" and isinstance(value, str):
        return repr(value)
    return "an empty string" if value == "" else _KINDS.get(type(value), type(value).__name__)


_FIX = "; fix that entry, or delete it (or the file) and run `socpipe stack up --secure` for new passwords"


def digest(username: str, password: str) -> str:
    """What is recorded of a credential applied to a server: a salted-by-name SHA-256, not the password
    (the passwords socpipe makes are 192 random bits, so the digest reveals nothing usable)."""
    return hashlib.sha256(f"socpipe-stack-credential\0{username}\0{password}".encode()).hexdigest()


def stale(applied: Mapping[str, str], wanted: Mapping[str, str]) -> list[str]:
    """The users (keys of `wanted`: username -> password) whose password the server does not hold
    according to `applied` (username -> digest of what was last applied): to be applied again."""
    return [name for name, password in wanted.items() if applied.get(name) != digest(name, password)]


def load_applied(path: Path) -> dict[str, str]:
    """username -> digest last applied to a server; empty when never recorded or unreadable (then
    everything is applied again, which is always safe)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def save_applied(path: Path, applied: Mapping[str, str]) -> None:
    save(path, dict(applied))
