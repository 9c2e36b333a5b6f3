"""The SOC side's small shared helpers, one home each (pure, no I/O):

* `times`: epoch seconds <-> ISO-8601 text (the one timestamp parser and formatter);
* `durations`: "90s", "15m", "1h", "2d", "1w" -> seconds (one accepted unit set);
* `severity`: the `Severity` type (Sigma levels; anomaly findings use the same) and its tables;
* `digests`: BLAKE2b and SHA-256 without hashlib's OpenSSL start-up (the lint's cache keys).

The agent-side counterparts live in `collectors/` (the agent carries no SOC code): the wire encoding
in `collectors.wire`, the default time zone in `collectors.timezone`, Kafka client settings in `collectors.kafka_settings`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from collectors.lazy import lazy_exports

if TYPE_CHECKING:
    from detectors.common.durations import parse_duration
    from detectors.common.severity import KIBANA_SEVERITY, SEVERITY, Severity
    from detectors.common.times import DEFAULT_TIMEZONE, iso_ms, iso_s, to_datetime, to_epoch

# Names resolve on first use (PEP 562): a caller that needs the severity table (the CLI's options)
# does not load the time helpers and the wire module with it.
_EXPORTS = {
    "DEFAULT_TIMEZONE": "detectors.common.times",
    "KIBANA_SEVERITY": "detectors.common.severity",
    "SEVERITY": "detectors.common.severity",
    "Severity": "detectors.common.severity",
    "iso_ms": "detectors.common.times",
    "iso_s": "detectors.common.times",
    "parse_duration": "detectors.common.durations",
    "to_datetime": "detectors.common.times",
    "to_epoch": "detectors.common.times",
}

__all__ = [
    "DEFAULT_TIMEZONE",
    "KIBANA_SEVERITY",
    "SEVERITY",
    "Severity",
    "iso_ms",
    "iso_s",
    "parse_duration",
    "to_datetime",
    "to_epoch",
]

__getattr__ = lazy_exports(__name__, _EXPORTS)
