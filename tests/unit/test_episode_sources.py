"""What an episode alert remembers to skip a replayed batch (pipeline.elastic.episodes): per source
partition the offsets of the records whose detections it merged, and the stages tag each detection one
record made with that record. Over the real Elasticsearch: tests/integration/test_episode_replay.py."""

from __future__ import annotations

from typing import Any

from collectors.wire import LineBatch, LogLine, batch_headers
from detectors.alerts.plan import BatchEpisode, Offer
from detectors.sigma.detection import Detection, make_detection
from detectors.sigma.model import RuleMeta
from pipeline.elastic.episodes import merged_sources
from pipeline.worker.alerting import Candidate
from tests.unit.test_worker_stages import Rec, failures, forwarded, signed, stages

META = RuleMeta(id="00000000-0000-4000-8000-000000000001", title="Failed SSH login", level="low", tags=[])
T0 = 1_795_000_000.0


def offer(source: str | None, offset: int, i: int = 0) -> Offer:
    ev = {"@timestamp": "2026-11-19T08:00:00.000Z", "source.ip": "198.51.100.7"}
    det = make_detection(META, "single", {"source.ip": "198.51.100.7"}, [T0 + i] * 2, [ev], 1, T0, identity=i)
    return Offer.of(det, source, offset)


def batch(*offers: Offer) -> BatchEpisode:
    return BatchEpisode(offers[0].dedup_key, offers[0].alert_id, offers[0].item, list(offers))


def test_the_ranges_join_a_replay_replace_a_committed_batch_and_ignore_late_growth() -> None:
    covered = {"raw/0": [100, 199]}
    assert merged_sources({}, batch(offer("raw/0", 7), offer("raw/0", 3, 1))) == {"raw/0": [3, 7]}
    # a replay running on past it (overlapping): joined
    assert merged_sources(covered, batch(offer("raw/0", 150), offer("raw/0", 260, 1))) == {"raw/0": [100, 260]}
    # all past it: the batch it covered was committed before these were read; replaced
    assert merged_sources(covered, batch(offer("raw/0", 300))) == {"raw/0": [300, 300]}
    # growth written late, of records before it (committed long ago): nothing to remember
    assert merged_sources(covered, batch(offer("raw/0", 20))) == covered
    # another partition, and a detection no record made (kept by id instead)
    assert merged_sources(covered, batch(offer("corr/2", 5), offer(None, -1, 1))) == {
        "raw/0": [100, 199],
        "corr/2": [5, 5],
    }


def test_a_batch_summary_skips_what_its_alert_merged_from_those_records() -> None:
    b = batch(offer("raw/0", 5, 0), offer("raw/0", 6, 1), offer("raw/1", 5, 2), offer(None, -1, 3))
    summary = b.summary(covered={"raw/0": [0, 5]})
    assert summary is not None and summary.detections == 3  # raw/0@5 was merged; raw/1@5 was not
    everything = b.summary(skip=frozenset({b.offers[3].alert_id}), covered={"raw/0": [0, 9], "raw/1": [5, 5]})
    assert everything is None  # a replay of all of it


def test_the_stages_tag_a_detection_with_the_record_that_made_it() -> None:
    s1, s2, _ = stages(suppression_s=0)
    made: list[Candidate] = []
    detection = s1.detected.detection

    def tagging(det: Detection, rec: Any = None) -> Candidate:
        made.append(detection(det, rec))
        return made[-1]

    s1.detected.detection = tagging  # type: ignore[method-assign]
    scan = '203.0.113.9 - - [18/Nov/2026:07:40:00 +0000] "GET /.env HTTP/1.1" 404 10 "-" "sqlmap/1.7"'
    b = LineBatch("xa-a", "agt-a", "srv-a", "/var/log/nginx/access.log", [LogLine(scan, seq=1)], dataset="nginx.access")
    key, value = b.key(), b.to_bytes()
    web = Rec(value, key, batch_headers("secret-a", key, 1, 1, "nginx.access", value), partition=2, offset=41)
    s1.process([web])
    assert made and all((c.source, c.offset) == ("socpipe.raw/2", 41) for c in made)  # the scanner's request
    out1 = s1.process([signed(failures(6), counter=4)])
    s2.assign(0)
    inputs = forwarded(out1)
    out2 = s2.process(inputs)
    out2.plan.extend(s2.process({}).plan)
    fired = [n.candidate for n in out2.plan.new]
    assert fired  # the brute force: fired on an input record, or closed by time (no record: by id)
    offsets = {r.offset for r in inputs[0]}
    for c in fired:
        assert c.source is None or (c.source == "socpipe.correlation-inputs/0" and c.offset in offsets), c
