"""Alert latency: event produced into Kafka -> alert searchable in Elasticsearch, at 5,000 events/s.

Runs a real `socpipe detect run` worker against the local stack (`. .socpipe/stack/env` first).
Background traffic is benign web access lines (100 per Kafka record); 20 times a second one
scanner request (a single-event Sigma rule) goes in its own record, and a poller searching the
alert indices every 25 ms notes when each one becomes searchable. Also measures AlertIndexer alone.

    python tests/bench/bench_alerts.py [--seconds 30] [--rate 5000]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from elasticsearch import Elasticsearch  # noqa: E402
from kafka import KafkaProducer  # noqa: E402

from detectors.alerts import build_alert  # noqa: E402
from pipeline.config import ElasticsearchConfig  # noqa: E402
from pipeline.elastic import AlertIndexer, connect, setup  # noqa: E402
from pipeline.records import LineBatch, LogLine  # noqa: E402

SCANNER_RULE = "a2e3d970-eed5-450e-ab85-5efad65fc2a2"


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def cleanup(es: Elasticsearch, prefix: str) -> None:
    for pattern in (f"{prefix}-alerts-*", f"{prefix}-events-*"):
        for name in es.indices.get(index=pattern, ignore_unavailable=True, allow_no_indices=True):
            es.indices.delete(index=name)
    for kind in ("alerts", "events"):
        es.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-{kind}")


def access_line(ip: str, path: str, agent: str) -> str:
    ts = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
    return f'{ip} - - [{ts}] "GET {path} HTTP/1.1" 404 153 "-" "{agent}"'


def bench_indexer(es_url: str) -> None:
    from detectors.sigma.detection import make_detection
    from detectors.sigma.model import RuleMeta

    prefix = f"bench{uuid.uuid4().hex[:8]}"
    cfg = ElasticsearchConfig(url=es_url, index_prefix=prefix)
    es = connect(cfg)
    setup(es, cfg)
    meta = RuleMeta(id="bench-rule", title="Bench", level="high", tags=["attack.t1110.001"])
    now = time.time()
    docs = [build_alert(make_detection(meta, "single", {"source.ip": f"198.51.100.{i % 250}"}, [now], [
        {"@timestamp": "2026-11-28T01:02:03.123Z", "source.ip": f"198.51.100.{i % 250}", "message": "x" * 200}],
        1, now, identity=i)) for i in range(5000)]
    try:
        indexer = AlertIndexer(es, prefix=prefix)
        t0 = time.perf_counter()
        for i in range(0, len(docs), 500):
            assert indexer.index(docs[i:i + 500]).acknowledged
        bulk_s = time.perf_counter() - t0
        lat = []
        single = AlertIndexer(es, prefix=prefix, refresh=False)
        for i in range(100):
            doc = build_alert(make_detection(meta, "single", {}, [now], [], 1, now, identity=f"lat{i}"))
            t0 = time.perf_counter()
            single.index([doc])
            while not es.search(index=f"{prefix}-alerts-*", query={"ids": {"values": [doc["_id"]]}}, size=0)[
                    "hits"]["total"]["value"]:
                time.sleep(0.005)
            lat.append(time.perf_counter() - t0)
        print(f"indexer alone: {len(docs) / bulk_s:,.0f} alerts/s in bulks of 500 "
              f"(one client, one core); index->searchable p50 {pct(lat, .5) * 1000:.0f} ms "
              f"p99 {pct(lat, .99) * 1000:.0f} ms over {len(lat)} single-alert writes")
    finally:
        cleanup(es, prefix)


def bench_end_to_end(kafka: str, es_url: str, seconds: float, rate: int) -> None:
    unique = uuid.uuid4().hex[:8]
    prefix = f"bench{unique}"
    env = {**os.environ, "SOCPIPE_KAFKA_BOOTSTRAP": kafka, "SOCPIPE_ES_URL": es_url, "SOCPIPE_ES_INDEX_PREFIX": prefix,
           "SOCPIPE_GROUP_ID": f"bench-{unique}", "SOCPIPE_RAW_TOPIC": f"raw-{unique}",
           "SOCPIPE_CORRELATION_TOPIC": f"corr-{unique}", "SOCPIPE_STATE_TOPIC": f"state-{unique}",
           "SOCPIPE_DEAD_LETTER_TOPIC": f"dlq-{unique}", "SOCPIPE_METRICS_PORT": "0", "SOCPIPE_INVENTORY": ""}
    cfg = ElasticsearchConfig(url=es_url, index_prefix=prefix)
    es = connect(cfg)
    setup(es, cfg)
    socpipe = Path(sys.executable).parent / "socpipe"
    log = open(f"/tmp/bench_alerts_worker_{unique}.log", "w")
    worker = subprocess.Popen([str(socpipe), "detect", "run", "--config", "config/detector.yaml"], cwd=ROOT,
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    producer = KafkaProducer(bootstrap_servers=kafka, linger_ms=2, batch_size=1 << 20, acks=1)
    topic = env["SOCPIPE_RAW_TOPIC"]
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    stop = threading.Event()

    def send_trigger(tag: str) -> None:
        line = LogLine(access_line("203.0.113.66", f"/probe/{tag}", "sqlmap/1.7.2#stable"), seq=1, line_no=1,
                       read_at=time.time())
        batch = LineBatch("bench-agency", "bench", "web01", "/var/log/nginx/access.log", [line])
        sent[tag] = time.time()
        producer.send(topic, key=batch.key(), value=batch.to_bytes())

    def poll() -> None:
        while not stop.is_set():
            try:
                res = es.search(index=f"{prefix}-alerts-*", size=2000, source_includes=["url.path"],
                                query={"bool": {"filter": [{"term": {"rule.id": SCANNER_RULE}},
                                                           {"range": {"event.ingested": {"gte": "now-10s"}}}]}},
                                ignore_unavailable=True, allow_no_indices=True)
                now = time.time()
                for h in res["hits"]["hits"]:
                    tag = h["_source"].get("url", {}).get("path", "").rsplit("/", 1)[-1]
                    seen.setdefault(tag, now)
            except Exception as exc:  # keep polling through a hiccup; the figures will show it
                print(f"poll error: {exc}", file=sys.stderr)
            time.sleep(0.025)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        deadline = time.time() + 90
        n = 0
        while not any(t.startswith("warm") for t in seen):  # worker up, topics made, group joined
            if time.time() > deadline or worker.poll() is not None:
                raise SystemExit(f"worker produced no alert in 90 s; see {log.name}")
            send_trigger(f"warm{n}")
            producer.flush()
            n += 1
            time.sleep(1.0)
        noise_per_record, triggers_per_s = 100, 20
        records_per_s = max(1, (rate - triggers_per_s) // noise_per_record)
        seq = 0
        start = time.time()
        tick = 1.0 / records_per_s
        i = 0
        trig = 0
        while time.time() - start < seconds:
            lines = []
            for _ in range(noise_per_record):
                seq += 1
                lines.append(LogLine(access_line(f"10.9.{seq % 250}.{seq % 200 + 1}", f"/p/{seq}", "Mozilla/5.0"),
                                     offset=seq * 150, line_no=seq, seq=seq, read_at=time.time()))
            batch = LineBatch("bench-agency", "bench", "web02", "/var/log/nginx/access.log", lines)
            producer.send(topic, key=batch.key(), value=batch.to_bytes())
            while trig < (time.time() - start) * triggers_per_s:
                send_trigger(f"t{trig}")
                trig += 1
            i += 1
            delay = start + i * tick - time.time()
            if delay > 0:
                time.sleep(delay)
        producer.flush()
        elapsed = time.time() - start
        events = i * noise_per_record + trig
        settle = time.time() + 15
        tags = [f"t{k}" for k in range(trig)]
        while time.time() < settle and not all(t in seen for t in tags):
            time.sleep(0.1)
        lat = [seen[t] - sent[t] for t in tags if t in seen]
        print(f"end-to-end (Kafka -> worker -> ES, searchable): {events / elapsed:,.0f} events/s offered for "
              f"{elapsed:.0f} s, {trig} alerting events, {len(lat)} alerts seen"
              + (f" ({trig - len(lat)} missing after 15 s)" if len(lat) < trig else ""))
        if lat:
            print(f"  latency p50 {pct(lat, .5) * 1000:.0f} ms  p99 {pct(lat, .99) * 1000:.0f} ms  "
                  f"max {max(lat) * 1000:.0f} ms  mean {statistics.mean(lat) * 1000:.0f} ms "
                  f"(poll interval 25 ms; one worker process)")
    finally:
        stop.set()
        poller.join(2)
        producer.close(timeout=5)
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(5)
        log.close()
        cleanup(es, prefix)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--rate", type=int, default=5000)
    ap.add_argument("--skip-e2e", action="store_true")
    args = ap.parse_args()
    kafka, es_url = os.environ.get("SOCPIPE_KAFKA_BOOTSTRAP"), os.environ.get("SOCPIPE_ES_URL")
    if not (kafka and es_url):
        print("bench_alerts: SOCPIPE_KAFKA_BOOTSTRAP / SOCPIPE_ES_URL not set (start the stack); skipped")
        return
    bench_indexer(es_url)
    if not args.skip_e2e:
        bench_end_to_end(kafka, es_url, args.seconds, args.rate)


if __name__ == "__main__":
    main()
