"""Suppression and agent re-sends through a real worker, Kafka and Elasticsearch.

One scanner request opens an alert; the agent then re-sends that same line (same seq: dropped and
counted, not re-processed) and two more requests from the same address arrive inside the
suppression window: they must bump the open alert's `socpipe.suppression.count` to 2, not create
alerts.
"""

from __future__ import annotations

import time
import urllib.request

from elasticsearch import Elasticsearch

from collectors.wire import LineBatch, LogLine
from tests.integration.conftest import alert_sources, es_client, free_port, wait_for
from tests.integration.test_detector_e2e import detector_env, produce

SCANNER_RULE = "a2e3d970-eed5-450e-ab85-5efad65fc2a2"  # rules/web/web_scanner_tools.yml


def scanner_batch(seqs: list[int], minute: int) -> LineBatch:
    lines = [
        LogLine(
            f'203.0.113.7 - - [28/Nov/2026:09:{minute:02d}:{s % 60:02d} +0000] "GET /admin/{s} HTTP/1.1" 404 153 '
            f'"-" "sqlmap/1.7.2#stable"',
            offset=s * 120,
            line_no=s,
            seq=s,
            read_at=time.time(),
        )
        for s in seqs
    ]
    return LineBatch("commune-binh-hoa", "agent-7", "web07", "/var/log/nginx/access.log", lines)


def scanner_alerts(es: Elasticsearch, prefix: str) -> list[dict]:
    return alert_sources(es, prefix, {"term": {"rule.id": SCANNER_RULE}}, size=100)


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def test_repeat_inside_window_updates_the_open_alert(kafka_bootstrap, es_url, unique, procs):
    env = detector_env(kafka_bootstrap, es_url, unique)
    port = free_port()
    env |= {"SOCPIPE_METRICS_PORT": str(port), "SOCPIPE_SUPPRESSION_WINDOW_S": "3600"}
    prefix = env["SOCPIPE_ES_INDEX_PREFIX"]
    first = scanner_batch([1], minute=0)
    produce(kafka_bootstrap, env["SOCPIPE_RAW_TOPIC"], [first])
    det = procs.start("detector", ["detect", "run", "--config", "config/detector.yaml"], env)
    es = es_client(es_url)
    [alert] = wait_for(lambda: det.check_alive() and scanner_alerts(es, prefix), 60, what="the scanner alert")
    assert alert["socpipe"]["suppression"]["count"] == 0

    produce(kafka_bootstrap, env["SOCPIPE_RAW_TOPIC"], [first, scanner_batch([2, 3], minute=5)])
    wait_for(
        lambda: det.check_alive() and scanner_alerts(es, prefix)[0]["socpipe"]["suppression"]["count"] >= 2,
        60,
        what="the suppression count to reach 2",
    )
    time.sleep(2)  # anything still in flight would show up now
    alerts = scanner_alerts(es, prefix)
    assert len(alerts) == 1, [a["event"]["id"] for a in alerts]
    supp = alerts[0]["socpipe"]["suppression"]
    assert supp["count"] == 2
    assert supp["last_seen"] == "2026-11-28T09:05:03.000Z"
    assert metric(port, "socpipe_detector_duplicate_lines_total") == 1
    assert metric(port, "socpipe_detector_suppressed_total") == 2
