"""Kibana saved objects against what the real Elasticsearch says about our indices (`_field_caps`).

The unit test checks saved objects against our mapping definitions; this one asks the server: the
templates are installed, one daily index of each kind is created from them, and every field a saved
object filters on, shows, sorts or aggregates must exist there, be searchable, and be aggregatable
where it is sorted or aggregated. A field the server maps differently from what we believe (a
multi-field missing, `text` where Kibana needs `keyword`) fails here.
"""

from __future__ import annotations

from pipeline.elastic.kibana.saved import ALERTS_VIEW, EVENTS_VIEW, INCIDENTS_VIEW
from tests.integration.alerts_support import es_env  # noqa: F401  (fixture)
from tests.unit.test_kibana_objects import _uses, objects


def test_every_saved_object_field_is_searchable_and_aggregatable_where_needed(es_env):
    cfg, es = es_env
    prefix = cfg.index_prefix
    patterns = {
        ALERTS_VIEW: f"{prefix}-alerts-*",
        EVENTS_VIEW: f"{prefix}-events-*",
        INCIDENTS_VIEW: f"{prefix}-incidents-*",
    }
    for pattern in patterns.values():
        es.indices.create(index=pattern.replace("*", "2026.01.01"))
    caps = {}
    for view, pattern in patterns.items():
        fields = es.field_caps(index=pattern, fields="*")["fields"]
        caps[view] = {
            name: (any(t["searchable"] for t in types.values()), any(t["aggregatable"] for t in types.values()))
            for name, types in fields.items()
        }
    assert caps[ALERTS_VIEW]["kibana.alert.severity"] == (True, True)  # the checker sees the server's answer
    checked = 0
    problems = []
    for obj in objects():
        refs = {r["name"]: r["id"] for r in obj["references"]}
        if obj["type"] == "index-pattern":
            view = obj["id"]
            if obj["attributes"]["timeFieldName"] not in caps[view]:
                problems.append(f"{view}: time field {obj['attributes']['timeFieldName']} not in the index")
            continue
        for ref_name, field, aggregatable in _uses(obj):
            view = refs[ref_name]
            got = caps[view].get(field)
            checked += 1
            if got is None:
                problems.append(f"{obj['id']}: {field} does not exist in {patterns[view]}")
            elif not got[0]:
                problems.append(f"{obj['id']}: {field} is not searchable")
            elif aggregatable and not got[1]:
                problems.append(f"{obj['id']}: {field} is sorted or aggregated but not aggregatable")
    assert checked > 50
    assert not problems, "\n".join(problems)
