"""AlertIndexer alone: bulk throughput and index -> searchable latency against the ES API server.

The end-to-end figure (event produced into Kafka -> alert searchable, at 5,000 events/s through a
real worker) is tests/bench/bench_pipeline.py.

    python tests/bench/bench_alerts.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


from detectors.alerts import build_alert  # noqa: E402
from pipeline.elastic import AlertIndexer, connect, setup  # noqa: E402
from tests.integration.alerts_support import cleanup  # noqa: E402
from tests.integration.conftest import es_config  # noqa: E402  (the stack's URL, CA and credential)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def bench_indexer(es_url: str) -> None:
    from detectors.sigma.detection import make_detection
    from detectors.sigma.model import RuleMeta

    prefix = f"bench{uuid.uuid4().hex[:8]}"
    cfg = es_config(es_url, index_prefix=prefix)
    es = connect(cfg)
    setup(es, cfg)
    meta = RuleMeta(id="bench-rule", title="Bench", level="high", tags=["attack.t1110.001"])
    now = time.time()
    docs = [
        build_alert(
            make_detection(
                meta,
                "single",
                {"source.ip": f"198.51.100.{i % 250}"},
                [now],
                [
                    {
                        "@timestamp": "2026-11-28T01:02:03.123Z",
                        "source.ip": f"198.51.100.{i % 250}",
                        "message": "x" * 200,
                    }
                ],
                1,
                now,
                identity=i,
            )
        )
        for i in range(5000)
    ]
    try:
        indexer = AlertIndexer(es, prefix=prefix)
        t0 = time.perf_counter()
        for i in range(0, len(docs), 500):
            assert indexer.index(docs[i : i + 500]).acknowledged
        bulk_s = time.perf_counter() - t0
        lat = []
        single = AlertIndexer(es, prefix=prefix, refresh=False)
        for i in range(100):
            doc = build_alert(make_detection(meta, "single", {}, [now], [], 1, now, identity=f"lat{i}"))
            t0 = time.perf_counter()
            single.index([doc])
            while not es.search(index=f"{prefix}-alerts-*", query={"ids": {"values": [doc["_id"]]}}, size=0)["hits"][
                "total"
            ]["value"]:
                time.sleep(0.005)
            lat.append(time.perf_counter() - t0)
        print(
            f"indexer alone: {len(docs) / bulk_s:,.0f} alerts/s in bulks of 500 "
            f"(one client, one core); index->searchable p50 {pct(lat, 0.5) * 1000:.0f} ms "
            f"p99 {pct(lat, 0.99) * 1000:.0f} ms over {len(lat)} single-alert writes"
        )
    finally:
        cleanup(es, prefix)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.parse_args()
    es_url = os.environ.get("SOCPIPE_ES_URL")
    if not es_url:
        print("bench_alerts: SOCPIPE_ES_URL not set (start the stack); skipped")
        return
    bench_indexer(es_url)


if __name__ == "__main__":
    main()
