"""Triage against the real Elasticsearch: workflow, history, optimistic concurrency."""

from __future__ import annotations

import threading

import pytest

from detectors.alerts import build_alert
from pipeline.elastic import AlertIndexer
from pipeline.elastic.triage import AlertConflict, AlertFilter, AlertNotFound, TriageService
from pipeline.triage.workflow import Change, TransitionError
from tests.integration.alerts_support import detection, es_env  # noqa: F401  (fixture)

pytestmark = pytest.mark.integration

AT = "2026-11-28T09:00:00.000Z"


@pytest.fixture
def alerts(es_env):  # noqa: F811
    cfg, es = es_env
    docs = [
        build_alert(detection(user, 1795000000.0 + i * 60, ip=f"203.0.113.{i + 1}"), now=AT)
        for i, user in enumerate(["root", "admin", "oracle"])
    ]
    result = AlertIndexer(es, prefix=cfg.index_prefix, refresh="wait_for").index(docs)
    assert len(result.created) == 3
    return TriageService(es, prefix=cfg.index_prefix), docs


def test_workflow_open_ack_close_reopen_with_history_and_notes(alerts):
    svc, docs = alerts
    aid = docs[0]["_id"]
    svc.change(aid, Change("ack", "an", AT, text="looking"))
    svc.change(aid, Change("close", "an", AT, reason="false_positive", text="scanner of the ISP"))
    rec = svc.get(aid)
    wf = rec.source["socpipe"]["workflow"]
    assert wf["status"] == "closed" and wf["closing_reason"] == "false_positive" and wf["assignee"] == "an"
    assert rec.source["kibana"]["alert"]["workflow_status"] == "closed"
    assert [n["text"] for n in wf["notes"]] == ["looking", "scanner of the ISP"]
    with pytest.raises(TransitionError):
        svc.change(aid, Change("ack", "binh", AT))
    svc.change(aid, Change("reopen", "lead", AT))
    wf = svc.get(aid).source["socpipe"]["workflow"]
    assert wf["status"] == "open" and wf.get("closing_reason") is None
    assert [(h["action"], h["outcome"]) for h in wf["history"]] == [
        ("create", "applied"),
        ("ack", "applied"),
        ("close", "applied"),
        ("reopen", "applied"),
    ]

    closed = svc.list(AlertFilter(status=["open"], severity=["high"]))
    assert {r.id for r in closed} == {d["_id"] for d in docs}
    svc.change(docs[1]["_id"], Change("close", "an", AT, reason="benign"))
    assert {r.id for r in svc.list(AlertFilter(status=["closed"]))} == {docs[1]["_id"]}
    assert {r.id for r in svc.list(AlertFilter(rule="brute force", since="2026-11-18T11:07:00Z"))} == {
        docs[1]["_id"],
        docs[2]["_id"],
    }


def test_concurrent_ack_and_close_one_wins_other_conflicts_history_shows_both(alerts):
    svc, docs = alerts
    aid = docs[0]["_id"]
    seen = svc.get(aid).version  # both analysts looked at the same version
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def act(name: str, change: Change) -> None:
        barrier.wait()
        try:
            outcomes[name] = TriageService(svc.es, prefix=svc.prefix).change(aid, change, expected=seen)
        except AlertConflict as exc:
            outcomes[name] = exc

    threads = [
        threading.Thread(target=act, args=("an", Change("ack", "an", AT))),
        threading.Thread(target=act, args=("binh", Change("close", "binh", AT, reason="benign"))),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    conflicts = [n for n, o in outcomes.items() if isinstance(o, AlertConflict)]
    winners = [n for n, o in outcomes.items() if not isinstance(o, AlertConflict)]
    assert len(conflicts) == 1 and len(winners) == 1, outcomes
    wf = svc.get(aid).source["socpipe"]["workflow"]
    assert wf["status"] == ("acknowledged" if winners == ["an"] else "closed")
    attempts = {(h["actor"], h["outcome"]) for h in wf["history"] if h["action"] != "create"}
    assert attempts == {(winners[0], "applied"), (conflicts[0], "conflict")}


def test_unversioned_race_still_never_overwrites(alerts):
    svc, docs = alerts
    aid = docs[2]["_id"]
    barrier = threading.Barrier(4)
    errors: list[Exception] = []

    def note(i: int) -> None:
        barrier.wait()
        try:
            TriageService(svc.es, prefix=svc.prefix).change(aid, Change("note", f"a{i}", AT, text=f"note {i}"))
        except AlertConflict as exc:
            errors.append(exc)

    threads = [threading.Thread(target=note, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    wf = svc.get(aid).source["socpipe"]["workflow"]
    # every note that was reported as applied is there: a conflict is reported, never a silent loss
    assert len(wf["notes"]) == 4 - len(errors)
    assert sum(h["outcome"] == "conflict" for h in wf["history"]) == len(errors)


def test_unknown_alert(alerts):
    svc, _ = alerts
    with pytest.raises(AlertNotFound):
        svc.change("nope", Change("ack", "an", AT))


def test_cli_list_show_ack_close_and_stale_version(alerts, es_url, monkeypatch):
    import json

    from click.testing import CliRunner

    from pipeline.cli import main

    svc, docs = alerts
    monkeypatch.setenv("SOCPIPE_ES_URL", es_url)
    run = CliRunner()
    base = ["--prefix", svc.prefix]
    listed = run.invoke(main, ["alerts", "list", *base, "--status", "open", "--severity", "high", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert {r["_id"] for r in rows} == {d["_id"] for d in docs}
    aid, version = rows[0]["_id"], rows[0]["_version"]

    ok = run.invoke(main, ["alerts", "ack", *base, aid, "--as", "an", "--if-version", version, "--note", "mine"])
    assert ok.exit_code == 0, ok.output
    assert "acknowledged" in ok.output and ok.output.rstrip().endswith(" an")
    stale = run.invoke(
        main, ["alerts", "close", *base, aid, "--as", "binh", "--reason", "benign", "--if-version", version]
    )
    assert stale.exit_code == 3 and "conflict" in stale.output
    bad = run.invoke(main, ["alerts", "ack", *base, aid, "--as", "binh"])
    assert bad.exit_code == 2 and "not allowed" in bad.output
    shown = json.loads(run.invoke(main, ["alerts", "show", *base, aid]).output)
    hist = [(h["actor"], h["action"], h["outcome"]) for h in shown["socpipe"]["workflow"]["history"]]
    assert hist[1:] == [("an", "ack", "applied"), ("binh", "close", "conflict")]
    assert run.invoke(main, ["alerts", "note", *base, aid, "checked the host", "--as", "an"]).exit_code == 0
    assert run.invoke(main, ["alerts", "show", *base, "missing-id"]).exit_code == 4
