"""AlertIndexer and `socpipe es setup` against the real Elasticsearch (unique prefix per test)."""

from __future__ import annotations

import copy

import pytest
from click.testing import CliRunner

from detectors.alerts import AgencyInfo, alert_index_name, build_alert
from pipeline.cli import main
from pipeline.config import ElasticsearchConfig
from pipeline.elastic import AlertIndexer, EventIndexer, connect
from tests.integration.alerts_support import cleanup, detection, es_env  # noqa: F401  (fixture)
from tests.integration.conftest import es_config, free_port

pytestmark = pytest.mark.integration


def test_alerts_are_created_once_and_searchable_nested(es_env):
    cfg, es = es_env
    indexer = AlertIndexer(es, prefix=cfg.index_prefix, refresh="wait_for")
    docs = [
        build_alert(detection("root", 1795000000.0 + i * 3600), AgencyInfo("so-tc", "Sở TC", "province"))
        for i in range(3)
    ]
    first = indexer.index(docs)
    assert sorted(first.created) == sorted(d["_id"] for d in docs)
    assert not first.retry and not first.rejected and first.acknowledged

    replay = indexer.index(copy.deepcopy(docs))
    assert replay.created == [] and sorted(replay.duplicates) == sorted(first.created)

    hits = es.search(
        index=f"{cfg.index_prefix}-alerts-*",
        query={
            "bool": {
                "filter": [
                    {"term": {"socpipe.agency.tier": "province"}},
                    {"term": {"threat.tactic.name": "Credential Access"}},
                    {"term": {"kibana.alert.severity": "high"}},
                    {"term": {"socpipe.workflow.status": "open"}},
                ]
            }
        },
        size=10,
    )
    assert hits["hits"]["total"]["value"] == 3
    by_id = {h["_id"]: h for h in hits["hits"]["hits"]}
    for doc in docs:
        hit = by_id[doc["_id"]]
        assert hit["_index"] == alert_index_name(doc, cfg.index_prefix)
        assert hit["_source"]["source"]["ip"] == "203.0.113.7"
        assert hit["_source"]["organization"] == {"id": "so-tc", "name": "Sở TC"}


def test_mapping_conflict_is_rejected_with_reason_and_others_still_land(es_env):
    cfg, es = es_env
    indexer = AlertIndexer(es, prefix=cfg.index_prefix)
    good = build_alert(detection("alice", 1795000000.0))
    bad = build_alert(detection("bob", 1795000100.0))
    bad["event"]["severity"] = "very high"  # long field
    stray = build_alert(detection("carol", 1795000200.0))
    stray["socpipe"]["surprise"] = 1  # strict mapping
    result = indexer.index([good, bad, stray])
    assert result.created == [good["_id"]]
    reasons = dict((d["_id"], r) for d, r in result.rejected)
    assert set(reasons) == {bad["_id"], stray["_id"]}
    assert "event.severity" in reasons[bad["_id"]]
    assert "surprise" in reasons[stray["_id"]]
    assert result.retry == [] and result.acknowledged


def test_unreachable_server_returns_everything_for_retry(es_env):
    cfg, _ = es_env
    dead = connect(ElasticsearchConfig(url=f"http://127.0.0.1:{free_port()}", request_timeout_s=1))
    waits: list[float] = []
    indexer = AlertIndexer(dead, prefix=cfg.index_prefix, max_retries=2, sleep=waits.append)
    docs = [build_alert(detection("root", 1795000000.0))]
    result = indexer.index(docs)
    assert result.retry == docs and not result.acknowledged
    assert result.created == [] and result.rejected == []
    assert len(waits) == 2 and waits[1] > waits[0]


def test_suppressed_repeats_count_on_the_open_alert(es_env):
    cfg, es = es_env
    indexer = AlertIndexer(es, prefix=cfg.index_prefix, refresh="wait_for")
    doc = build_alert(detection("root", 1795000000.0))
    indexer.index([doc])
    key = doc["socpipe"]["detection"]["dedup_key"]
    assert indexer.update_suppressed(key, count=2, last_seen="2026-11-18T12:00:00.000Z") == doc["_id"]
    # a fresh indexer has no cache: it must find the alert by search
    other = AlertIndexer(es, prefix=cfg.index_prefix)
    assert other.update_suppressed(key, count=1) == doc["_id"]
    src = es.get(index=alert_index_name(doc, cfg.index_prefix), id=doc["_id"])["_source"]
    assert src["socpipe"]["suppression"]["count"] == 3
    assert src["socpipe"]["suppression"]["last_seen"] == "2026-11-18T12:00:00.000Z"
    assert other.update_suppressed("no-such-key") is None


def test_events_index_nested_with_deterministic_ids(es_env):
    cfg, es = es_env
    indexer = EventIndexer(es, prefix=cfg.index_prefix, refresh="wait_for")
    events = [
        {
            "@timestamp": "2026-11-28T01:02:03.123Z",
            "event.dataset": "system.auth",
            "source.ip": "198.51.100.1",
            "user.name": "root",
            "custom.thing": "x",
        }
    ]
    assert len(indexer.index(events).created) == 1
    assert len(indexer.index(events).duplicates) == 1
    hit = es.search(index=f"{cfg.index_prefix}-events-2026.11.28", query={"term": {"user.name": "root"}})["hits"][
        "hits"
    ]
    assert hit[0]["_source"]["custom"] == {"thing": "x"}


def test_es_setup_cli_is_idempotent(es_url, unique, monkeypatch):
    prefix = f"c{unique}"
    monkeypatch.setenv("SOCPIPE_ES_URL", es_url)
    runner = CliRunner()
    es = connect(es_config(es_url))
    try:
        for _ in range(2):
            res = runner.invoke(main, ["es", "setup", "--prefix", prefix])
            assert res.exit_code == 0, res.output
            assert f"template {prefix}-alerts: installed" in res.output
        tmpl = es.indices.get_index_template(name=f"{prefix}-alerts")["index_templates"][0]["index_template"]
        assert tmpl["index_patterns"] == [f"{prefix}-alerts-*"]
        assert tmpl["template"]["mappings"]["dynamic"] == "strict"
    finally:
        cleanup(es, prefix)


def test_es_setup_adds_new_alert_fields_to_existing_indices_and_names_a_conflict(es_url, unique, monkeypatch):
    """Upgrade day: today's alert index was made by the previous template (no `socpipe.anomaly.reasons`),
    so the strict mapping refuses alerts carrying it until `es setup` puts the new fields onto it."""
    from elasticsearch import BadRequestError

    from pipeline.elastic.mappings import ALERT_MAPPINGS
    from pipeline.elastic.setup import MappingConflict, setup

    prefix = f"u{unique}"
    cfg = es_config(es_url, index_prefix=prefix)
    es = connect(cfg)
    old = copy.deepcopy(ALERT_MAPPINGS)
    del old["properties"]["socpipe"]["properties"]["anomaly"]["properties"]["reasons"]
    today = f"{prefix}-alerts-2026.12.06"
    doc = {
        "@timestamp": "2026-12-06T01:02:03Z",
        "socpipe": {"anomaly": {"score": 0.9, "reasons": [{"parameter": "id", "points": 3.0}]}},
    }
    try:
        es.indices.create(index=today, mappings=old)
        with pytest.raises(BadRequestError, match="strict_dynamic_mapping_exception"):
            es.index(index=today, document=doc)
        for _ in range(2):  # idempotent
            report = setup(es, cfg)
            assert report.updated_indices == [today]
        es.index(index=today, document=doc, refresh="wait_for")
        mapping = es.indices.get_mapping(index=today)[today]["mappings"]
        assert mapping["dynamic"] == "strict"
        assert mapping["properties"]["socpipe"]["properties"]["anomaly"]["properties"]["reasons"]["properties"][
            "points"
        ] == {"type": "float"}

        # A field mapped another way is an error naming the index and the field, in the CLI too.
        clash = copy.deepcopy(old)
        clash["properties"]["socpipe"]["properties"]["anomaly"]["properties"]["score"] = {"type": "keyword"}
        older = f"{prefix}-alerts-2026.12.05"
        es.indices.create(index=older, mappings=clash)
        es.indices.delete(index=today)
        es.indices.create(index=today, mappings=old)  # a conflict elsewhere does not hold today's index back
        with pytest.raises(MappingConflict) as exc_info:
            setup(es, cfg)
        assert (exc_info.value.index, exc_info.value.field) == (older, "socpipe.anomaly.score")
        es.index(index=today, document=doc, refresh="wait_for")
        monkeypatch.setenv("SOCPIPE_ES_URL", es_url)
        res = CliRunner().invoke(main, ["es", "setup", "--prefix", prefix])
        assert res.exit_code != 0
        assert f"index {older}: field socpipe.anomaly.score conflicts" in res.output
    finally:
        cleanup(es, prefix)
