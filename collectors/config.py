"""The agent's configuration: one YAML file (`config/agent.yaml` documents every key and default).

Identity (agency id, agent id, secret, Kafka credentials) is NOT configuration: the SOC assigns it at
enrolment and it lives in the state directory (see collectors.identity).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collectors.configfile import (
    ENV_PREFIX,
    KAFKA_PROTOCOLS,
    ConfigError,
    KafkaConfig,
    check_kafka_security,
    is_loopback,
    load_config,
)
from collectors.wire import DEFAULT_TIMEZONE, HEARTBEAT_TOPIC, MAX_BATCH_LINES, RAW_TOPIC

COMPRESSED_SUFFIXES = [".gz", ".bz2", ".xz", ".zst", ".zip", ".lz4", ".Z", ".7z"]


@dataclass
class FileInputConfig:
    paths: list[str] = field(default_factory=list)  # files or globs; each matching file is one source
    exclude: list[str] = field(default_factory=list)  # globs never read (compressed files always skipped)
    dataset: str = ""  # hint for the central parser, e.g. "system.auth"; "" = detected per line
    start_position: str = "beginning"  # beginning | end: where a file first seen at start is read from
    # How rotated copies of a followed file are named, to finish a file rotated while read or while the
    # agent was down. "{path}" is the followed file's path.
    rotated: list[str] = field(default_factory=lambda: ["{path}.*", "{path}-*"])
    # A followed file (or rotated copy) that is a symlink is refused unless set: a link planted in a log
    # directory must not make the agent ship what it points at.
    allow_symlinks: bool = False


@dataclass
class SyslogInputConfig:
    protocol: str = "udp"  # udp | tcp (tcp accepts RFC 6587 octet counting and newline framing)
    host: str = "127.0.0.1"
    port: int = 5514
    dataset: str = ""
    tls_certfile: str = ""  # tcp only: serve TLS with this certificate chain (PEM) ...
    tls_keyfile: str = ""  # ... and key
    max_connections: int = 256


@dataclass
class JournaldInputConfig:
    enabled: bool = False
    units: list[str] = field(default_factory=list)  # empty = the whole journal
    dataset: str = "journald"
    journalctl: str = "journalctl"  # program to run (`journalctl -o json --follow`)


@dataclass
class SpoolConfig:
    max_bytes: int = 512 * 1024 * 1024  # when full, the agent stops reading (files keep their data)
    segment_bytes: int = 16 * 1024 * 1024
    fsync: str = "interval"  # always | interval | never
    fsync_interval_s: float = 1.0


@dataclass
class BatchConfig:
    max_lines: int = 2000  # lines per Kafka record (one LineBatch of one source)
    max_bytes: int = 512 * 1024  # encoded size per record (stay under the broker's 1 MB limit)
    linger_s: float = 0.2  # ship a partial batch after this long


@dataclass
class FloodConfig:
    max_line_bytes: int = 64 * 1024  # longer lines are truncated and flagged "truncated"
    rate_lines_per_s: float = 0.0  # per source; 0 = unlimited. Files over it are read slower;
    burst_lines: int = 0  # listener lines over it are still spooled and counted as overflow
    partial_line_timeout_s: float = 5.0  # a last line without newline is shipped after this long


@dataclass
class MetricsConfig:
    enabled: bool = False  # off by default on agency hosts
    host: str = "127.0.0.1"  # localhost only unless you mean it
    port: int = 9466


@dataclass
class AgentConfig:
    state_dir: str = "/var/lib/socpipe-agent"  # identity.json, checkpoints, spool
    identity_file: str = ""  # "" = <state_dir>/identity.json (written by `socpipe-agent enroll`)
    host: str = ""  # host name reported on every batch; "" = this machine's name
    timezone: str = DEFAULT_TIMEZONE  # of the timestamps inside the logs (they rarely say)
    topic: str = RAW_TOPIC
    heartbeat_topic: str = HEARTBEAT_TOPIC
    heartbeat_interval_s: float = 15.0
    poll_interval_s: float = 0.25  # how often files are checked for new data and rotation
    close_inactive_s: float = 300.0  # a rotated/deleted file is closed after this long without data
    fingerprint_bytes: int = 1024  # file identity = hash of (up to) this many first bytes
    allow_plaintext_remote: bool = False  # PLAINTEXT/SASL_PLAINTEXT to a non-local broker is refused
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    files: list[FileInputConfig] = field(default_factory=list)
    syslog: list[SyslogInputConfig] = field(default_factory=list)
    journald: JournaldInputConfig = field(default_factory=JournaldInputConfig)
    spool: SpoolConfig = field(default_factory=SpoolConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    flood: FloodConfig = field(default_factory=FloodConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)

    def config_hash(self) -> str:
        """Reported in heartbeats so the SOC sees which agents run which config (secrets excluded)."""
        d = dataclasses.asdict(self)
        d["kafka"] = {k: v for k, v in d["kafka"].items() if "password" not in k}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def identity_path(self) -> Path:
        return Path(self.identity_file) if self.identity_file else Path(self.state_dir) / "identity.json"


def load_agent_config(path: str | Path | None, env: dict[str, str] | None = None) -> AgentConfig:
    config = load_config(AgentConfig, path, env)
    validate(config)
    return config


def validate(c: AgentConfig) -> None:
    """Semantic checks load_config cannot do; every error names its key."""
    if not c.state_dir:
        raise ConfigError("state_dir: must not be empty")
    for name in ("heartbeat_interval_s", "poll_interval_s", "close_inactive_s"):
        if getattr(c, name) <= 0:
            raise ConfigError(f"{name}: must be > 0")
    if not 16 <= c.fingerprint_bytes <= 1 << 20:
        raise ConfigError("fingerprint_bytes: must be between 16 and 1048576")
    for i, f in enumerate(c.files):
        if not f.paths:
            raise ConfigError(f"files[{i}].paths: at least one path or glob is required")
        if f.start_position not in ("beginning", "end"):
            raise ConfigError(f"files[{i}].start_position: must be 'beginning' or 'end', got {f.start_position!r}")
        for j, p in enumerate(f.paths):
            if _inside(p, c.state_dir) or _inside(p, c.identity_path):
                raise ConfigError(
                    f"files[{i}].paths[{j}]: {p} is inside the agent's state ({c.state_dir}); "
                    "the agent never reads its own state or identity (it would ship its secret)"
                )
        for j, r in enumerate(f.rotated):
            if "{path}" not in r:
                raise ConfigError(f"files[{i}].rotated[{j}]: must contain '{{path}}'")
    seen = set()
    for i, s in enumerate(c.syslog):
        if s.protocol not in ("udp", "tcp"):
            raise ConfigError(f"syslog[{i}].protocol: must be 'udp' or 'tcp', got {s.protocol!r}")
        if not 0 < s.port < 65536:
            raise ConfigError(f"syslog[{i}].port: must be 1..65535")
        if bool(s.tls_certfile) != bool(s.tls_keyfile):
            raise ConfigError(f"syslog[{i}].tls_keyfile: tls_certfile and tls_keyfile go together")
        if s.tls_certfile and s.protocol != "tcp":
            raise ConfigError(f"syslog[{i}].tls_certfile: TLS needs protocol tcp")
        if (s.protocol, s.port) in seen:
            raise ConfigError(f"syslog[{i}].port: {s.protocol} port {s.port} is configured twice")
        seen.add((s.protocol, s.port))
    if c.spool.fsync not in ("always", "interval", "never"):
        raise ConfigError(f"spool.fsync: must be always, interval or never, got {c.spool.fsync!r}")
    if c.spool.max_bytes < 2 * c.spool.segment_bytes:
        raise ConfigError("spool.max_bytes: must be at least twice spool.segment_bytes")
    if c.spool.segment_bytes < 64 * 1024:
        raise ConfigError("spool.segment_bytes: must be at least 65536")
    if not 1 <= c.batch.max_lines <= MAX_BATCH_LINES:
        raise ConfigError(f"batch.max_lines: must be 1..{MAX_BATCH_LINES}")
    if not 1024 <= c.batch.max_bytes <= 900 * 1024:
        raise ConfigError("batch.max_bytes: must be 1024..921600 (Kafka's default record limit is 1 MB)")
    if c.flood.max_line_bytes < 256 or c.flood.max_line_bytes > c.batch.max_bytes // 2:
        raise ConfigError("flood.max_line_bytes: must be >= 256 and <= batch.max_bytes / 2")
    if c.flood.rate_lines_per_s < 0:
        raise ConfigError("flood.rate_lines_per_s: must be >= 0")
    # metrics.host beyond loopback is allowed, but only on purpose: the endpoint reveals file paths and rates.
    # Kafka transport is checked on the EFFECTIVE settings (environment > identity.json > this file):
    # see effective_kafka and check_kafka_transport, called before the agent starts.
    if c.kafka.security_protocol not in KAFKA_PROTOCOLS:
        raise ConfigError(f"kafka.security_protocol: must be one of {', '.join(KAFKA_PROTOCOLS)}")


def effective_kafka(config: KafkaConfig, issued: Any, env: Mapping[str, str]) -> KafkaConfig:
    """The Kafka settings the agent uses. Precedence, highest first: the environment
    (SOCPIPE_KAFKA_<KEY>), what the SOC issued at enrolment (identity.json `kafka`), agent.yaml, the
    defaults. `config` already holds agent.yaml with the environment applied; `issued` is the
    identity's KafkaCredentials (empty strings = not issued)."""
    changes = {}
    for name in dataclasses.asdict(issued):
        value = getattr(issued, name)
        if not value or not hasattr(config, name):
            continue
        if f"{ENV_PREFIX}KAFKA_{name.upper()}" in env:
            continue  # set on purpose on this host: wins over identity.json
        changes[name] = value
    return dataclasses.replace(config, **changes)


def own_state_paths(c: AgentConfig) -> tuple[str, ...]:
    """Real paths the file inputs must never read: the state dir (spool, checkpoints, identity)."""
    return tuple(sorted({os.path.realpath(c.state_dir), os.path.realpath(c.identity_path)}))


def _inside(path: str, root: str | Path) -> bool:
    p, r = os.path.realpath(path), os.path.realpath(root)
    return p == r or p.startswith(r.rstrip("/") + "/")


def check_kafka_transport(k: KafkaConfig, allow_plaintext_remote: bool) -> None:
    check_kafka_security(k.security_protocol, k.sasl_mechanism)
    if "SSL" not in k.security_protocol and not allow_plaintext_remote:
        for server in k.bootstrap.split(","):
            host = server.rsplit(":", 1)[0].strip("[]")
            if not is_loopback(host):
                raise ConfigError(
                    f"kafka.security_protocol: {k.security_protocol} to non-local broker {server} is "
                    "refused; use SSL or SASL_SSL (or set allow_plaintext_remote: true)"
                )
