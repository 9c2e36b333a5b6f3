"""Per-analyst API tokens for the triage API. Only SHA-256 digests are stored, never the tokens.

The tokens file (YAML, mode 0600):
    analysts:
      - {name: an, role: analyst, token_sha256: 3f1c...}
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.config import ConfigError
from pipeline.elastic.workflow import ROLES


@dataclass(frozen=True, slots=True)
class Analyst:
    name: str
    role: str  # read-only | analyst | lead


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    def __init__(self, by_digest: dict[str, Analyst]):
        self._by_digest = dict(by_digest)

    def authenticate(self, token: str | None) -> Analyst | None:
        """The analyst a bearer token belongs to, or None (tokens are random: a digest lookup is safe)."""
        if not token or len(token) > 512:
            return None
        return self._by_digest.get(digest(token))

    def __len__(self) -> int:
        return len(self._by_digest)

    @classmethod
    def load(cls, path: str | Path) -> TokenStore:
        return cls(_read(Path(path)))


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
    entries.append({"name": name, "role": role, "token_sha256": digest(token)})
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump({"analysts": entries}, fh, sort_keys=False)
    os.replace(tmp, path)
    return token
