"""`config/triage.yaml`: the triage server's role config (every key defaulted; SOCPIPE_* overrides,
e.g. SOCPIPE_SERVER_TLS_CERTFILE, SOCPIPE_ES_URL)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import ConfigError, ElasticsearchConfig, is_loopback, load_config
from pipeline.httpserve import ServeSettings


@dataclass
class TriageConfig:
    es: ElasticsearchConfig = field(default_factory=ElasticsearchConfig)
    server: ServeSettings = field(default_factory=lambda: ServeSettings(port=8088))
    tokens: str = ".socpipe/triage/tokens.yml"  # per-analyst tokens, SHA-256 digests only
    token_reload_s: float = 1.0  # the tokens file is re-checked this often: revocation needs no restart
    allow_plain_http: bool = False  # without TLS, listen only on loopback unless this is set

    def validate(self) -> None:
        self.server.validate("server.")
        self.es.check()
        if not self.token_reload_s > 0:
            raise ConfigError("token_reload_s: must be a positive number of seconds")
        if not self.server.tls_certfile and not self.allow_plain_http and not is_loopback(self.server.host):
            raise ConfigError(
                f"server.host: {self.server.host} is not loopback and no TLS is configured "
                "(set server.tls_certfile/tls_keyfile, or allow_plain_http: true behind a TLS proxy)"
            )
        for key in ("tls_certfile", "tls_keyfile"):
            path = getattr(self.server, key)
            if path and not Path(path).is_file():
                raise ConfigError(f"server.{key}: no such file: {path}")


def load_triage_config(path: str | None = None, env: dict[str, Any] | None = None) -> TriageConfig:
    cfg = load_config(TriageConfig, path, env)
    cfg.validate()
    return cfg
