"""Incidents over the real Elasticsearch API: one attack's four alerts become one incident (timeline,
highest severity, tactics in kill-chain order); closing the incident from the CLI closes its
alerts, with history on both; another agency's alert from the same address stays apart."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from detectors.alerts import build_alert
from detectors.sigma.detection import make_detection
from detectors.sigma.model import RuleMeta
from pipeline.cli import main
from pipeline.elastic import AlertIndexer
from pipeline.elastic.incidents import IncidentStore
from tests.integration.alerts_support import cleanup, es_env  # noqa: F401  (fixture)

pytestmark = pytest.mark.integration
T0 = 1_795_000_000.0
IP = "198.51.100.23"


def alert(rule: str, level: str, tags: list[str], t: float, agency="so-tc", user=None, ip=IP):
    ev = {
        "@timestamp": "2026-11-19T08:00:00.000Z",
        "source.ip": ip,
        "host.name": "web01",
        "organization.id": agency,
        **({"user.name": user} if user else {}),
    }
    meta = RuleMeta(id=f"00000000-0000-4000-8000-{abs(hash(rule)) % 10**12:012d}", title=rule, level=level, tags=tags)
    return build_alert(make_detection(meta, "event_count", {"source.ip": ip}, [T0 + t, T0 + t + 30], [ev], 5, T0 + t))


def test_four_alerts_one_incident_and_closing_it_closes_them(es_env, monkeypatch):  # noqa: F811
    cfg, es = es_env
    docs = [
        alert("Web Directory Brute Force", "medium", ["attack.reconnaissance", "attack.t1595"], 0),
        alert("SSH Brute Force", "high", ["attack.credential_access", "attack.t1110"], 120),
        alert("SSH Login After Failures", "critical", ["attack.initial_access", "attack.t1078"], 600, user="deploy"),
        alert("Sudo Root Shell", "high", ["attack.privilege_escalation", "attack.t1548.003"], 900, user="deploy"),
        alert("SSH Brute Force", "high", ["attack.credential_access"], 300, agency="so-yte"),
    ]
    AlertIndexer(es, prefix=cfg.index_prefix, refresh="wait_for").index(docs)
    store = IncidentStore(es, cfg.index_prefix, window_s=3600)
    try:
        got = [store.attach(d["_id"], {k: v for k, v in d.items() if k != "_id"}) for d in docs]
        assert got[0] == got[1] == got[2] == got[3] != got[4] and got[0] is not None
        assert store.attach(docs[1]["_id"], {k: v for k, v in docs[1].items() if k != "_id"}) == got[0]  # replay
        es.indices.refresh(index=f"{cfg.index_prefix}-incidents-*")
        inc = store.get(got[0]).source
        i = inc["socpipe"]["incident"]
        assert i["alert_count"] == 4 and i["alerts"] == [d["_id"] for d in docs[:4]]
        assert i["severity"] == "critical" and inc["event"]["severity"] == 99
        assert i["tactics"] == ["Reconnaissance", "Initial Access", "Privilege Escalation", "Credential Access"]
        assert f"source.ip={IP}" in i["entity_keys"] and "user.name=deploy" in i["entity_keys"]
        assert [e["rule"] for e in i["timeline"]] == [d["rule"]["name"] for d in docs[:4]]

        monkeypatch.setenv("SOCPIPE_ES_URL", cfg.url)
        runner = CliRunner()
        out = runner.invoke(main, ["incidents", "list", "--prefix", cfg.index_prefix])
        assert out.exit_code == 0 and out.output.splitlines()[0].startswith("ID") and len(out.output.splitlines()) == 3
        out = runner.invoke(
            main,
            [
                "incidents",
                "close",
                got[0][:10],
                "--prefix",
                cfg.index_prefix,
                "--reason",
                "true_positive",
                "--as",
                "lan",
            ],
        )
        assert out.exit_code == 0, out.output
        assert "closed" in out.output and "its 4 alerts" in out.output
        for d in docs[:4]:
            shown = runner.invoke(main, ["alerts", "show", d["_id"], "--prefix", cfg.index_prefix])
            wf = json.loads(shown.output)["socpipe"]["workflow"]
            assert wf["status"] == "closed" and wf["closing_reason"] == "true_positive", wf
            assert wf["history"][-1]["actor"] == "lan" and f"from incident {got[0]}" in json.dumps(wf)
        other = runner.invoke(main, ["alerts", "show", docs[4]["_id"], "--prefix", cfg.index_prefix])
        assert json.loads(other.output)["socpipe"]["workflow"]["status"] == "open"
        hist = store.get(got[0]).source["socpipe"]["workflow"]["history"]
        assert hist[-1]["action"] == "close" and hist[-1]["actor"] == "lan"
        # a closed incident takes no new alerts: the next one of the attack opens a new incident
        later = alert("Web Webshell", "critical", ["attack.persistence"], 1200)
        AlertIndexer(es, prefix=cfg.index_prefix, refresh="wait_for").index([later])
        assert store.attach(later["_id"], {k: v for k, v in later.items() if k != "_id"}) not in (got[0], None)
    finally:
        for name in es.indices.get(
            index=f"{cfg.index_prefix}-incidents-*", ignore_unavailable=True, allow_no_indices=True
        ):
            es.indices.delete(index=name)


def _incidents(es, prefix: str) -> dict[str, dict]:
    es.indices.refresh(index=f"{prefix}-incidents-*")
    hits = es.search(index=f"{prefix}-incidents-*", size=100)["hits"]["hits"]
    return {h["_id"]: h["_source"] for h in hits}


def _comparable(inc: dict) -> dict:
    return {**inc, "socpipe": {k: v for k, v in inc["socpipe"].items() if k != "workflow"}}


def test_attach_many_writes_what_attach_writes_and_merges_again_after_a_conflict(es_env):  # noqa: F811
    """The detector attaches a batch's alerts with one read and one write per incident: the incidents
    are those of attaching them one by one; an analyst's write in between is kept, not overwritten."""
    cfg, es = es_env
    docs = [
        alert("Web Directory Brute Force", "medium", ["attack.reconnaissance"], 0),
        alert("SSH Brute Force", "high", ["attack.credential_access"], 120),
        alert("SSH Brute Force", "high", ["attack.credential_access"], 300, agency="so-yte"),
        alert("SSH Login After Failures", "critical", ["attack.initial_access"], 600, user="deploy"),
        alert("Web Webshell", "critical", ["attack.persistence"], 9000, ip="203.0.113.99"),
    ]
    items = [(d["_id"], {k: v for k, v in d.items() if k != "_id"}) for d in docs]
    try:
        sequential = IncidentStore(es, cfg.index_prefix, window_s=3600)
        one_by_one = [sequential.attach(*i) for i in items]
        expected = {k: _comparable(v) for k, v in _incidents(es, cfg.index_prefix).items()}
        assert len(expected) == 3 and one_by_one[0] == one_by_one[1] == one_by_one[3] and one_by_one[0] is not None
        for name in es.indices.get(index=f"{cfg.index_prefix}-incidents-*"):
            es.indices.delete(index=name)

        store = IncidentStore(es, cfg.index_prefix, window_s=3600)
        calls: list[str] = []
        real_create, real_index = es.create, es.index

        def counted(name: str, real: Any) -> Any:
            def call(**kw: Any) -> Any:
                calls.append(name)
                return real(**kw)

            return call

        # only the calls the store may make: any other one fails the test
        client = SimpleNamespace(
            get=es.get, search=es.search, create=counted("create", real_create), index=counted("index", real_index)
        )
        store.es = client  # type: ignore[assignment]  # a stand-in for the client, with its four calls
        assert store.attach_many(items) == one_by_one
        assert calls == ["create"] * 3  # one write per incident, not per alert
        assert {k: _comparable(v) for k, v in _incidents(es, cfg.index_prefix).items()} == expected

        # the next batch: an analyst assigns the incident between the detector's read and its write
        more = alert("Sudo Root Shell", "high", ["attack.privilege_escalation"], 900, user="deploy")
        AlertIndexer(es, prefix=cfg.index_prefix, refresh="wait_for").index([more])

        def racing_index(**kw):
            if not calls or calls[-1] != "raced":
                calls.append("raced")
                cur = es.get(index=kw["index"], id=kw["id"])
                src = cur["_source"]
                src["socpipe"]["workflow"]["assignee"] = "lan"
                real_index(
                    index=kw["index"],
                    id=kw["id"],
                    document=src,
                    if_seq_no=cur["_seq_no"],
                    if_primary_term=cur["_primary_term"],
                )
            return real_index(**kw)

        client.index = racing_index
        got = store.attach_many([(more["_id"], {k: v for k, v in more.items() if k != "_id"})])
        assert got == [one_by_one[0]]
        inc = _incidents(es, cfg.index_prefix)[one_by_one[0]]
        assert inc["socpipe"]["workflow"]["assignee"] == "lan"  # the analyst's write survived
        assert more["_id"] in inc["socpipe"]["incident"]["alerts"] and inc["socpipe"]["incident"]["alert_count"] == 4
    finally:
        for name in es.indices.get(
            index=f"{cfg.index_prefix}-incidents-*", ignore_unavailable=True, allow_no_indices=True
        ):
            es.indices.delete(index=name)
