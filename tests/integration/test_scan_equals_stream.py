"""One alert plan: `socpipe scan` over a file prints exactly the alert documents a detector worker
indexes for the same lines sent through Kafka (real broker, real worker process, real Elasticsearch
API), on shared public corpora: a real sshd brute-force day and a Netsparker web scan (7,313 lines,
4,444 detections, 6 alerts).

Equality holds for logs whose lines arrive within the allowed lateness of each other (as a live
agent sends them). A file whose lines jump back further (w3af.txt, acunetix.txt of the same corpus
go back up to 50 min) loses those lines as late in both, but at a point that depends on how often
the watermark advances (per batch in a worker, every 500 events in a scan), so counts can differ.

Fields that cannot be equal are left out of the comparison, and only those: when the document was
made (`event.created/ingested`, the workflow's creation entry), the agent id on the evidence (a scan
reads the file itself, the stream names the enrolled agent), and the replay guard (`state.recent`,
`state.sources`: the records the stream's detections came from).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from elasticsearch import Elasticsearch

from collectors.wire import DEFAULT_TIMEZONE, LineBatch
from pipeline.cli import main
from pipeline.cli.parse import read_batches
from pipeline.cli.rules import _dotted_alert
from tests.integration.alerts_support import cleanup
from tests.integration.conftest import alert_hits, es_client, wait_for
from tests.integration.test_detector_e2e import detector_env, produce

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "datasets"
CORPORA = [
    SHARED / "loghub_2k_samples" / "OpenSSH" / "OpenSSH_2k.log",
    SHARED / "apache_scanner_logs_dvwa" / "netsparker.txt",
]
AGENCY = "so-thong-tin"
IGNORED = (
    "event.created",
    "event.ingested",
    "kibana.alert.workflow_status",
    "socpipe.episode.state.recent",
    "socpipe.incident.id",  # incidents are the stream's (a scan prints alerts)
)


def comparable(flat: dict) -> dict:
    out = {
        k: v
        for k, v in flat.items()
        if k not in IGNORED
        and not k.startswith("socpipe.workflow")
        and not k.startswith("socpipe.episode.state.sources.")  # the replay guard: Kafka partitions' offsets
    }
    out["socpipe.evidence"] = [{k: v for k, v in e.items() if k != "agent.id"} for e in flat["socpipe.evidence"]]
    return out


def stream_alerts(es: Elasticsearch, prefix: str) -> dict[str, dict]:
    hits = alert_hits(es, prefix, size=1000)
    return {h["_id"]: comparable(_dotted_alert({"_id": h["_id"], **h["_source"]})) for h in hits}


@pytest.mark.parametrize("corpus", CORPORA, ids=[p.stem for p in CORPORA])
def test_scan_prints_what_the_stream_indexes(corpus, kafka_bootstrap, es_url, unique, procs, monkeypatch):
    if not corpus.is_file():
        pytest.skip(f"{corpus} absent")
    env = detector_env(kafka_bootstrap, es_url, unique) | {"SOCPIPE_MAX_BATCH_RECORDS": "500"}
    monkeypatch.chdir(ROOT)  # rule paths on alerts are as configured: `rules`, like the worker's config
    out = CliRunner().invoke(main, ["scan", "--rules", "rules", "--input", str(corpus), "--agency", AGENCY])
    assert out.exit_code == 0, out.output
    scanned = {d["_id"]: comparable(d) for d in map(json.loads, out.stdout.splitlines())}
    assert len(scanned) >= 5

    # the same lines as the agent would ship them, in small batches (the scan reads 2000 at a time)
    batches: list[LineBatch] = []
    for b in read_batches(corpus, None, DEFAULT_TIMEZONE):
        for i in range(0, len(b.lines), 250):
            batches.append(replace(b, agency_id=AGENCY, agent_id="agent-1", lines=b.lines[i : i + 250]))
    produce(kafka_bootstrap, env["SOCPIPE_RAW_TOPIC"], batches)
    det = procs.start("detector", ["detect", "run", "--config", "config/detector.yaml"], env)
    es = es_client(es_url)
    want = {i: d["socpipe.episode.detections"] for i, d in scanned.items()}

    last: dict = {}

    def settled():
        assert det.check_alive(), det.log_tail()
        last["got"] = stream_alerts(es, env["SOCPIPE_ES_INDEX_PREFIX"])
        return {i: d["socpipe.episode.detections"] for i, d in last["got"].items()} == want

    try:
        wait_for(settled, 120, what=f"the stream to index the {len(want)} alerts the scan printed")
    except BaseException:
        got = {i: d["socpipe.episode.detections"] for i, d in last.get("got", {}).items()}
        missing = {i: (scanned[i]["rule.name"], n) for i, n in want.items() if got.get(i) != n}
        stream_only = {i: (d["rule.name"], d.get("source.ip"), got[i]) for i, d in last["got"].items() if i not in want}
        pytest.fail(f"scan vs stream: differing {missing} ; stream only {stream_only} ; stream has {got}")
    streamed = last["got"]
    # the stream also grouped the alerts into incidents (per agency and shared address); every
    # alert names its incident, and that incident lists it
    es.indices.refresh(index=f"{env['SOCPIPE_ES_INDEX_PREFIX']}-incidents-*", allow_no_indices=True)
    incidents = es.search(index=f"{env['SOCPIPE_ES_INDEX_PREFIX']}-incidents-*", size=500, allow_no_indices=True)
    members = {a: h["_id"] for h in incidents["hits"]["hits"] for a in h["_source"]["socpipe"]["incident"]["alerts"]}
    assert set(members) == set(streamed) and len(incidents["hits"]["hits"]) < len(streamed)
    cleanup(es, env["SOCPIPE_ES_INDEX_PREFIX"])
    for alert_id, doc in scanned.items():
        diff = {k: (v, streamed[alert_id].get(k)) for k, v in doc.items() if streamed[alert_id].get(k) != v}
        extra = set(streamed[alert_id]) - set(doc)
        assert not diff and not extra, (alert_id, doc["rule.name"], diff, extra)
