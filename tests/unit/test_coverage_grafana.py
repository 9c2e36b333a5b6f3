"""Every PromQL expression of the Grafana dashboard names only metrics we export or record."""

import json
import re
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from pipeline.coverage.inventory import parse_inventory
from pipeline.coverage.metrics import CoverageCollector, TrafficCounters
from pipeline.coverage.state import CoverageTracker

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "dashboards" / "grafana" / "socpipe-coverage.json"
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}
KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
}


def _names(registry: CollectorRegistry) -> set[str]:
    out = set()
    for fam in registry.collect():
        out |= {fam.name + s for s in SUFFIXES.get(fam.type, ("",))}
        out |= {s.name for s in fam.samples}
    return out


def exported_names() -> set[str]:
    reg = CollectorRegistry()
    tracker = CoverageTracker()
    tracker.observe_heartbeat(agency_id="a", agent_id="x", host="h", version="1", spool_bytes=0, shipped={}, now=1.0)
    snap = tracker.evaluate(parse_inventory({"agencies": [{"id": "a", "name": "A", "tier": "commune"}]}), 2.0)
    reg.register(CoverageCollector(lambda: snap, TrafficCounters(), lambda: (0, 0.0)))
    names = _names(reg)
    from pipeline.worker_metrics import WorkerMetrics

    names |= _names(WorkerMetrics().registry)
    for path in (ROOT / "dashboards" / "prometheus").glob("*.rules.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            names |= {r["record"] for r in group["rules"] if "record" in r}
    return names


def metric_names_in(expr: str) -> set[str]:
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    found = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        word = m.group(0)
        following = expr[m.end() :].lstrip()[:1]
        if following == "(" or word.lower() in KEYWORDS:
            continue
        found.add(word)
    return found


def test_parser_finds_metrics_and_skips_functions():
    assert metric_names_in('sum by (le) (rate(a_b_bucket{x="y(z)"}[5m])) and on (agency) c:d == 1') == {
        "a_b_bucket",
        "c:d",
    }


def test_every_panel_queries_exported_metrics():
    dash = json.loads(DASHBOARD.read_text())
    exported = exported_names()
    assert {"socpipe_coverage_ratio", "socpipe_events_received_total", "socpipe:coverage_ratio"} <= exported
    panels = dash["panels"]
    assert len(panels) >= 10 and len({p["id"] for p in panels}) == len(panels)
    unknown = {}
    for p in panels:
        assert p["targets"], f"panel {p['title']} has no query"
        for t in p["targets"]:
            missing = metric_names_in(t["expr"]) - exported
            if missing:
                unknown[p["title"]] = sorted(missing)
    assert not unknown, f"panels query metrics nobody exports: {unknown}"


def test_dashboard_covers_what_the_issue_asks():
    titles = " ".join(p["title"].lower() for p in json.loads(DASHBOARD.read_text())["panels"])
    for topic in ("by tier", "down", "silent", "throughput", "latency"):
        assert topic in titles
