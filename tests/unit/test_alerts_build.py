"""build_alert / to_nested / index names: pure behaviour, plus 'every field we emit is mapped'."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.alerts import (
    AgencyInfo,
    alert_index_name,
    build_alert,
    event_index_name,
    threat_from_tags,
    to_flat,
    to_nested,
)
from detectors.anomaly.finding import AnomalyFinding
from detectors.common.severity import Severity
from detectors.common.times import to_epoch
from detectors.sigma.detection import make_detection
from detectors.sigma.model import RuleMeta
from pipeline.elastic.indexer import error_reason, item_outcome
from pipeline.elastic.mappings import ALERT_PROPERTIES, leaf_fields

NOW = "2026-11-28T09:00:00.000Z"


def _detection(
    events=None, level="high", tags=("attack.credential_access", "attack.t1110.001", "attack.g0032"), group=None
):
    meta = RuleMeta(
        id="rule-1",
        title="SSH brute force",
        description="many failures",
        level=level,
        tags=list(tags),
        references=["https://ref"],
        falsepositives=["scanners"],
    )
    events = (
        events
        if events is not None
        else [
            {
                "@timestamp": "2026-11-28T01:02:03.123Z",
                "source.ip": "203.0.113.7",
                "user.name": "root",
                "host.name": "web01",
                "organization.id": "so-tc",
                "event.dataset": "system.auth",
            }
        ]
    )
    return make_detection(
        meta,
        "event_count",
        group or {"source.ip": "203.0.113.7"},
        [1795000000.0, 1795000060.5],
        events,
        12,
        1795000000.0,
    )


def test_to_nested_nests_and_merges():
    assert to_nested({"source.ip": "1.2.3.4", "source.port": 22, "user": {"name": "x"}, "user.id": "1"}) == {
        "source": {"ip": "1.2.3.4", "port": 22},
        "user": {"name": "x", "id": "1"},
    }


@pytest.mark.parametrize("order", list(itertools.permutations(["process", "process.pid", "process.name"])))
def test_to_nested_keeps_scalar_and_children_whatever_the_order(order):
    flat = {"process": "sshd", "process.pid": 7, "process.name": "sshd"}
    assert to_nested({k: flat[k] for k in order}) == {"process": {"value": "sshd", "pid": 7, "name": "sshd"}}


@given(
    st.dictionaries(
        st.from_regex(r"[a-z]{1,3}(\.[a-z]{1,3}){0,3}", fullmatch=True),
        st.integers() | st.text(max_size=5),
        max_size=12,
    )
)
def test_to_nested_loses_no_value(flat):
    values = sorted(map(repr, flat.values()))
    assert sorted(map(repr, to_flat(to_nested(flat)).values())) == values


def test_alert_from_detection_has_deterministic_id_time_and_index():
    det = _detection()
    a = build_alert(det, now=NOW)
    b = build_alert(det, now="2027-01-01T00:00:00.000Z")
    assert a["_id"] == b["_id"] == det.detection_id
    assert a["@timestamp"] == b["@timestamp"] == "2026-11-18T11:07:40.500Z"  # last event, not the wall clock
    assert alert_index_name(a, "x") == alert_index_name(b, "x") == "x-alerts-2026.11.18"
    assert a["event"]["created"] == NOW and a["event"]["kind"] == "alert"
    assert a["event"]["start"] == "2026-11-18T11:06:40.000Z"
    assert a["event"]["severity"] == 73 and a["kibana"]["alert"]["severity"] == "high"
    assert a["rule"]["name"] == "SSH brute force" and a["rule"]["reference"] == ["https://ref"]
    assert a["socpipe"]["workflow"]["status"] == "open" and a["kibana"]["alert"]["workflow_status"] == "open"
    assert a["socpipe"]["suppression"]["count"] == 0
    assert a["socpipe"]["detection"]["count"] == 12
    assert a["source"]["ip"] == "203.0.113.7" and a["user"]["name"] == "root" and a["host"]["name"] == "web01"
    # single agency in the evidence becomes the alert's organization
    assert a["organization"] == {"id": "so-tc"} and a["socpipe"]["agency"]["id"] == "so-tc"


def test_agency_info_wins_and_informational_maps_to_low():
    a = build_alert(_detection(level="informational"), agency=AgencyInfo("so-yt", "Sở Y tế", "2"), now=NOW)
    assert a["organization"] == {"id": "so-yt", "name": "Sở Y tế"}
    assert a["socpipe"]["agency"] == {"id": "so-yt", "name": "Sở Y tế", "tier": "2"}
    assert a["event"]["severity"] == 1 and a["kibana"]["alert"]["severity"] == "low"
    assert a["socpipe"]["level"] == "informational"


def test_threat_from_attack_tags():
    t = threat_from_tags(["attack.credential_access", "attack.t1110.001", "attack.T1110", "attack.g0032", "cve.2021"])
    assert t["framework"] == "MITRE ATT&CK"
    assert t["tactic"]["id"] == ["TA0006"] and t["tactic"]["name"] == ["Credential Access"]
    assert t["technique"]["id"] == ["T1110"]
    assert t["technique"]["subtechnique"]["id"] == ["T1110.001"]
    assert threat_from_tags(["attack.g0032", "foo"]) == {}


def test_bad_entity_values_are_dropped_not_fatal():
    events = [
        {"@timestamp": "2026-11-28T01:02:03.123Z", "source.ip": "not-an-ip", "source.port": "99999"},
        {"@timestamp": "2026-11-28T01:02:04.123Z", "source.ip": "2001:db8::1", "source.port": "2222"},
    ]
    a = build_alert(_detection(events=events, group={"user.name": "x"}), now=NOW)
    assert a["source"]["ip"] == "2001:db8::1" and a["source"]["port"] == 2222


def test_evidence_is_bounded():
    events = [
        {"@timestamp": "2026-11-28T01:02:03.123Z", "message": "x" * 10000, "n": i, **{f"f{j}": j for j in range(300)}}
        for i in range(50)
    ]
    a = build_alert(_detection(events=events), now=NOW)
    ev = a["socpipe"]["evidence"]
    assert len(ev) == 20  # the Sigma engine caps at 20 already; we cap again whatever we are given
    assert len(ev[0]["message"]) == 2048
    assert all(len(to_flat(e)) <= 128 for e in ev)


def _finding(**kw: Any) -> AnomalyFinding:
    base: dict[str, Any] = dict(
        finding_id="f-1",
        model="auth-rate",
        model_version="3",
        profile="auth",
        entity={"source.ip": "198.51.100.4", "organization.id": "so-gd"},
        start_ts=to_epoch("2026-11-28T01:00:00.000Z"),
        end_ts=to_epoch("2026-11-28T01:01:00.000Z"),
        score=0.91,
        threshold=0.7,
        anomalous=True,
        shadow=False,
        severity=Severity.HIGH,
        top_features=[("failures", 40.0, 2.0, 9.5)],
        evidence=[],
        event_count=44,
    )
    base.update(kw)
    return AnomalyFinding(**base)


def test_alert_from_anomaly_finding():
    a = build_alert(_finding(), now=NOW)
    assert a["_id"] == "f-1" and a["@timestamp"] == "2026-11-28T01:01:00.000Z"
    assert a["rule"]["ruleset"] == "anomaly" and a["socpipe"]["kind"] == "anomaly"
    assert a["socpipe"]["anomaly"]["top_features"][0] == {
        "name": "failures",
        "value": 40.0,
        "baseline": 2.0,
        "deviation": 9.5,
    }
    assert a["source"]["ip"] == "198.51.100.4" and a["organization"]["id"] == "so-gd"
    assert a["kibana"]["alert"]["severity"] == "high"


def _leaves(doc, prefix=""):
    for k, v in doc.items():
        if isinstance(v, dict):
            yield from _leaves(v, f"{prefix}{k}.")
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for x in v:
                yield from _leaves(x, f"{prefix}{k}.")
        elif v == []:
            continue  # an empty list says nothing about its type
        else:
            yield f"{prefix}{k}"


@pytest.mark.parametrize(
    "doc",
    [
        build_alert(_detection(), now=NOW),
        build_alert(_finding(), now=NOW),
        build_alert(
            _finding(
                reasons=[
                    {"parameter": "id", "property": "charset", "points": 5.0, "observed": "'", "expected": "digits"}
                ]
            ),
            now=NOW,
        ),
    ],
    ids=["sigma", "anomaly", "anomaly-request"],
)
def test_every_emitted_field_is_mapped(doc):
    mapped = leaf_fields(ALERT_PROPERTIES)
    flattened = [f for f, t in mapped.items() if t == "flattened"]
    for path in _leaves({k: v for k, v in doc.items() if k != "_id"}):
        if any(path.startswith(f + ".") for f in flattened):
            continue
        assert path in mapped, f"{path} is not in the alert mapping"


def test_index_names_need_a_timestamp():
    assert event_index_name({"@timestamp": "2026-01-02T23:59:59.999+07:00"}) == "socpipe-events-2026.01.02"
    with pytest.raises(ValueError):
        alert_index_name({"@timestamp": "yesterday"})


@pytest.mark.parametrize(
    "status,outcome",
    [
        (201, "created"),
        (200, "created"),
        (409, "duplicate"),
        (429, "retry"),
        (503, "retry"),
        (500, "retry"),
        (400, "rejected"),
        (404, "rejected"),
    ],
)
def test_bulk_item_classification(status, outcome):
    assert item_outcome(status) == outcome


def test_error_reason_includes_cause():
    r = error_reason(
        {
            "type": "document_parsing_exception",
            "reason": "failed to parse [event.severity]",
            "caused_by": {"type": "illegal_argument_exception", "reason": "For input string"},
        }
    )
    assert r.startswith("document_parsing_exception: failed to parse [event.severity]") and "illegal_argument" in r
