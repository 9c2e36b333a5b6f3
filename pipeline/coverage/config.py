"""Configuration of the coverage service and the enrolment server (`config/coverage.yaml`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from collectors.wire import HEARTBEAT_TOPIC, RAW_TOPIC
from pipeline.config import KafkaConfig
from pipeline.coverage.state import Thresholds


@dataclass
class KafkaHandout:
    """Kafka settings handed to agents at enrolment (what they must use, seen from agency hosts)."""

    bootstrap: str = "127.0.0.1:9092"
    security_protocol: str = "PLAINTEXT"
    sasl_username: str = ""
    sasl_password: str = ""


@dataclass
class EnrolmentConfig:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8765
    tls_certfile: str = ""  # both set: the enrolment server speaks HTTPS (tokens never cross in clear)
    tls_keyfile: str = ""
    allow_plaintext_remote: bool = False  # plain HTTP on a non-loopback address is refused unless true
    handshake_timeout_s: float = 10.0  # a client that does not finish TLS in time is dropped (its own thread)
    request_timeout_s: float = 10.0  # socket timeout while reading a request or writing the answer
    max_connections: int = 32  # connections served at once; more are closed at once (no thread each)
    max_failures: int = 5  # refused enrolments per client address per failure_window_s, then 429
    failure_window_s: float = 600.0
    kafka: KafkaHandout = field(default_factory=KafkaHandout)

    def validate(self) -> EnrolmentConfig:
        from pipeline.config import ConfigError

        if bool(self.tls_certfile) != bool(self.tls_keyfile):
            raise ConfigError("enrolment.tls_certfile, enrolment.tls_keyfile: set both (HTTPS) or neither")
        loopback = self.listen_host in ("127.0.0.1", "::1", "localhost")
        if not self.tls_certfile and not loopback and not self.allow_plaintext_remote:
            raise ConfigError(
                f"enrolment.tls_certfile: required to listen on {self.listen_host} (tokens and agent secrets would"
                " cross the network in clear); set enrolment.allow_plaintext_remote: true only behind a TLS proxy"
            )
        for key in ("handshake_timeout_s", "request_timeout_s", "failure_window_s"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"enrolment.{key}: must be positive")
        if self.max_connections < 1:
            raise ConfigError("enrolment.max_connections: must be at least 1")
        if self.max_failures < 1:
            raise ConfigError("enrolment.max_failures: must be at least 1")
        return self


@dataclass
class CoverageConfig:
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    heartbeat_topic: str = HEARTBEAT_TOPIC
    raw_topic: str = RAW_TOPIC
    inventory: str = "config/inventory.yaml"
    registry: str = ".socpipe/enrolment/registry.db"
    state_dir: str = ".socpipe/coverage"
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 9465
    heartbeat_interval_s: float = 15.0
    missed_heartbeats: int = 3
    source_silent_after_s: float = 900.0
    spooling_after_s: float = 120.0
    tick_s: float = 1.0  # evaluation runs on the wall clock at this period, messages or not
    history_interval_s: float = 60.0
    enrolment: EnrolmentConfig = field(default_factory=EnrolmentConfig)

    def thresholds(self) -> Thresholds:
        return Thresholds(
            heartbeat_interval_s=self.heartbeat_interval_s,
            missed_heartbeats=self.missed_heartbeats,
            source_silent_after_s=self.source_silent_after_s,
            spooling_after_s=self.spooling_after_s,
        )
