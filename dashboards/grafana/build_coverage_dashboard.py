"""Writes socpipe-coverage.json (Grafana dashboard). Edit here, then run:

python dashboards/grafana/build_coverage_dashboard.py
"""

import json
from pathlib import Path

DS = {"type": "prometheus", "uid": "${datasource}"}


def panel(pid, title, kind, exprs, x, y, w, h, unit=None, legend="", extra=None):
    p = {
        "id": pid,
        "title": title,
        "type": kind,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": [
            {
                "refId": chr(65 + i),
                "datasource": DS,
                "expr": e,
                "legendFormat": legend,
                **({"instant": True, "format": "table"} if kind == "table" else {}),
            }
            for i, e in enumerate(exprs)
        ],
        "fieldConfig": {"defaults": {"unit": unit} if unit else {}, "overrides": []},
        "options": {},
    }
    p.update(extra or {})
    return p


PANELS = [
    panel(
        1,
        "Coverage (all agencies)",
        "stat",
        ["socpipe:coverage_ratio"],
        0,
        0,
        6,
        5,
        "percentunit",
        extra={
            "fieldConfig": {
                "defaults": {
                    "unit": "percentunit",
                    "min": 0,
                    "max": 1,
                    "thresholds": {
                        "mode": "absolute",
                        "steps": [
                            {"color": "red", "value": None},
                            {"color": "orange", "value": 0.8},
                            {"color": "green", "value": 0.95},
                        ],
                    },
                },
                "overrides": [],
            }
        },
    ),
    panel(
        2,
        "Agencies monitored / total",
        "stat",
        ["sum(socpipe_agencies_monitored)", "sum(socpipe_agencies_total)"],
        6,
        0,
        6,
        5,
        legend="{{__name__}}",
    ),
    panel(3, "Agencies down", "stat", ["socpipe:agencies_down:count"], 12, 0, 6, 5),
    panel(4, "Silent expected sources", "stat", ["socpipe:sources_silent:count"], 18, 0, 6, 5),
    panel(5, "Coverage by tier", "bargauge", ["socpipe:tier_coverage_ratio"], 0, 5, 12, 8, "percentunit", "{{tier}}"),
    panel(
        6,
        "Coverage over time",
        "timeseries",
        ["socpipe:coverage_ratio", "socpipe:tier_coverage_ratio"],
        12,
        5,
        12,
        8,
        "percentunit",
        "{{tier}}",
    ),
    panel(
        7,
        "Agencies by state",
        "timeseries",
        ["sum by (state) (socpipe_agencies_by_state)"],
        0,
        13,
        12,
        8,
        legend="{{state}}",
    ),
    panel(
        8,
        "Agencies down (no heartbeat)",
        "table",
        [
            '(time() - socpipe_agency_last_seen_timestamp_seconds) and on (agency) (socpipe_agency_state{state="agent_down"} == 1)'
        ],
        12,
        13,
        12,
        8,
        "s",
    ),
    panel(
        9,
        "Silent sources (agent alive)",
        "table",
        [
            "(time() - socpipe_source_last_event_timestamp_seconds) and on (agency, source) (socpipe_source_delivering == 0)"
        ],
        0,
        21,
        12,
        8,
        "s",
    ),
    panel(10, "Never seen agencies", "table", ['socpipe_agency_state{state="never_seen"} == 1'], 12, 21, 12, 8),
    panel(
        11,
        "Pipeline throughput (lines/s)",
        "timeseries",
        ["sum(rate(socpipe_events_received_total[5m]))", "sum(rate(socpipe_detector_lines_total[5m]))"],
        0,
        29,
        12,
        8,
        "short",
        "{{__name__}}",
    ),
    panel(
        12,
        "Detector batch latency p95 and agent spool",
        "timeseries",
        [
            "histogram_quantile(0.95, sum by (le) (rate(socpipe_detector_batch_seconds_bucket[5m])))",
            "sum(socpipe_agency_spool_bytes)",
        ],
        12,
        29,
        12,
        8,
    ),
    panel(
        13,
        "Events received by agency (top 10)",
        "timeseries",
        ["topk(10, socpipe:events_received:rate5m)"],
        0,
        37,
        12,
        8,
        "short",
        "{{agency}}",
    ),
    panel(
        14, "Agent versions in the field", "piechart", ["socpipe_agent_versions"], 12, 37, 6, 8, legend="{{version}}"
    ),
    panel(
        15,
        "Rejected heartbeats (forgery attempts)",
        "timeseries",
        ["sum by (reason) (increase(socpipe_heartbeats_rejected_total[10m]))"],
        18,
        37,
        6,
        8,
        legend="{{reason}}",
    ),
]

DASHBOARD = {
    "uid": "socpipe-coverage",
    "title": "socpipe — SOC coverage of the province",
    "tags": ["socpipe", "coverage"],
    "timezone": "browser",
    "schemaVersion": 39,
    "version": 1,
    "refresh": "30s",
    "time": {"from": "now-24h", "to": "now"},
    "templating": {
        "list": [{"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"}]
    },
    "panels": PANELS,
}

if __name__ == "__main__":
    out = Path(__file__).with_name("socpipe-coverage.json")
    out.write_text(json.dumps(DASHBOARD, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}")
