"""Per-analyst API tokens for the triage API. Only SHA-256 digests are stored, never the tokens.

The tokens file (YAML, mode 0600):
    analysts:
      - {name: an, role: analyst, token_sha256: 3f1c...}
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import ConfigError
from pipeline.tokens import token_digest
from pipeline.triage.workflow import ROLES

log = logging.getLogger("socpipe.triage_auth")


@dataclass(frozen=True, slots=True)
class Analyst:
    name: str
    role: str  # read-only | analyst | lead


class TokenStore:
    def __init__(self, by_digest: dict[str, Analyst]):
        self._by_digest = dict(by_digest)

    def authenticate(self, token: str | None) -> Analyst | None:
        """The analyst a bearer token belongs to, or None (tokens are random: a digest lookup is safe)."""
        if not token or len(token) > 512:
            return None
        return self._by_digest.get(token_digest(token))

    def __len__(self) -> int:
        return len(self._by_digest)

    @classmethod
    def load(cls, path: str | Path) -> TokenStore:
        return cls(_read(Path(path)))


class ReloadingTokenStore(TokenStore):
    """The tokens file, re-read when it changes (checked at most every `check_every_s`): a new,
    replaced or revoked token takes effect without a restart. A file that fails to parse keeps the
    last good set (the CLI writes atomically, so that means a hand edit went wrong) and is logged."""

    def __init__(self, path: str | Path, check_every_s: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.path = Path(path)
        self.check_every_s = check_every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp = self._file_stamp()
        super().__init__(_read(self.path))
        self._next_check = clock() + check_every_s
        self.reloads = 0
        self.reload_errors = 0

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def reload_if_changed(self, force: bool = False) -> bool:
        with self._lock:
            stamp = self._file_stamp()
            if stamp == self._stamp and not force:
                return False
            try:
                fresh = _read(self.path)
            except ConfigError as exc:
                self.reload_errors += 1
                self._stamp = stamp  # do not re-parse the same broken file on every request
                log.error("triage_auth tokens_reload_failed kept=%d error=%s", len(self._by_digest), exc)
                return False
            before = {a.name for a in self._by_digest.values()}
            self._by_digest, self._stamp = fresh, stamp
            self.reloads += 1
        after = {a.name for a in fresh.values()}
        log.info(
            "triage_auth tokens_reloaded analysts=%d added=%s removed=%s",
            len(fresh),
            ",".join(sorted(after - before)) or "-",
            ",".join(sorted(before - after)) or "-",
        )
        return True

    def authenticate(self, token: str | None) -> Analyst | None:
        now = self._clock()
        if now >= self._next_check:
            self._next_check = now + self.check_every_s
            self.reload_if_changed()
        return super().authenticate(token)


def _read(path: Path) -> dict[str, Analyst]:
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read tokens file: {exc}") from exc
    out: dict[str, Analyst] = {}
    for i, entry in enumerate(data.get("analysts") or []):
        where = f"{path}: analysts[{i}]"
        if not isinstance(entry, dict) or not entry.get("name") or not entry.get("token_sha256"):
            raise ConfigError(f"{where}: needs name and token_sha256")
        if entry.get("role") not in ROLES:
            raise ConfigError(f"{where}.role: one of {', '.join(ROLES)}, got {entry.get('role')!r}")
        out[str(entry["token_sha256"]).lower()] = Analyst(str(entry["name"]), entry["role"])
    return out


def add_analyst(path: str | Path, name: str, role: str) -> str:
    """Create (or replace) an analyst's token; returns the token, which is shown once and never stored."""
    if role not in ROLES:
        raise ConfigError(f"role: one of {', '.join(ROLES)}, got {role!r}")
    path = Path(path)
    entries = [{"name": a.name, "role": a.role, "token_sha256": d} for d, a in _read(path).items() if a.name != name]
    token = secrets.token_urlsafe(32)
    entries.append({"name": name, "role": role, "token_sha256": token_digest(token)})
    _write(path, entries)
    return token


def revoke_analyst(path: str | Path, name: str) -> bool:
    """Remove NAME's token (a running server drops it within its reload check); False if absent."""
    path = Path(path)
    current = _read(path)
    entries = [{"name": a.name, "role": a.role, "token_sha256": d} for d, a in current.items() if a.name != name]
    if len(entries) == len(current):
        return False
    _write(path, entries)
    return True


def _write(path: Path, entries: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump({"analysts": entries}, fh, sort_keys=False)
    os.replace(tmp, path)
