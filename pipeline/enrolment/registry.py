"""Who may speak for which agency: enrolment tokens (stored hashed) and enrolled agents with secrets.

The agency id of an agent is fixed by the token it enrolled with, never by the agent. Coverage asks
`agent(agent_id)` for the secret that signs its heartbeats and the agency it belongs to. Agent
secrets are kept in clear because HMAC verification needs them: the database file is created 0600.
One sqlite file, shared by the enrolment server, the CLI and the coverage service (WAL mode).
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.tokens import token_digest

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
  token_id TEXT PRIMARY KEY, agency_id TEXT NOT NULL, token_sha256 TEXT NOT NULL UNIQUE,
  created_at REAL NOT NULL, revoked_at REAL,
  uses_left INTEGER NOT NULL DEFAULT 0, max_uses INTEGER NOT NULL DEFAULT 0, expires_at REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS agents (
  agent_id TEXT PRIMARY KEY, agency_id TEXT NOT NULL, host TEXT NOT NULL, secret TEXT NOT NULL,
  agent_version TEXT NOT NULL DEFAULT '', token_id TEXT, enrolled_at REAL NOT NULL, revoked_at REAL
);
CREATE INDEX IF NOT EXISTS agents_by_agency ON agents(agency_id);
"""


# Tokens made before tokens had limits get 0 uses left and expired: they are refused (issue new ones).
_MIGRATIONS = (
    "ALTER TABLE tokens ADD COLUMN uses_left INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE tokens ADD COLUMN max_uses INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE tokens ADD COLUMN expires_at REAL NOT NULL DEFAULT 0",
)

DEFAULT_TOKEN_TTL_S = 24 * 3600.0
MAX_TOKEN_USES = 10_000
MAX_TOKEN_TTL_S = 90 * 24 * 3600.0


class EnrolmentError(Exception):
    """A token was refused (the HTTP server answers 403 whatever the reason). `reason` is for the SOC's
    log only: unknown, revoked, expired, used_up; `token_id` names the token when it was found."""

    def __init__(self, message: str, reason: str = "unknown", token_id: str | None = None):
        super().__init__(message)
        self.reason, self.token_id = reason, token_id


@dataclass(frozen=True, slots=True)
class AgentRecord:
    agent_id: str
    agency_id: str
    host: str
    secret: str
    agent_version: str
    enrolled_at: float
    revoked: bool


@dataclass(frozen=True, slots=True)
class TokenRecord:
    token_id: str
    agency_id: str
    created_at: float
    revoked: bool
    uses_left: int = 0
    max_uses: int = 0
    expires_at: float = 0.0

    def state(self, now: float) -> str:
        if self.revoked:
            return "revoked"
        if self.uses_left <= 0:
            return "used_up"
        return "expired" if self.expires_at <= now else "active"


class Registry:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=10, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(tokens)")}
        for sql in _MIGRATIONS:
            if sql.split()[5] not in columns:
                self._db.execute(sql)

    def close(self) -> None:
        self._db.close()

    # tokens
    def create_token(self, agency_id: str, uses: int = 1, ttl_s: float = DEFAULT_TOKEN_TTL_S) -> tuple[str, str]:
        """A new enrolment token for the agency, good for `uses` enrolments within `ttl_s` ->
        (token_id, token). The token is shown once, kept hashed."""
        if not 1 <= uses <= MAX_TOKEN_USES:
            raise ValueError(f"uses: must be 1..{MAX_TOKEN_USES}")
        if not 0 < ttl_s <= MAX_TOKEN_TTL_S:
            raise ValueError(f"expiry: must be more than 0 and at most {MAX_TOKEN_TTL_S / 86400:.0f} days")
        token = "spt_" + secrets.token_urlsafe(24)
        token_id = secrets.token_hex(4)
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO tokens (token_id, agency_id, token_sha256, created_at, revoked_at, uses_left, max_uses,"
                " expires_at) VALUES (?,?,?,?,NULL,?,?,?)",
                (token_id, agency_id, token_digest(token), now, uses, uses, now + ttl_s),
            )
        return token_id, token

    def revoke_tokens(self, agency_id: str, token_id: str | None = None) -> int:
        """Revoke one token (by id) or every active token of the agency; returns how many."""
        sql = "UPDATE tokens SET revoked_at=? WHERE agency_id=? AND revoked_at IS NULL"
        args: tuple[float | str, ...] = (time.time(), agency_id)
        if token_id:
            sql += " AND token_id=?"
            args += (token_id,)
        with self._lock:
            return self._db.execute(sql, args).rowcount

    def tokens(self, agency_id: str | None = None) -> list[TokenRecord]:
        with self._lock:  # one connection shared by the server's threads, like every other query here
            rows = self._db.execute(
                "SELECT token_id, agency_id, created_at, revoked_at, uses_left, max_uses, expires_at FROM tokens"
                + (" WHERE agency_id=?" if agency_id else "")
                + " ORDER BY created_at",
                (agency_id,) if agency_id else (),
            ).fetchall()
        return [TokenRecord(r[0], r[1], r[2], r[3] is not None, r[4], r[5], r[6]) for r in rows]

    # agents
    def enroll(
        self,
        token: str,
        host: str,
        agent_version: str = "",
        agency_allowed: Callable[[str], bool] = lambda _agency_id: True,
    ) -> AgentRecord:
        """Exchange a valid token for a new agent identity; the agency comes from the token. The token's use
        is spent and the agent inserted in one transaction (other processes share the file; a crash in
        between loses neither); an expired, used-up or revoked token, or one whose agency `agency_allowed`
        refuses (not in the inventory), raises EnrolmentError."""
        h, now = token_digest(token), time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT token_id, agency_id, revoked_at, uses_left, expires_at FROM tokens WHERE token_sha256=?",
                    (h,),
                ).fetchone()
                reason = (
                    "unknown"
                    if row is None
                    else "revoked"
                    if row[2] is not None
                    else "used_up"
                    if row[3] <= 0
                    else "expired"
                    if row[4] <= now
                    else "agency_not_in_inventory"
                    if not agency_allowed(row[1])
                    else ""
                )
                rec = None
                if not reason:
                    self._db.execute("UPDATE tokens SET uses_left = uses_left - 1 WHERE token_id=?", (row[0],))
                    rec = _agent_record(row[1], host, agent_version)
                    self._insert_agent(rec, token_id=row[0])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        if rec is None:
            raise EnrolmentError(f"enrolment token refused: {reason}", reason, row[0] if row else None)
        return rec

    def enroll_direct(
        self, agency_id: str, host: str, agent_version: str = "", agent_id: str | None = None
    ) -> tuple[str, str]:
        """Enrol without a token (local demos, tests, migrations; `agent_id` keeps a migrated agent's id)
        -> (agent_id, secret)."""
        rec = _agent_record(agency_id, host, agent_version, agent_id)
        with self._lock:
            self._insert_agent(rec, token_id=None)
        return rec.agent_id, rec.secret

    def _insert_agent(self, rec: AgentRecord, token_id: str | None) -> None:
        """Caller holds the lock (and, for a token's enrolment, the transaction that spends its use)."""
        self._db.execute(
            "INSERT INTO agents VALUES (?,?,?,?,?,?,?,NULL)",
            (rec.agent_id, rec.agency_id, rec.host, rec.secret, rec.agent_version, token_id, rec.enrolled_at),
        )

    def undo_enrolment(self, agent_id: str) -> None:
        """An enrolment that could not be completed (its Kafka principal could not be made): the agent is
        revoked and the token gets its use back, so the agency can retry with the same token."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                changed = self._db.execute(
                    "UPDATE agents SET revoked_at=? WHERE agent_id=? AND revoked_at IS NULL", (time.time(), agent_id)
                ).rowcount
                if changed:
                    self._db.execute(
                        "UPDATE tokens SET uses_left = uses_left + 1 WHERE token_id="
                        "(SELECT token_id FROM agents WHERE agent_id=?)",
                        (agent_id,),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def revoke_agent(self, agent_id: str) -> bool:
        with self._lock:
            return (
                self._db.execute(
                    "UPDATE agents SET revoked_at=? WHERE agent_id=? AND revoked_at IS NULL", (time.time(), agent_id)
                ).rowcount
                > 0
            )

    def agent(self, agent_id: str) -> AgentRecord | None:
        with self._lock:
            r = self._db.execute(
                "SELECT agent_id, agency_id, host, secret, agent_version, enrolled_at, revoked_at "
                "FROM agents WHERE agent_id=?",
                (agent_id,),
            ).fetchone()
        return AgentRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6] is not None) if r else None

    def agents(self) -> list[AgentRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT agent_id, agency_id, host, secret, agent_version, enrolled_at, revoked_at "
                "FROM agents ORDER BY enrolled_at"
            ).fetchall()
        return [AgentRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6] is not None) for r in rows]

    def secret_of(self, agent_id: str) -> str | None:
        """The signing secret of an active agent, None if unknown or revoked."""
        rec = self.agent(agent_id)
        return rec.secret if rec and not rec.revoked else None


REGISTRY_REFRESH_S = 10.0  # how soon a revocation reaches the consumers that cache agents


class AgentCache:
    """Registry lookups at raw-traffic rate: a full reload every few seconds, one query per unknown id."""

    def __init__(self, registry: Registry, refresh_s: float = REGISTRY_REFRESH_S):
        self._registry = registry
        self._agents: dict[str, AgentRecord] = {}
        self._missing: set[str] = set()
        self._loaded = 0.0
        self._refresh_s = refresh_s

    def refresh(self, now: float, force: bool = False) -> None:
        if force or now - self._loaded >= self._refresh_s:
            self._agents = {a.agent_id: a for a in self._registry.agents()}
            self._missing.clear()
            self._loaded = now

    def __call__(self, agent_id: str) -> AgentRecord | None:
        rec = self._agents.get(agent_id)
        if rec is None and agent_id not in self._missing:
            rec = self._registry.agent(agent_id)
            if rec is None:
                if len(self._missing) < 10_000:  # forged ids must not grow memory without bound
                    self._missing.add(agent_id)
            else:
                self._agents[agent_id] = rec
        return rec


def _agent_record(agency_id: str, host: str, agent_version: str, agent_id: str | None = None) -> AgentRecord:
    """A new agent identity (its id and the secret that signs its heartbeats and records)."""
    return AgentRecord(
        agent_id=agent_id or "agt-" + secrets.token_hex(6),
        agency_id=agency_id,
        host=host[:255],
        secret=secrets.token_urlsafe(32),
        agent_version=agent_version[:64],
        enrolled_at=time.time(),
        revoked=False,
    )
