"""The SOC side's configuration pieces; the loader itself is shared with the agent.

`load_config`, `ConfigError` and `KafkaConfig` live in `collectors.configfile` (one home for both
sides); see there how a YAML file and SOCPIPE_* environment variables become a config dataclass.
"""

from __future__ import annotations

import dataclasses

from collectors.configfile import ENV_PREFIX, ConfigError, KafkaConfig, check_kafka_security, is_loopback, load_config

__all__ = [
    "ENV_PREFIX",
    "ConfigError",
    "ElasticsearchConfig",
    "KafkaConfig",
    "check_kafka_security",
    "is_loopback",
    "load_config",
]


@dataclasses.dataclass
class ElasticsearchConfig:
    url: str = "http://127.0.0.1:9200"
    username: str = ""
    password: str = ""
    api_key: str = ""
    ca_certs: str = ""
    index_prefix: str = "socpipe"
    request_timeout_s: float = 10.0
    verify_certs: bool = True
    alerts_retention_days: int = 365  # ILM delete phase (where the server has ILM)
    events_retention_days: int = 30
    alerts_refresh_interval: str = "200ms"  # alerts must be searchable within a second of the event (cheap: few alerts)
    index_events: bool = False  # also index normalised events (own daily indices) for pivoting
    bulk_chunk_docs: int = 1000
    bulk_max_retries: int = 3  # in-call retries on 429/5xx before the docs go back to the caller

    def check(self, prefix: str = "es.") -> None:
        """What the client would refuse with a ValueError traceback at start, as a ConfigError naming the key."""
        if self.ca_certs and not self.url.lower().startswith("https://"):
            scheme = self.url.split("://", 1)[0] + "://" if "://" in self.url else "without a scheme"
            raise ConfigError(
                f"{prefix}ca_certs: set, but {prefix}url is {scheme}, not https:// "
                f"(a CA certificate is for TLS: use https://, or unset {prefix}ca_certs)"
            )
