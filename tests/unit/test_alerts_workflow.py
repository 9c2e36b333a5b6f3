"""Workflow transitions, permissions, filters: pure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from detectors.alerts.build import new_workflow
from pipeline.elastic.triage import AlertFilter, parse_version, resolve_time
from pipeline.triage.workflow import Change, PermissionDenied, TransitionError, apply_change, check_permission

AT = "2026-11-28T09:00:00.000Z"


def wf_after(*changes):
    wf = new_workflow(AT)
    for c in changes:
        wf = apply_change(wf, c)
    return wf


def test_ack_assigns_to_acknowledger_unless_assigned():
    assert wf_after(Change("ack", "an", AT))["assignee"] == "an"
    wf = wf_after(Change("assign", "lead", AT, assignee="binh"), Change("ack", "an", AT))
    assert wf["assignee"] == "binh" and wf["acknowledged_by"] == "an" and wf["status"] == "acknowledged"


@pytest.mark.parametrize(
    "path,bad",
    [
        ([], Change("reopen", "x", AT)),
        ([Change("ack", "x", AT)], Change("ack", "y", AT)),
        ([Change("close", "x", AT, reason="benign")], Change("close", "y", AT, reason="benign")),
        ([Change("close", "x", AT, reason="benign")], Change("ack", "y", AT)),
        ([Change("close", "x", AT, reason="benign")], Change("assign", "y", AT, assignee="z")),
        ([], Change("close", "x", AT)),  # no reason
        ([], Change("close", "x", AT, reason="because")),
        ([], Change("note", "x", AT, text="   ")),
        ([], Change("delete", "x", AT)),
        ([], Change("ack", "", AT)),
    ],
)
def test_invalid_transitions_raise_and_change_nothing(path, bad):
    wf = wf_after(*path)
    snapshot = repr(wf)
    with pytest.raises(TransitionError):
        apply_change(wf, bad)
    assert repr(wf) == snapshot


def test_reopen_clears_closing_fields_and_history_records_everything():
    wf = wf_after(Change("close", "an", AT, reason="true_positive", text="confirmed"), Change("reopen", "lead", AT))
    assert wf["status"] == "open" and "closing_reason" not in wf and "closed_at" not in wf
    assert [(h["action"], h.get("from_status"), h.get("to_status")) for h in wf["history"]] == [
        ("create", None, "open"),
        ("close", "open", "closed"),
        ("reopen", "closed", "open"),
    ]
    assert "reason=true_positive" in wf["history"][1]["detail"]
    assert wf["notes"] == [{"at": AT, "author": "an", "text": "confirmed"}]


@pytest.mark.parametrize(
    "role,change,allowed",
    [
        ("read-only", Change("note", "r", AT, text="x"), False),
        ("analyst", Change("ack", "a", AT), True),
        ("analyst", Change("close", "a", AT, reason="benign"), True),
        ("analyst", Change("assign", "a", AT, assignee="a"), True),
        ("analyst", Change("assign", "a", AT, assignee="b"), False),
        ("analyst", Change("reopen", "a", AT), False),
        ("lead", Change("reopen", "l", AT), True),
        ("lead", Change("assign", "l", AT, assignee="b"), True),
        ("intruder", Change("ack", "x", AT), False),
    ],
)
def test_roles(role, change, allowed):
    if allowed:
        check_permission(role, change)
    else:
        with pytest.raises(PermissionDenied):
            check_permission(role, change)


def test_filter_query_and_times():
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    q = AlertFilter(status=["open"], severity=["high", "critical"], agency=["so-tc"], since="24h").query(now)
    f = q["bool"]["filter"]
    assert {"terms": {"socpipe.workflow.status": ["open"]}} in f
    assert {"terms": {"kibana.alert.severity": ["high", "critical"]}} in f
    assert {"range": {"@timestamp": {"gte": "2026-11-27T12:00:00.000Z"}}} in f
    assert AlertFilter().query() == {"match_all": {}}
    assert resolve_time("2026-11-28T01:00:00+07:00") == "2026-11-27T18:00:00.000Z"
    with pytest.raises(ValueError):
        resolve_time("last tuesday")
    assert parse_version("12:3") == (12, 3) and parse_version('"7:1"') == (7, 1) and parse_version("") is None
