"""Every saved object in dashboards/kibana/ uses only fields our mappings define, and its references resolve."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.elastic.kibana import FILES, load_objects, render
from pipeline.elastic.kibana.saved import ALERTS_VIEW, EVENTS_VIEW, INCIDENTS_VIEW, TRIAGE_URL
from pipeline.elastic.mappings import ALERT_PROPERTIES, EVENT_PROPERTIES, INCIDENT_PROPERTIES, leaf_fields

KIBANA_DIR = Path(__file__).resolve().parents[2] / "dashboards" / "kibana"
FIELDS = {
    ALERTS_VIEW: leaf_fields(ALERT_PROPERTIES),
    EVENTS_VIEW: leaf_fields(EVENT_PROPERTIES),
    INCIDENTS_VIEW: leaf_fields(INCIDENT_PROPERTIES),
}
NOT_AGGREGATABLE = {"text", "flattened", "object"}
KQL_FIELD = re.compile(r"(?<![\w.\"])([A-Za-z_@][\w.@]*)\s*:")


def objects() -> list[dict]:
    out = []
    for name in sorted(p.name for p in KIBANA_DIR.glob("*.ndjson")):
        for line in (KIBANA_DIR / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append(json.loads(line))
    return out


def test_committed_ndjson_matches_the_definitions():
    assert sorted(p.name for p in KIBANA_DIR.glob("*.ndjson")) == sorted(FILES)
    for name, build in FILES.items():
        assert (KIBANA_DIR / name).read_text(encoding="utf-8") == render(build()), (
            f"{name} drifted: run `socpipe kibana export`"
        )


def _uses(obj: dict) -> list[tuple[str, str, bool]]:
    """(ref name of the data view, field, must be aggregatable) for every field the object uses."""
    attrs = obj["attributes"]
    uses: list[tuple[str, str, bool]] = []
    source = json.loads(attrs.get("kibanaSavedObjectMeta", {}).get("searchSourceJSON", "{}"))
    ref = source.get("indexRefName")
    for f in KQL_FIELD.findall(source.get("query", {}).get("query", "")):
        uses.append((ref, f, False))
    for flt in source.get("filter", []):
        uses.append((ref, flt["meta"]["key"], False))
    for col in attrs.get("columns", []):
        uses.append((ref, col, False))
    for field_name, _direction in attrs.get("sort", []):
        uses.append((ref, field_name, True))
    if "visState" in attrs:
        state = json.loads(attrs["visState"])
        for agg in state.get("aggs", []):
            if "field" in agg.get("params", {}):
                uses.append((ref, agg["params"]["field"], True))
        for control in state.get("params", {}).get("controls", []):
            uses.append((control["indexPatternRefName"], control["fieldName"], True))
    return uses


@pytest.mark.parametrize("obj", objects(), ids=lambda o: o["id"])
def test_every_field_exists_in_our_mappings(obj):
    refs = {r["name"]: r for r in obj["references"]}
    if obj["type"] == "index-pattern":
        fields = FIELDS[obj["id"]]
        assert obj["attributes"]["timeFieldName"] in fields
        for f in json.loads(obj["attributes"].get("fieldFormatMap", "{}")):
            assert f in fields, f"{obj['id']}: field format for unmapped {f}"
        return
    for ref_name, field_name, aggregatable in _uses(obj):
        assert ref_name in refs, f"{obj['id']} uses {field_name} without a data view reference"
        view = refs[ref_name]["id"]
        assert field_name in FIELDS[view], f"{obj['id']}: {field_name} is not mapped in {view}"
        if aggregatable:
            assert FIELDS[view][field_name] not in NOT_AGGREGATABLE, (
                f"{obj['id']}: {field_name} ({FIELDS[view][field_name]}) cannot be aggregated or sorted"
            )


def test_field_extraction_sees_what_it_must():
    # guard against a checker that silently checks nothing
    by_id = {o["id"]: o for o in objects()}
    assert ("kibanaSavedObjectMeta.searchSourceJSON.index", "kibana.alert.severity", False) in _uses(
        by_id["socpipe-open-high-critical"]
    )
    assert any(f == "socpipe.suppression.count" for _, f, _ in _uses(by_id["socpipe-vis-rule-noise"]))
    assert {f for _, f, _ in _uses(by_id["socpipe-vis-agency-control"])} == {
        "socpipe.agency.name",
        "socpipe.agency.tier",
    }


def test_all_references_resolve():
    objs = objects()
    ids = {(o["type"], o["id"]) for o in objs}
    assert len(ids) == len(objs), "duplicate saved object ids"
    for o in objs:
        names = [r["name"] for r in o["references"]]
        assert len(names) == len(set(names)), o["id"]
        for r in o["references"]:
            assert (r["type"], r["id"]) in ids, f"{o['id']} references missing {r['type']}/{r['id']}"
        attrs = o["attributes"]
        wanted = []
        src = json.loads(attrs.get("kibanaSavedObjectMeta", {}).get("searchSourceJSON", "{}"))
        if "indexRefName" in src:
            wanted.append(src["indexRefName"])
        if "panelsJSON" in attrs:
            panels = json.loads(attrs["panelsJSON"])
            assert panels, o["id"]
            for p in panels:
                wanted.append(p["panelRefName"])
                ref = next(r for r in o["references"] if r["name"] == p["panelRefName"])
                assert ref["type"] == p["type"]
        if "visState" in attrs:
            wanted += [c["indexPatternRefName"] for c in json.loads(attrs["visState"])["params"].get("controls", [])]
        assert set(wanted) <= set(names), f"{o['id']}: unresolved {set(wanted) - set(names)}"


def _fields_on(dashboard_id: str) -> set[str]:
    by_id = {o["id"]: o for o in objects()}
    used = set()
    for ref in by_id[dashboard_id]["references"]:
        used |= {f for _, f, _ in _uses(by_id[ref["id"]])}
    return used


def test_dashboards_show_what_the_soc_asked_for():
    assert {
        "kibana.alert.severity",
        "@timestamp",
        "kibana.alert.rule.name",
        "socpipe.agency.name",
        "source.ip",
        "threat.tactic.name",
    } <= _fields_on("socpipe-soc-overview")
    assert {"socpipe.agency.name", "host.name", "user.name"} <= _fields_on("socpipe-agency-drilldown")
    assert {"socpipe.suppression.count", "kibana.alert.rule.name", "socpipe.workflow.closing_reason"} <= _fields_on(
        "socpipe-rule-noise"
    )
    titles = {o["attributes"]["title"] for o in objects() if o["type"] == "search"}
    assert {"Open high and critical alerts", "My alerts", "Alerts by agency"} <= titles


def test_install_adapts_prefix_triage_link_and_analysts():
    objs = load_objects(KIBANA_DIR, prefix="soc2", triage_url="https://triage.soc.local/", analysts=("an",))
    views = {o["id"]: o["attributes"] for o in objs if o["type"] == "index-pattern"}
    assert views[ALERTS_VIEW]["title"] == "soc2-alerts-*" and views[EVENTS_VIEW]["title"] == "soc2-events-*"
    assert "https://triage.soc.local/alerts/{{value}}" in views[ALERTS_VIEW]["fieldFormatMap"]
    assert TRIAGE_URL not in views[ALERTS_VIEW]["fieldFormatMap"]
    mine = [o for o in objs if o["id"] == "socpipe-my-alerts-an"]
    source = json.loads(mine[0]["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
    assert source["query"]["query"].startswith('socpipe.workflow.assignee : "an"')
