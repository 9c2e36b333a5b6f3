"""The detector worker's configuration (one YAML file; every key has a default; SOCPIPE_* overrides)."""

from __future__ import annotations

from dataclasses import dataclass, field

from collectors.wire import DEFAULT_TIMEZONE, RAW_TOPIC
from pipeline.config import ConfigError, ElasticsearchConfig, KafkaConfig, check_kafka_security
from pipeline.notify import NotifyConfig

DEAD_LETTER_TOPIC = "socpipe.deadletter"  # records the worker could not process, with the reason
QUARANTINE_TOPIC = "socpipe.quarantine"  # raw records that failed verification, with the reason


@dataclass
class DetectorConfig:
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    es: ElasticsearchConfig = field(default_factory=ElasticsearchConfig)
    group_id: str = "socpipe-detectors"  # every worker of one deployment shares it; add workers to scale
    raw_topic: str = RAW_TOPIC
    correlation_topic: str = "socpipe.correlation-inputs"  # stage 2: keyed by correlation group values
    state_topic: str = "socpipe.detector-state"  # compacted: correlation state per stage-2 partition
    dead_letter_topic: str = DEAD_LETTER_TOPIC
    quarantine_topic: str = QUARANTINE_TOPIC
    registry: str = ".socpipe/enrolment/registry.db"  # enrolment registry: who may speak for which agency
    registry_refresh_s: float = 10.0  # a revoked agent's records are quarantined within this long
    max_seq_ahead: int = 100_000  # a line this far ahead of its stream's seqs is an anomaly, not dedup state
    topic_partitions: int = 4  # for topics the detector creates when missing
    # which worker takes which partitions: "load" (by records received lately, pipeline.worker.assign)
    # or "range" (by number, kafka-python's default)
    partition_assignment: str = "load"
    rules: list[str] = field(default_factory=lambda: ["rules"])
    models: list[str] = field(default_factory=list)  # anomaly model directories (optional)
    model_check_s: float = 10.0  # how often model directories are checked for a new version/stage
    anomaly_lateness_s: float = 30.0  # anomaly windows close this far behind the newest event time
    anomaly_idle_flush_s: float = 60.0  # no raw records this long: close every open anomaly window
    suppression_window_s: float = 3600.0  # repeats of a dedup key inside it bump one alert's count; 0 = off
    suppression_max_keys: int = 100_000  # open dedup keys remembered per suppressor
    # episodes: detections of one dedup key with gaps <= episode_quiet_s are one growing alert
    episode_quiet_s: float = 900.0
    episode_max_s: float = 86400.0  # an episode older than this starts a new alert
    episode_update_s: float = 2.0  # an open alert is rewritten at most this often (growth waits in memory)
    # incidents: alerts of one agency sharing an entity within this window are one incident; 0 = off
    incident_window_s: float = 3600.0
    notify: NotifyConfig = field(default_factory=NotifyConfig)  # critical-alert notifications, off by default
    inventory: str = ""  # agency inventory (names and tiers on alerts); optional
    timezone: str = DEFAULT_TIMEZONE  # default for sources that do not say
    allowed_lateness_s: float = 60.0  # events later than this behind the watermark miss their window
    idle_advance_s: float = 5.0  # an idle stage-2 partition advances its watermark by wall clock
    idle_flush_s: float = 1.0  # no raw records this long: emit auditd events still waiting for siblings
    # Windows processes whose creation context (Sysmon 1) fills their later Sysmon events, per worker
    # (least recently seen dropped first; about 2 KB each, ~36 MB at 20,000; 0 = off), and at most
    # 32 Mi characters of their values in all (process_context.MAX_CONTEXT_CHARS: long command lines)
    process_context_max: int = 20_000
    max_batch_records: int = 500  # Kafka records per poll, at most
    max_batch_lines: int = 2000  # lines per stage-1 batch, about (alerts are written per batch)
    poll_timeout_ms: int = 200
    bulk_docs: int = 1000  # alert documents per Elasticsearch bulk request
    retry_backoff_max_s: float = 10.0  # while Elasticsearch refuses, consumption is paused and retried
    progress_log_s: float = 60.0  # a structured progress line (records, lines, inputs, detections) this often
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9464  # 0 disables the metrics endpoint

    def validate(self) -> DetectorConfig:
        check_kafka_security(self.kafka.security_protocol, self.kafka.sasl_mechanism)
        self.es.check()
        if not self.rules:
            raise ConfigError("rules: at least one rule path is needed")
        if self.max_batch_records < 1:
            raise ConfigError("max_batch_records: must be at least 1")
        if self.partition_assignment not in ("load", "range"):
            raise ConfigError(f"partition_assignment: 'load' or 'range', not {self.partition_assignment!r}")
        if self.allowed_lateness_s < 0:
            raise ConfigError("allowed_lateness_s: must not be negative")
        if not self.episode_quiet_s > 0:
            raise ConfigError("episode_quiet_s: must be a positive number of seconds")
        if self.episode_max_s < self.episode_quiet_s:
            raise ConfigError("episode_max_s: must be at least episode_quiet_s")
        if self.suppression_window_s < 0:
            raise ConfigError("suppression_window_s: must not be negative (0 turns suppression off)")
        if self.max_batch_lines < 1:
            raise ConfigError("max_batch_lines: must be at least 1")
        if self.bulk_docs < 1:
            raise ConfigError("bulk_docs: must be at least 1")
        if self.progress_log_s <= 0:
            raise ConfigError("progress_log_s: must be positive")
        if not self.registry:
            raise ConfigError("registry: the enrolment registry is needed to verify who sent each raw record")
        if self.registry_refresh_s <= 0:
            raise ConfigError("registry_refresh_s: must be positive")
        if self.max_seq_ahead < 1:
            raise ConfigError("max_seq_ahead: must be at least 1")
        if self.process_context_max < 0:
            raise ConfigError("process_context_max: must not be negative (0 turns process context off)")
        if self.model_check_s <= 0:
            raise ConfigError("model_check_s: must be positive")
        if not 0 <= self.metrics_port <= 65535:
            raise ConfigError("metrics_port: must be a TCP port (0 disables)")
        return self
