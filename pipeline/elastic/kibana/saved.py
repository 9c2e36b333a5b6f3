"""What every Kibana saved object of socpipe shares: the object envelope, compact JSON for Kibana's
JSON-in-a-string attributes, a search source, and the ids of the data views and their default columns."""

from __future__ import annotations

import json
from typing import Any

ALERTS_VIEW = "socpipe-alerts"
EVENTS_VIEW = "socpipe-events"
INCIDENTS_VIEW = "socpipe-incidents"
INCIDENT_COLUMNS = [
    "socpipe.incident.title",
    "socpipe.incident.severity",
    "organization.id",
    "socpipe.incident.alert_count",
    "socpipe.incident.tactics",
    "socpipe.incident.entity_keys",
    "socpipe.workflow.status",
    "socpipe.workflow.assignee",
    "event.end",
]
TRIAGE_URL = "http://127.0.0.1:8088"  # replaced by `socpipe kibana install --triage-url`
INDEX_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"
ALERT_COLUMNS = [
    "kibana.alert.severity",
    "kibana.alert.rule.name",
    "organization.id",
    "source.ip",
    "user.name",
    "host.name",
    "socpipe.workflow.status",
    "socpipe.workflow.assignee",
    "socpipe.suppression.count",
    "event.id",
]


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def saved_object(type_: str, id_: str, attributes: dict[str, Any], references: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": type_,
        "id": id_,
        "attributes": attributes,
        "references": references,
        "managed": False,
        "coreMigrationVersion": "8.8.0",
    }


def search_source(query: str = "", filters: list[dict[str, Any]] | None = None, index: bool = True) -> dict[str, Any]:
    src: dict[str, Any] = {"query": {"query": query, "language": "kuery"}, "filter": filters or []}
    if index:
        src["indexRefName"] = INDEX_REF
    return {"searchSourceJSON": compact_json(src)}
