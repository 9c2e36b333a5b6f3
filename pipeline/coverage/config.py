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
    kafka: KafkaHandout = field(default_factory=KafkaHandout)


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
