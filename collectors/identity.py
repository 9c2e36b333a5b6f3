"""Who the agent is: assigned by the SOC at enrolment, stored in the state dir with 0600 permissions.

The agency id is never chosen by the agent: `enroll` trades a per-agency token for it. The file also
carries the Kafka credentials the SOC issued, so the config file holds no secrets.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from collectors.configfile import ConfigError


@dataclass(frozen=True)
class KafkaCredentials:
    """What the SOC issued for Kafka: with SASL, this agent's own user (its agent id) and password,
    allowed only to write its records and heartbeats; the CA that signed the broker's certificate."""

    bootstrap: str = ""
    security_protocol: str = ""
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: str = ""
    ssl_ca_pem: str = ""  # kept in identity.json; written to `kafka-ca.pem` beside it for the client
    ssl_cafile: str = ""  # set by load_identity when ssl_ca_pem is present (not stored)


@dataclass(frozen=True)
class Identity:
    agency_id: str
    agent_id: str
    secret: str
    kafka: KafkaCredentials = field(default_factory=KafkaCredentials)

    def __repr__(self) -> str:  # never print the secret or password by accident
        return f"Identity(agency_id={self.agency_id!r}, agent_id={self.agent_id!r})"


class EnrolmentError(RuntimeError):
    pass


def save_identity(path: str | Path, identity: Identity) -> Path:
    """Write atomically with mode 0600 from the first byte (no window where others can read it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        data = asdict(identity)
        data["kafka"].pop("ssl_cafile", None)  # derived at load from ssl_ca_pem
        os.write(fd, json.dumps(data, indent=2).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


def load_identity(path: str | Path) -> Identity:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"identity_file: {path} does not exist; enrol first: socpipe-agent enroll --server URL --token-file FILE"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"identity_file: cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"identity_file: {path} must hold a JSON object")
    for key in ("agency_id", "agent_id", "secret"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ConfigError(f"identity_file: {path}: key {key!r} is missing or empty")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(f"identity_file: {path} is readable by others (mode {mode:o}); chmod 600 it")
    kafka = data.get("kafka") or {}
    if not isinstance(kafka, dict):
        raise ConfigError(f"identity_file: {path}: key 'kafka' must be an object")
    known = set(KafkaCredentials.__dataclass_fields__) - {"ssl_cafile"}
    creds = KafkaCredentials(**{k: str(v) for k, v in kafka.items() if k in known})
    if creds.ssl_ca_pem:
        creds = replace(creds, ssl_cafile=str(_ca_file(path, creds.ssl_ca_pem)))
    return Identity(data["agency_id"], data["agent_id"], data["secret"], creds)


def _ca_file(identity_path: Path, pem: str) -> Path:
    """The issued CA as a file for the Kafka client (public data), rewritten only when it changed."""
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise ConfigError(f"identity_file: {identity_path}: kafka.ssl_ca_pem is not a PEM certificate")
    ca = identity_path.with_name("kafka-ca.pem")
    try:
        if not ca.is_symlink() and ca.is_file() and ca.read_text() == pem:
            return ca
        tmp = ca.with_name(ca.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        try:
            os.write(fd, pem.encode())
        finally:
            os.close(fd)
        os.replace(tmp, ca)
    except OSError as exc:
        raise ConfigError(f"identity_file: cannot write the Kafka CA beside it ({ca}): {exc.strerror}") from exc
    return ca


def enroll(server: str, token: str, state_dir: str | Path, **kwargs: Any) -> Identity:
    """See collectors.enrol.enroll (kept here for callers of the first API)."""
    from collectors.enrol import enroll as _enroll

    return _enroll(server, token, state_dir, **kwargs)
