"""Kibana saved objects (data views, saved searches, visualisations, dashboards) built from code.

The NDJSON in dashboards/kibana/ is rendered from here (`socpipe kibana export`, FILES and render
below), and a test fails when the committed files drift. Data views, saved searches and dashboards
are here; the visualisations in `visualizations.py`; what every object shares in `saved.py`.
"""

from __future__ import annotations

import json
from typing import Any

from pipeline.elastic.kibana.saved import (
    ALERT_COLUMNS,
    ALERTS_VIEW,
    EVENTS_VIEW,
    INCIDENT_COLUMNS,
    INCIDENTS_VIEW,
    INDEX_REF,
    TRIAGE_URL,
    compact_json,
    saved_object,
    search_source,
)
from pipeline.elastic.kibana.visualizations import visualizations


def data_views(prefix: str = "socpipe", triage_url: str = TRIAGE_URL) -> list[dict[str, Any]]:
    link = {
        "id": "url",
        "params": {
            "urlTemplate": f"{triage_url}/alerts/{{{{value}}}}",
            "labelTemplate": "{{value}} (triage)",
            "openLinkInCurrentTab": False,
        },
    }
    return [
        saved_object(
            "index-pattern",
            ALERTS_VIEW,
            {
                "title": f"{prefix}-alerts-*",
                "name": "socpipe alerts",
                "timeFieldName": "@timestamp",
                "fieldFormatMap": compact_json({"event.id": link}),
            },
            [],
        ),
        saved_object(
            "index-pattern",
            INCIDENTS_VIEW,
            {
                "title": f"{prefix}-incidents-*",
                "name": "socpipe incidents",
                "timeFieldName": "@timestamp",
            },
            [],
        ),
        saved_object(
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
    id_: str,
    title: str,
    description: str,
    query: str,
    sort: list[list[str]],
    columns: list[str] | None = None,
    view: str = ALERTS_VIEW,
) -> dict[str, Any]:
    return saved_object(
        "search",
        id_,
        {
            "title": title,
            "description": description,
            "columns": columns or ALERT_COLUMNS,
            "sort": sort,
            "kibanaSavedObjectMeta": search_source(query),
        },
        [{"name": INDEX_REF, "type": "index-pattern", "id": view}],
    )


def saved_searches() -> list[dict[str, Any]]:
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


def my_alerts_search(analyst: str) -> dict[str, Any]:
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


# --- dashboards ----------------------------------------------------------------------------------


def _dashboard(
    id_: str, title: str, description: str, panels: list[tuple[str, str, int, int, int, int]], query: str = ""
) -> dict[str, Any]:
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
    return saved_object(
        "dashboard",
        id_,
        {
            "title": title,
            "description": description,
            "panelsJSON": compact_json(panels_json),
            "optionsJSON": compact_json({"useMargins": True, "syncColors": False, "hidePanelTitles": False}),
            "timeRestore": True,
            "timeFrom": "now-24h",
            "timeTo": "now",
            "refreshInterval": {"pause": False, "value": 30000},
            "kibanaSavedObjectMeta": search_source(query, index=False),
        },
        refs,
    )


def dashboards() -> list[dict[str, Any]]:
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


def render(objects: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(o, ensure_ascii=False, sort_keys=True) + "\n" for o in objects)
