"""Severity, one home: one type for Sigma rule levels and anomaly findings, and its tables.

`Severity` is a `str` enum, so a level reads, compares, serialises and hashes as its Sigma name
("high" == Severity.HIGH) and costs nothing on the hot path. `score` is the ECS `event.severity` /
risk score (Kibana's 21/47/73/99 scale at the top), `kibana` the Kibana alert severity (which knows
no "informational").
"""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    INFORMATIONAL = "informational"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def score(self) -> int:
        return SEVERITY[self]

    @property
    def kibana(self) -> str:
        return KIBANA_SEVERITY[self]

    @classmethod
    def parse(cls, value: object, default: Severity | None = None) -> Severity:
        """A level by name (any case); `default` (medium unless given) for anything unknown."""
        try:
            return cls(str(value).lower())
        except ValueError:
            return default if default is not None else cls.MEDIUM


# Sigma levels -> ECS event.severity / risk score
SEVERITY: dict[str, int] = {"informational": 1, "low": 21, "medium": 47, "high": 73, "critical": 99}
KIBANA_SEVERITY: dict[str, str] = {
    "informational": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "critical": "critical",
}
LEVELS: tuple[str, ...] = tuple(s.value for s in Severity)
# the values kibana.alert.severity takes, lowest first
KIBANA_LEVELS: tuple[str, ...] = tuple(dict.fromkeys(KIBANA_SEVERITY.values()))
