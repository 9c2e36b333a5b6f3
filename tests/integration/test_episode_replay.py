"""A replayed batch adds nothing twice to its episode alert, however many detections were merged since,
over the real Elasticsearch API (the sink's episode path: EpisodeSink, EpisodeWriter).

The alert remembered the ids of the last 512 detections merged into it, so a replay after more (one
batch of 600 detections of the key, or merges of other partitions in between) counted the rest again.
It now remembers, per source partition, the offsets of the records whose detections it merged (a
consumer commits after each batch: nothing older can be read again), and the last 512 ids as before
(all there is for detections no one record made: windows closed by time, models' findings)."""

from __future__ import annotations

from typing import Any

import pytest

from detectors.alerts.plan import Offer, plan_batch
from detectors.sigma.detection import make_detection
from detectors.sigma.model import RuleMeta
from pipeline.elastic import AlertIndexer
from pipeline.elastic.episodes import RECENT_IDS, EpisodeWriter
from pipeline.worker.alerting import AlertPlan
from pipeline.worker.sink import AlertSink
from pipeline.worker_metrics import WorkerMetrics
from tests.integration.alerts_support import es_env  # noqa: F401  (fixture)

pytestmark = pytest.mark.integration
T0 = 1_795_000_000.0
META = RuleMeta(id="00000000-0000-4000-8000-000000000512", title="Failed SSH login", level="low", tags=[])


def offers(source: str, first: int, count: int, start: int = 0) -> list[Offer]:
    """`count` detections of one key (one address), one per record of `source` from offset `first`,
    0.5 s of event time apart from detection number `start` (all in one episode)."""
    out = []
    for i in range(start, start + count):
        ev = {"@timestamp": "2026-11-19T08:00:00.000Z", "source.ip": "198.51.100.77", "organization.id": "so-tc"}
        det = make_detection(META, "single", {"source.ip": "198.51.100.77"}, [T0 + i / 2] * 2, [ev], 1, T0, identity=i)
        out.append(Offer.of(det, source, first + i - start))
    return out


def test_a_replay_after_more_than_512_merges_adds_nothing_twice(es_env):  # noqa: F811
    cfg, es = es_env
    indexer = AlertIndexer(es, prefix=cfg.index_prefix)
    sink = AlertSink(
        indexer, WorkerMetrics(), lambda p, r: None, episodes=EpisodeWriter(es, indexer, 900.0, 86400.0, refresh=True)
    )

    def deliver(batch: list[Offer]) -> None:
        sink.deliver(AlertPlan(episodes=plan_batch(batch, 900.0, 86400.0)))

    def detections() -> int:
        es.indices.refresh(index=f"{cfg.index_prefix}-alerts-*")
        hits = es.search(index=f"{cfg.index_prefix}-alerts-*", size=10)["hits"]["hits"]
        assert len(hits) == 1, [h["_id"] for h in hits]  # one episode, one alert
        return int(hits[0]["_source"]["socpipe"]["episode"]["detections"])

    first = offers("raw/0", 0, 600)  # one batch of raw partition 0: more detections than RECENT_IDS
    assert len(first) > RECENT_IDS
    deliver(first)
    assert detections() == 600
    deliver(first)  # replayed at once (a crash before the commit): the first 88 ids were forgotten
    assert detections() == 600
    for n in range(3):  # 600 more from partition 1, in three batches (three merges)
        deliver(offers("raw/1", 200 * n, 200, start=600 + 200 * n))
    assert detections() == 1200
    deliver(first)  # partition 0's batch replayed after them (its worker crashed before committing)
    deliver(offers("raw/1", 400, 200, start=1000))  # and partition 1's last one
    assert detections() == 1200
    # a replay that runs on past the batch: only what it adds counts (50 of its 100 are new)
    deliver(offers("raw/0", 550, 100, start=550)[:50] + offers("raw/0", 600, 50, start=1200))
    assert detections() == 1250
    # growth a worker deferred (episode_update_s) from records before partition 1's newest range, written
    # after it (the partition's next owner wrote first): new, counted
    deliver(offers("raw/1", 100, 10, start=1300))
    assert detections() == 1260
    state: dict[str, Any] = es.search(index=f"{cfg.index_prefix}-alerts-*")["hits"]["hits"][0]["_source"]
    assert state["socpipe"]["episode"]["state"]["sources"] == {"raw/0": [0, 649], "raw/1": [400, 599]}
