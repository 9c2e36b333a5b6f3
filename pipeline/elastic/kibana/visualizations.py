"""Kibana visualisations of alerts (aggregation-based `visualization` saved objects: their fields are
explicit in the object, so tests/unit/test_kibana_objects.py checks each against our mappings)."""

from __future__ import annotations

from typing import Any

from pipeline.elastic.kibana.saved import ALERTS_VIEW, INDEX_REF, compact_json, saved_object, search_source


def _count(id_: str = "1") -> dict[str, Any]:
    return {"id": id_, "enabled": True, "type": "count", "schema": "metric", "params": {}}


def _metric(id_: str, agg: str, field: str, label: str) -> dict[str, Any]:
    return {
        "id": id_,
        "enabled": True,
        "type": agg,
        "schema": "metric",
        "params": {"field": field, "customLabel": label},
    }


def _terms(id_: str, field: str, schema: str, size: int = 10, label: str = "", order_by: str = "1") -> dict[str, Any]:
    return {
        "id": id_,
        "enabled": True,
        "type": "terms",
        "schema": schema,
        "params": {
            "field": field,
            "size": size,
            "order": "desc",
            "orderBy": order_by,
            "otherBucket": False,
            "missingBucket": False,
            "customLabel": label,
        },
    }


def _histogram(id_: str = "2") -> dict[str, Any]:
    return {
        "id": id_,
        "enabled": True,
        "type": "date_histogram",
        "schema": "segment",
        "params": {"field": "@timestamp", "interval": "auto", "min_doc_count": 1, "extended_bounds": {}},
    }


def _vis(
    id_: str,
    title: str,
    vis_type: str,
    aggs: list[dict[str, Any]],
    params: dict[str, Any] | None = None,
    query: str = "",
    view: str = ALERTS_VIEW,
) -> dict[str, Any]:
    state = {
        "title": title,
        "type": vis_type,
        "aggs": aggs,
        "params": {"addTooltip": True, "addLegend": True, "legendPosition": "right", **(params or {})},
    }
    return saved_object(
        "visualization",
        id_,
        {
            "title": title,
            "description": "",
            "version": 1,
            "visState": compact_json(state),
            "uiStateJSON": "{}",
            "kibanaSavedObjectMeta": search_source(query),
        },
        [{"name": INDEX_REF, "type": "index-pattern", "id": view}],
    )


def _bar(id_: str, title: str, split_field: str | None, query: str = "") -> dict[str, Any]:
    aggs = [_count(), _histogram()]
    if split_field:
        aggs.append(_terms("3", split_field, "group", size=5))
    return _vis(id_, title, "histogram", aggs, {"type": "histogram", "mode": "stacked"}, query)


def _top(
    id_: str, title: str, field: str, label: str, size: int = 10, query: str = "", pie: bool = False
) -> dict[str, Any]:
    if pie:
        return _vis(
            id_,
            title,
            "pie",
            [_count(), _terms("2", field, "segment", size, label)],
            {"type": "pie", "isDonut": True},
            query,
        )
    return _vis(
        id_,
        title,
        "table",
        [_count(), _terms("2", field, "bucket", size, label)],
        {"perPage": 10, "showTotal": True, "totalFunc": "sum"},
        query,
    )


def _agency_control() -> dict[str, Any]:
    state = {
        "title": "Agency",
        "type": "input_control_vis",
        "aggs": [],
        "params": {
            "controls": [
                {
                    "id": "1",
                    "fieldName": "socpipe.agency.name",
                    "label": "Agency",
                    "type": "list",
                    "indexPatternRefName": "control_0_index_pattern",
                    "parent": "",
                    "options": {
                        "type": "terms",
                        "multiselect": True,
                        "dynamicOptions": True,
                        "size": 100,
                        "order": "desc",
                    },
                },
                {
                    "id": "2",
                    "fieldName": "socpipe.agency.tier",
                    "label": "Tier",
                    "type": "list",
                    "indexPatternRefName": "control_1_index_pattern",
                    "parent": "",
                    "options": {
                        "type": "terms",
                        "multiselect": True,
                        "dynamicOptions": True,
                        "size": 20,
                        "order": "desc",
                    },
                },
            ],
            "updateFiltersOnChange": True,
            "useTimeFilter": True,
            "pinFilters": False,
        },
    }
    return saved_object(
        "visualization",
        "socpipe-vis-agency-control",
        {
            "title": "Agency",
            "description": "",
            "version": 1,
            "visState": compact_json(state),
            "uiStateJSON": "{}",
            "kibanaSavedObjectMeta": search_source(index=False),
        },
        [
            {"name": "control_0_index_pattern", "type": "index-pattern", "id": ALERTS_VIEW},
            {"name": "control_1_index_pattern", "type": "index-pattern", "id": ALERTS_VIEW},
        ],
    )


def visualizations() -> list[dict[str, Any]]:
    return [
        _bar("socpipe-vis-alerts-by-severity", "Alerts over time by severity", "kibana.alert.severity"),
        _top("socpipe-vis-top-rules", "Top rules", "kibana.alert.rule.name", "Rule", 15),
        _top("socpipe-vis-top-agencies", "Top agencies", "socpipe.agency.name", "Agency", 15),
        _top("socpipe-vis-top-sources", "Top source addresses", "source.ip", "source.ip", 15),
        _top("socpipe-vis-mitre-tactics", "MITRE ATT&CK tactics", "threat.tactic.name", "Tactic", 14, pie=True),
        _top("socpipe-vis-mitre-techniques", "MITRE ATT&CK techniques", "threat.technique.id", "Technique", 20),
        _top("socpipe-vis-status", "Workflow status", "socpipe.workflow.status", "Status", 3, pie=True),
        _top("socpipe-vis-top-hosts", "Top hosts", "host.name", "host.name", 15),
        _top("socpipe-vis-top-users", "Top users", "user.name", "user.name", 15),
        _agency_control(),
        _vis(
            "socpipe-vis-rule-noise",
            "Alerts and suppressed repeats per rule",
            "table",
            [
                _count(),
                _metric("3", "sum", "socpipe.suppression.count", "Suppressed repeats"),
                _metric("4", "sum", "socpipe.detection.count", "Matched events"),
                _metric("5", "cardinality", "organization.id", "Agencies"),
                _terms("2", "kibana.alert.rule.name", "bucket", 50, "Rule"),
            ],
            {"perPage": 20, "showTotal": True, "totalFunc": "sum"},
        ),
        _vis(
            "socpipe-vis-suppressed-per-rule",
            "Suppressed repeats per rule",
            "horizontal_bar",
            [
                _metric("1", "sum", "socpipe.suppression.count", "Suppressed repeats"),
                _terms("2", "kibana.alert.rule.name", "segment", 20, "Rule"),
            ],
            {"type": "histogram"},
        ),
        _bar("socpipe-vis-rule-over-time", "Alerts per rule over time", "kibana.alert.rule.name"),
        _vis(
            "socpipe-vis-closing-reasons",
            "Closing reasons per rule",
            "table",
            [
                _count(),
                _terms("2", "kibana.alert.rule.name", "bucket", 30, "Rule"),
                _terms("3", "socpipe.workflow.closing_reason", "bucket", 5, "Closing reason"),
            ],
            {"perPage": 20},
            query='socpipe.workflow.status : "closed"',
        ),
    ]
