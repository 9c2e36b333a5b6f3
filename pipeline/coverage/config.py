"""Configuration of the coverage service and the enrolment server (`config/coverage.yaml`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from collectors.wire import HEARTBEAT_TOPIC, RAW_TOPIC
from pipeline.config import KafkaConfig, check_kafka_security, is_loopback
from pipeline.coverage.state import Thresholds
from pipeline.httpserve import ServeSettings


@dataclass
class KafkaHandout:
    """Kafka settings handed to agents at enrolment (what they must use, seen from agency hosts)."""

    bootstrap: str = ""  # empty: the SOC's own kafka.bootstrap (set it when agencies reach Kafka by another name)
    # SASL_SSL / SASL_PLAINTEXT: every agent gets its own SCRAM principal and ACLs at enrolment, made
    # with the SOC's `kafka` credentials above (see pipeline.enrolment.kafka_access). No shared password.
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    ca_file: str = ""  # PEM of the CA that signed the broker's certificate, handed to agents (SSL protocols)

    @property
    def per_agent_credentials(self) -> bool:
        return "SASL" in self.security_protocol


@dataclass
class EnrolmentConfig:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8765
    tls_certfile: str = ""  # both set: the enrolment server speaks HTTPS (tokens never cross in clear)
    tls_keyfile: str = ""
    allow_plain_http: bool = False  # without TLS, listen only on loopback unless this is set (TLS proxy)
    workers: int = 8  # enrolments served at once (pipeline.httpserve: bounded pool, handshake in the worker)
    max_queued: int = 32  # accepted connections waiting for a worker; beyond: closed at once
    idle_timeout_s: float = 10.0  # per socket operation, the TLS handshake included
    request_deadline_s: float = 30.0  # a whole connection, from accept to close
    max_failures: int = 5  # refused enrolments per client address per failure_window_s, then 429
    failure_window_s: float = 600.0
    kafka: KafkaHandout = field(default_factory=KafkaHandout)

    def serve_settings(self) -> ServeSettings:
        return ServeSettings(
            host=self.listen_host,
            port=self.listen_port,
            tls_certfile=self.tls_certfile,
            tls_keyfile=self.tls_keyfile,
            workers=self.workers,
            max_queued=self.max_queued,
            idle_timeout_s=self.idle_timeout_s,
            request_deadline_s=self.request_deadline_s,
        )

    def validate(self) -> EnrolmentConfig:
        from pipeline.config import ConfigError

        self.serve_settings().validate("enrolment.")
        check_kafka_security(self.kafka.security_protocol, self.kafka.sasl_mechanism, "enrolment.kafka.")
        if not self.tls_certfile and not is_loopback(self.listen_host) and not self.allow_plain_http:
            raise ConfigError(
                f"enrolment.tls_certfile: required to listen on {self.listen_host} (tokens and agent secrets would"
                " cross the network in clear); set enrolment.allow_plain_http: true only behind a TLS proxy"
            )
        if self.max_failures < 1:
            raise ConfigError("enrolment.max_failures: must be at least 1")
        if not self.failure_window_s > 0:
            raise ConfigError("enrolment.failure_window_s: must be a positive number of seconds")
        return self


@dataclass
class CoverageConfig:
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    heartbeat_topic: str = HEARTBEAT_TOPIC
    raw_topic: str = RAW_TOPIC
    inventory: str = "config/inventory.yaml"
    registry: str = ".socpipe/enrolment/registry.db"
    state_dir: str = ".socpipe/coverage"
    metrics_host: str = "127.0.0.1"  # plain HTTP, no auth: set 0.0.0.0 only where Prometheus scrapes over a network
    metrics_port: int = 9465
    heartbeat_interval_s: float = 15.0
    missed_heartbeats: int = 3
    # a heartbeat whose sent_at is further than this from now is rejected as stale (a replay, or an agent
    # clock off: keep agents on NTP); 0 = two intervals, at least 5 s
    heartbeat_max_age_s: float = 0.0
    source_silent_after_s: float = 900.0
    spooling_after_s: float = 120.0
    tick_s: float = 1.0  # evaluation runs on the wall clock at this period, messages or not
    history_interval_s: float = 60.0
    enrolment: EnrolmentConfig = field(default_factory=EnrolmentConfig)

    def __post_init__(self) -> None:
        # One place for the Kafka address: agents are told what this service itself connects to,
        # unless the handout names an agency-facing address.
        if not self.enrolment.kafka.bootstrap:
            self.enrolment.kafka.bootstrap = self.kafka.bootstrap

    def validate(self) -> CoverageConfig:
        """Start-up checks of the coverage service's own keys (the enrolment server checks `enrolment`)."""
        from pipeline.config import ConfigError

        check_kafka_security(self.kafka.security_protocol, self.kafka.sasl_mechanism)
        for name in (
            "heartbeat_interval_s",
            "source_silent_after_s",
            "spooling_after_s",
            "tick_s",
            "history_interval_s",
        ):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name}: must be a positive number of seconds")
        if self.missed_heartbeats < 1:
            raise ConfigError("missed_heartbeats: must be at least 1")
        if self.heartbeat_max_age_s < 0:
            raise ConfigError("heartbeat_max_age_s: must not be negative (0 = two heartbeat intervals)")
        if not 0 <= self.metrics_port <= 65535:
            raise ConfigError("metrics_port: must be a TCP port (0: any free port)")
        return self

    def heartbeat_max_age(self) -> float:
        return self.heartbeat_max_age_s if self.heartbeat_max_age_s > 0 else max(5.0, 2 * self.heartbeat_interval_s)

    def thresholds(self) -> Thresholds:
        return Thresholds(
            heartbeat_interval_s=self.heartbeat_interval_s,
            missed_heartbeats=self.missed_heartbeats,
            source_silent_after_s=self.source_silent_after_s,
            spooling_after_s=self.spooling_after_s,
        )
