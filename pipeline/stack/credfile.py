"""The local stack's credential files (`<state>/elasticsearch-credentials.json`,
`<state>/kafka/soc-credentials.json`): a JSON object, written once with mode 0600, read at every command.

The servers must always end up holding the passwords these files hold (an operator who deletes a file
gets new passwords, which `stack up --secure` then applies). What a server was last given is recorded
as a `digest` per user (a salted scrypt, never the password itself) beside the server's state; `stale`
says which users need their password applied again."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.stack.plan import StackError

__all__ = ["digest", "entry", "load", "load_applied", "matches", "save", "save_applied", "stale"]

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


# The digest of an applied credential: scrypt (RFC 7914) of the username and password with a random salt,
# recorded in the PHC string format `$scrypt$ln=14,r=8,p=1$<salt>$<key>` (unpadded base64), so the
# parameters travel with each record. The generated passwords (192 random bits) need no slow hash, but an
# operator may put a password of their own in a credential file, and a plain SHA-256 of that is cheap to
# guess from the record. N=2**14, r=8, p=1 are scrypt's interactive-login parameters (16 MiB, ~45 ms of
# CPU here per check; `stack up --secure` checks five): more than what the servers keep of the same
# passwords beside these records (the file realm's `users`: bcrypt, cost 10; the broker's SCRAM-SHA-512
# keys: 8192 iterations), so the records are not the weaker copy. A record of earlier versions (a
# SHA-256 hex digest) or of any other shape matches nothing: the password is applied again (the same
# one; the servers do not mind) and recorded in this form.
SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P = 14, 8, 1
_SALT_BYTES, _KEY_BYTES = 16, 32
_MAX_SCRYPT_BYTES = 256 << 20  # a record asking for more memory (hand-edited, damaged) matches nothing


def digest(username: str, password: str) -> str:
    """What is recorded of a credential applied to a server (never the password): a salted scrypt of
    the username and password, with its parameters (see above)."""
    salt = os.urandom(_SALT_BYTES)
    key = _scrypt(username, password, salt, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P)
    return f"$scrypt$ln={SCRYPT_LOG2_N},r={SCRYPT_R},p={SCRYPT_P}${_b64(salt)}${_b64(key)}"


def matches(record: str, username: str, password: str) -> bool:
    """Whether `record` (from `digest`) is of this username and password. False for a record of any other
    form: one of an earlier version (a SHA-256), a damaged or cut one, parameters past the memory bound."""
    parts = record.split("$")
    if len(parts) != 5 or parts[0] or parts[1] != "scrypt":
        return False
    try:
        params = dict(kv.split("=", 1) for kv in parts[2].split(","))
        log2_n, r, p = int(params.pop("ln")), int(params.pop("r")), int(params.pop("p"))
        salt, key = _unb64(parts[3]), _unb64(parts[4])
    except (KeyError, ValueError):
        return False
    if (
        params
        or not (_SALT_BYTES <= len(salt) <= 64 and 1 <= log2_n <= 30 and 1 <= r <= 32 and 1 <= p <= 16)
        or len(key) != _KEY_BYTES
    ):
        return False
    if 128 * r * ((1 << log2_n) + p + 2) > _MAX_SCRYPT_BYTES:
        return False
    return hmac.compare_digest(_scrypt(username, password, salt, log2_n, r, p), key)


def _scrypt(username: str, password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    secret = f"socpipe-stack-credential\0{username}\0{password}".encode()
    mem = 128 * r * ((1 << log2_n) + p + 2) + (1 << 20)
    return hashlib.scrypt(secret, salt=salt, n=1 << log2_n, r=r, p=p, maxmem=mem, dklen=_KEY_BYTES)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    if not text or len(text) % 4 == 1:
        raise ValueError("not unpadded base64")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def stale(applied: Mapping[str, str], wanted: Mapping[str, str]) -> list[str]:
    """The users (keys of `wanted`: username -> password) whose password the server does not hold
    according to `applied` (username -> `digest` of what was last applied): to be applied again."""
    return [name for name, password in wanted.items() if not matches(applied.get(name, ""), name, password)]


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
