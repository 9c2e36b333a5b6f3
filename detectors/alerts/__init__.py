"""Alert documents for Elasticsearch: `build_alert`, `alert_index_name`, `to_nested` (pure, no I/O)."""

from detectors.alerts.attack import threat_from_tags
from detectors.alerts.build import (
    STATUSES,
    AgencyInfo,
    alert_index_name,
    build_alert,
    entity_fields,
    event_index_name,
)
from detectors.alerts.evidence import bound_evidence
from detectors.alerts.nested import to_flat, to_nested

__all__ = [
    "AgencyInfo",
    "STATUSES",
    "alert_index_name",
    "bound_evidence",
    "build_alert",
    "entity_fields",
    "event_index_name",
    "threat_from_tags",
    "to_flat",
    "to_nested",
]
