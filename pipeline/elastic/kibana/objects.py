"""Kibana saved objects (data views, saved searches, visualisations, dashboards) built from code.

The NDJSON in dashboards/kibana/ is rendered from here (`socpipe kibana export`), and a test fails
when the committed files drift. Visualisations are the aggregation-based kind (`visualization`
saved objects): their fields are explicit in the object, so a test can check each one against our
mappings, unlike Lens state.
"""

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


def _j(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _obj(type_: str, id_: str, attributes: dict, references: list[dict]) -> dict:
    return {
        "type": type_,
        "id": id_,
        "attributes": attributes,
        "references": references,
        "managed": False,
        "coreMigrationVersion": "8.8.0",
    }


def _search_source(query: str = "", filters: list | None = None, index: bool = True) -> dict:
    src: dict[str, Any] = {"query": {"query": query, "language": "kuery"}, "filter": filters or []}
    if index:
        src["indexRefName"] = INDEX_REF
    return {"searchSourceJSON": _j(src)}


def data_views(prefix: str = "socpipe", triage_url: str = TRIAGE_URL) -> list[dict]:
    link = {
        "id": "url",
        "params": {
            "urlTemplate": f"{triage_url}/alerts/{{{{value}}}}",
            "labelTemplate": "{{value}} (triage)",
            "openLinkInCurrentTab": False,
        },
    }
    return [
        _obj(
            "index-pattern",
            ALERTS_VIEW,
            {
                "title": f"{prefix}-alerts-*",
                "name": "socpipe alerts",
                "timeFieldName": "@timestamp",
                "fieldFormatMap": _j({"event.id": link}),
            },
            [],
        ),
        _obj(
            "index-pattern",
            INCIDENTS_VIEW,
            {
                "title": f"{prefix}-incidents-*",
                "name": "socpipe incidents",
                "timeFieldName": "@timestamp",
            },
            [],
        ),
        _obj(
            "index-pattern",
            EVENTS_VIEW,
            {
                "title": f"{prefix}-events-*",
                "name": "socpipe events",
                "timeFieldName": "@timestamp",
            },
            [],
        ),
    ]


def _saved_search(
    id_: str, title: str, description: str, query: str, sort: list, columns=None, view: str = ALERTS_VIEW
) -> dict:
    return _obj(
        "search",
        id_,
        {
            "title": title,
            "description": description,
            "columns": columns or ALERT_COLUMNS,
            "sort": sort,
            "kibanaSavedObjectMeta": _search_source(query),
        },
        [{"name": INDEX_REF, "type": "index-pattern", "id": view}],
    )


def saved_searches() -> list[dict]:
    newest = [["@timestamp", "desc"]]
    return [
        _saved_search(
            "socpipe-open-high-critical",
            "Open high and critical alerts",
            "Untriaged alerts that need a look first.",
            'socpipe.workflow.status : "open" and kibana.alert.severity : ("high" or "critical")',
            [["event.severity", "desc"], ["@timestamp", "desc"]],
        ),
        _saved_search(
            "socpipe-my-alerts",
            "My alerts",
            "Alerts assigned to someone and not closed. Kibana has no current-user variable: add a "
            "filter on socpipe.workflow.assignee, or install per-analyst copies with "
            "`socpipe kibana install --analyst NAME`.",
            'socpipe.workflow.assignee : * and not socpipe.workflow.status : "closed"',
            [["socpipe.workflow.assignee", "asc"], ["@timestamp", "desc"]],
        ),
        _saved_search(
            "socpipe-alerts-by-agency",
            "Alerts by agency",
            "All alerts, grouped by agency.",
            "",
            [["organization.id", "asc"], ["@timestamp", "desc"]],
            ["organization.id", "socpipe.agency.name", "socpipe.agency.tier", *ALERT_COLUMNS[:2], *ALERT_COLUMNS[3:]],
        ),
        _saved_search(
            "socpipe-open-incidents",
            "Open incidents",
            "Alerts of one agency sharing an address, user or host, grouped: worst first. Closing an "
            "incident (triage queue or `socpipe incidents close`) closes its alerts.",
            'not socpipe.workflow.status : "closed"',
            [["event.severity", "desc"], ["event.end", "desc"]],
            INCIDENT_COLUMNS,
            view=INCIDENTS_VIEW,
        ),
        _saved_search(
            "socpipe-events-all",
            "Events",
            "Normalised events (when event indexing is on).",
            "",
            newest,
            [
                "event.dataset",
                "organization.id",
                "host.name",
                "source.ip",
                "user.name",
                "event.action",
                "event.outcome",
                "message",
            ],
            view=EVENTS_VIEW,
        ),
    ]


def my_alerts_search(analyst: str) -> dict:
    """A per-analyst 'My alerts' (no current-user variable exists in saved searches)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in analyst)
    quoted = analyst.replace("\\", "\\\\").replace('"', '\\"')
    return _saved_search(
        f"socpipe-my-alerts-{safe}",
        f"My alerts: {analyst}",
        f"Alerts assigned to {analyst}, not closed.",
        f'socpipe.workflow.assignee : "{quoted}" and not socpipe.workflow.status : "closed"',
        [["@timestamp", "desc"]],
    )


# --- visualisations ------------------------------------------------------------------------------


def _count(id_: str = "1") -> dict:
    return {"id": id_, "enabled": True, "type": "count", "schema": "metric", "params": {}}


def _metric(id_: str, agg: str, field: str, label: str) -> dict:
    return {
        "id": id_,
        "enabled": True,
        "type": agg,
        "schema": "metric",
        "params": {"field": field, "customLabel": label},
    }


def _terms(id_: str, field: str, schema: str, size: int = 10, label: str = "", order_by: str = "1") -> dict:
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


def _histogram(id_: str = "2") -> dict:
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
    aggs: list[dict],
    params: dict | None = None,
    query: str = "",
    view: str = ALERTS_VIEW,
) -> dict:
    state = {
        "title": title,
        "type": vis_type,
        "aggs": aggs,
        "params": {"addTooltip": True, "addLegend": True, "legendPosition": "right", **(params or {})},
    }
    return _obj(
        "visualization",
        id_,
        {
            "title": title,
            "description": "",
            "version": 1,
            "visState": _j(state),
            "uiStateJSON": "{}",
            "kibanaSavedObjectMeta": _search_source(query),
        },
        [{"name": INDEX_REF, "type": "index-pattern", "id": view}],
    )


def _bar(id_: str, title: str, split_field: str | None, query: str = "") -> dict:
    aggs = [_count(), _histogram()]
    if split_field:
        aggs.append(_terms("3", split_field, "group", size=5))
    return _vis(id_, title, "histogram", aggs, {"type": "histogram", "mode": "stacked"}, query)


def _top(id_: str, title: str, field: str, label: str, size: int = 10, query: str = "", pie: bool = False) -> dict:
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


def _agency_control() -> dict:
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
    return _obj(
        "visualization",
        "socpipe-vis-agency-control",
        {
            "title": "Agency",
            "description": "",
            "version": 1,
            "visState": _j(state),
            "uiStateJSON": "{}",
            "kibanaSavedObjectMeta": _search_source(index=False),
        },
        [
            {"name": "control_0_index_pattern", "type": "index-pattern", "id": ALERTS_VIEW},
            {"name": "control_1_index_pattern", "type": "index-pattern", "id": ALERTS_VIEW},
        ],
    )


def visualizations() -> list[dict]:
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


# --- dashboards ----------------------------------------------------------------------------------


def _dashboard(
    id_: str, title: str, description: str, panels: list[tuple[str, str, int, int, int, int]], query: str = ""
) -> dict:
    """panels: (type, id, x, y, w, h) on Kibana's 48-column grid."""
    panels_json, refs = [], []
    for i, (ptype, pid, x, y, w, h) in enumerate(panels, 1):
        panels_json.append(
            {
                "version": "8.8.0",
                "type": ptype,
                "panelIndex": str(i),
                "panelRefName": f"panel_{i}",
                "gridData": {"x": x, "y": y, "w": w, "h": h, "i": str(i)},
                "embeddableConfig": {},
            }
        )
        refs.append({"name": f"panel_{i}", "type": ptype, "id": pid})
    return _obj(
        "dashboard",
        id_,
        {
            "title": title,
            "description": description,
            "panelsJSON": _j(panels_json),
            "optionsJSON": _j({"useMargins": True, "syncColors": False, "hidePanelTitles": False}),
            "timeRestore": True,
            "timeFrom": "now-24h",
            "timeTo": "now",
            "refreshInterval": {"pause": False, "value": 30000},
            "kibanaSavedObjectMeta": _search_source(query, index=False),
        },
        refs,
    )


def dashboards() -> list[dict]:
    v = "visualization"
    return [
        _dashboard(
            "socpipe-soc-overview",
            "SOC overview",
            "Alerts across every agency.",
            [
                (v, "socpipe-vis-alerts-by-severity", 0, 0, 32, 14),
                (v, "socpipe-vis-status", 32, 0, 16, 14),
                (v, "socpipe-vis-top-rules", 0, 14, 16, 15),
                (v, "socpipe-vis-top-agencies", 16, 14, 16, 15),
                (v, "socpipe-vis-top-sources", 32, 14, 16, 15),
                (v, "socpipe-vis-mitre-tactics", 0, 29, 24, 15),
                (v, "socpipe-vis-mitre-techniques", 24, 29, 24, 15),
                ("search", "socpipe-open-high-critical", 0, 44, 48, 18),
            ],
        ),
        _dashboard(
            "socpipe-agency-drilldown",
            "Agency drill-down",
            "Pick an agency (or tier) to see its alerts.",
            [
                (v, "socpipe-vis-agency-control", 0, 0, 48, 6),
                (v, "socpipe-vis-alerts-by-severity", 0, 6, 32, 14),
                (v, "socpipe-vis-status", 32, 6, 16, 14),
                (v, "socpipe-vis-top-rules", 0, 20, 16, 15),
                (v, "socpipe-vis-top-hosts", 16, 20, 16, 15),
                (v, "socpipe-vis-top-users", 32, 20, 16, 15),
                ("search", "socpipe-alerts-by-agency", 0, 35, 48, 18),
            ],
        ),
        _dashboard(
            "socpipe-rule-noise",
            "Rule noise",
            "Which rules fire most, how much they suppress, how they close.",
            [
                (v, "socpipe-vis-rule-noise", 0, 0, 48, 16),
                (v, "socpipe-vis-suppressed-per-rule", 0, 16, 24, 16),
                (v, "socpipe-vis-rule-over-time", 24, 16, 24, 16),
                (v, "socpipe-vis-closing-reasons", 0, 32, 48, 16),
            ],
        ),
    ]


FILES = {
    "data_views.ndjson": lambda: data_views(),
    "searches.ndjson": saved_searches,
    "visualizations.ndjson": visualizations,
    "dashboards.ndjson": dashboards,
}


def render(objects: list[dict]) -> str:
    return "".join(json.dumps(o, ensure_ascii=False, sort_keys=True) + "\n" for o in objects)
