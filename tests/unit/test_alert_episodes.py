"""Episodes: an ongoing activity is one growing alert; `scan` gives analysts episodes, not floods."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from detectors.alerts.episodes import (
    DISTINCT_CAP,
    EVIDENCE_FIRST,
    EVIDENCE_LATEST,
    EpisodeBook,
    EpisodeSummary,
    episode_document,
    summary_from_document,
)
from detectors.alerts.plan import Offer, plan_documents
from detectors.common.times import iso_ms as iso
from detectors.sigma.detection import Detection
from pipeline.cli import main

from .factories import detection

T0 = 1_780_000_000.0
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
RULES = Path(__file__).resolve().parents[2] / "rules"


def event(t: float, path: str = "/a", line: int = 0, ip: str = "203.0.113.9") -> dict:
    return {
        "@timestamp": iso(T0 + t),
        "source.ip": ip,
        "url.path": path,
        "log.file.path": "/var/log/apache2/access.log",
        "log.offset": line * 100,
        "message": f"GET {path}",
    }


def summary(t: float, n: int = 1, **kw) -> EpisodeSummary:
    evs = [event(t + i, path=f"/p{int(t) + i}", line=int(t) + i, **kw) for i in range(n)]
    return EpisodeSummary.of(T0 + t, T0 + t + n - 1, n, evs)


def test_merge_is_order_independent():
    parts = [summary(t, n=3) for t in range(0, 300, 7)]
    one = parts[0]
    for p in parts[1:]:
        one = one.merge(p)
    rng = random.Random(5)
    for _ in range(5):
        shuffled = parts[:]
        rng.shuffle(shuffled)
        # fold in batches, as workers merging into what Elasticsearch holds would
        batches = [shuffled[i : i + 4] for i in range(0, len(shuffled), 4)]
        acc = None
        for b in batches:
            part = b[0]
            for x in b[1:]:
                part = part.merge(x)
            acc = part if acc is None else acc.merge(part)
        assert acc is not None
        assert acc.to_data() == one.to_data() and acc.evidence() == one.evidence()
    assert one.events == 3 * len(parts) and one.detections == len(parts)
    assert len(one.first) == EVIDENCE_FIRST and len(one.latest) == EVIDENCE_LATEST
    assert one.evidence()[0]["url.path"] == "/p0" and one.evidence()[-1]["url.path"] == "/p296"


def test_distinct_values_are_bounded_and_flagged():
    s = summary(0, n=5)
    for t in range(5, DISTINCT_CAP + 50, 5):
        s = s.merge(summary(t, n=5))
    assert len(s.distinct["url.path"]) == DISTINCT_CAP and "url.path" in s.capped
    doc = episode_document({"event": {}, "socpipe": {}}, s)
    d = doc["socpipe"]["episode"]["distinct"]["url.path"]
    assert d["count"] == DISTINCT_CAP and d["at_least"] and len(d["values"]) == 20


def test_quiet_gap_and_max_span_start_new_alerts():
    book = EpisodeBook(quiet_s=60, max_span_s=600)
    assert book.offer("k", "a1", None, summary(0))[0] == "new"
    assert book.offer("k", "a2", None, summary(50))[0] == "extend"  # 49 s after the last event
    action, ep, ended = book.offer("k", "a3", None, summary(200))  # 150 s of quiet
    assert action == "new" and ep.alert_id == "a3" and ended == []  # a1 stays open for late detections
    for t in range(250, 900, 50):
        book.offer("k", f"x{t}", None, summary(t))
    assert book.open["k"][-1].alert_id != "a3"  # longer than max_span_s: split
    # a late detection of an earlier burst joins that burst, not the current one
    late = EpisodeBook(quiet_s=60, max_span_s=6000)
    late.offer("k", "b1", None, summary(0))
    late.offer("k", "b2", None, summary(1000))
    action, ep, _ = late.offer("k", "b3", None, summary(30))
    assert (action, ep.alert_id) == ("extend", "b1")
    assert late.offer("k", "b4", None, summary(1050))[1].alert_id == "b2"
    assert book.offer("other", "b1", None, summary(0))[0] == "new"  # keys are independent


def test_document_round_trips_its_summary():
    s = summary(0, n=4).merge(summary(30, n=4))
    base = {"_id": "a1", "@timestamp": iso(T0 + 3), "event": {"start": "x"}, "socpipe": {"suppression": {"count": 0}}}
    doc = episode_document(base, s)
    assert doc["event"]["start"] == iso(T0) and doc["event"]["end"] == iso(T0 + 33)
    assert doc["@timestamp"] == iso(T0 + 3)  # the index day never moves
    assert doc["socpipe"]["episode"]["events"] == 8 and doc["socpipe"]["suppression"]["count"] == 1
    assert base["event"] == {"start": "x"}  # pure
    back = summary_from_document(json.loads(json.dumps(doc)))
    assert back is not None
    assert back.to_data() == s.to_data()
    grown = back.merge(summary(60, n=2))
    assert episode_document(base, grown) == episode_document(base, s.merge(summary(60, n=2)))


def fake_det(t: int, key: str = "k", n: int = 1, did: str | None = None) -> Detection:
    """A Detection of `n` events from T0 + t, its id `did` (d<t> by default)."""
    evidence = [event(t + i, path=f"/q{t + i}", line=t + i) for i in range(n)]
    return detection(did or f"d{t}", key, T0 + t, T0 + t + n - 1, n, evidence)


def test_plan_documents_one_alert_per_episode(monkeypatch):
    import detectors.alerts.plan as plan

    monkeypatch.setattr(plan, "build_alert", lambda item, agency, now: {"_id": item.detection_id, "event": {}})
    dets = [fake_det(t, n=5) for t in range(0, 600, 30)] + [fake_det(5000, n=5), fake_det(10, key="other")]
    docs = plan_documents([Offer.of_detection(d) for d in dets], quiet_s=300)
    assert [d["_id"] for d in docs] == ["d0", "d10", "d5000"]
    first = docs[0]
    assert first["socpipe"]["episode"]["events"] == 100 and first["event"]["end"] == iso(T0 + 574)
    assert first["socpipe"]["episode"]["quiet_s"] == 300 and docs[2]["socpipe"]["episode"]["detections"] == 1


SCANS = SHARED / "apache_scanner_logs_dvwa"


@pytest.mark.skipif(not SCANS.is_dir(), reason="shared scanner corpus absent")
@pytest.mark.parametrize("name", ["acunetix", "netsparker", "w3af"])
def test_scanner_corpora_give_a_handful_of_alerts_covering_the_activity(name):
    """Every (rule, source) of a real scanner run is at most a couple of alerts (one per burst of
    activity, split only by quiet hours), and together they cover each of its detections."""
    path = SCANS / f"{name}.txt"
    out = CliRunner().invoke(main, ["scan", "--rules", str(RULES), "--input", str(path)])
    assert out.exit_code == 0, out.output
    docs = [json.loads(x) for x in out.stdout.splitlines() if x.startswith("{")]
    detections = int(out.stderr.split(" detections")[0].rsplit(" ", 1)[1])
    assert len(docs) <= 8 < detections or detections <= 8
    per: dict[tuple[str, str | None], list[dict]] = {}
    for d in docs:
        per.setdefault((d["rule.name"], d.get("source.ip")), []).append(d)
    assert all(len(v) <= 2 for v in per.values()), {k: len(v) for k, v in per.items()}
    assert sum(d["socpipe.episode.detections"] for d in docs) == detections
    for d in docs:
        assert d["event.start"] <= d["event.end"]
        ev_times = [e["@timestamp"] for e in d["socpipe.evidence"]]
        assert min(ev_times) == d["event.start"] and max(ev_times) <= d["event.end"]


def test_book_grows_episodes_in_place_without_touching_offers():
    """An open episode absorbs detections into its own copy: the offers' summaries (which a worker
    batch merges again, plan_batch) stay as they were, and the result is the pure merge's."""
    parts = [summary(t, n=2) for t in range(0, 400, 9)]
    before = [(p.to_data(), p.evidence()) for p in parts]
    book = EpisodeBook(quiet_s=60, max_span_s=10_000)
    for p in parts:
        book.offer("k", "a", None, p)
    (ep,) = book.open["k"]
    merged = parts[0]
    for p in parts[1:]:
        merged = merged.merge(p)
    assert ep.summary.to_data() == merged.to_data() and ep.summary.evidence() == merged.evidence()
    assert [(p.to_data(), p.evidence()) for p in parts] == before


def test_close_quiet_skips_work_until_an_episode_can_end():
    book = EpisodeBook(quiet_s=60, max_span_s=600)
    book.offer("a", "a1", None, summary(100))
    book.offer("b", "b1", None, summary(0))  # out of order: the older episode sets the floor
    assert book.close_quiet(T0 + 60) == [] and book.floor == T0
    assert [e.alert_id for e in book.close_quiet(T0 + 61)] == ["b1"]  # 61 s quiet
    assert book.floor == T0 + 100 and list(book.open) == ["a"]
    assert [e.alert_id for e in book.close_quiet(T0 + 161)] == ["a1"] and book.open == {}


def test_offer_reads_the_alert_id_only_when_it_opens_an_episode():
    class Item:
        reads = 0

        @property
        def alert_id(self):
            Item.reads += 1
            return "id-1"

    book = EpisodeBook(quiet_s=60, max_span_s=600)
    assert book.offer("k", None, Item(), summary(0))[1].alert_id == "id-1"
    book.offer("k", None, Item(), summary(5))
    assert Item.reads == 1


def _reference_merge(a: EpisodeSummary, b: EpisodeSummary) -> EpisodeSummary:
    """The evidence ends of a merge as first written: the sorted union of both ends, cut to the ends."""
    seen: dict = {}
    for k, ev in a.first + a.latest + b.first + b.latest:
        seen.setdefault(k, (k, ev))
    ordered = sorted(seen.values(), key=lambda kv: kv[0])
    return EpisodeSummary(0, 0, first=ordered[:EVIDENCE_FIRST], latest=ordered[-EVIDENCE_LATEST:])


@pytest.mark.parametrize("in_order", [False, True])
def test_absorbing_one_event_at_a_time_is_the_sorted_union(in_order):
    """Out of order with repeats of one event (same order key), or mostly in time order (the usual
    stream: each event later than all held, now and then a late or repeated one)."""
    rng = random.Random(11)
    for trial in range(40):
        acc = summary(rng.randrange(300), n=rng.choice([1, 3]))
        ref = acc
        clock = 0
        for _ in range(rng.randrange(1, 60)):
            clock += rng.randrange(0, 3)
            t = clock if in_order and rng.random() < 0.85 else rng.randrange(300)
            nxt = summary(t, n=1) if rng.random() < 0.8 else summary(t, n=rng.randrange(2, 4))
            ref, acc = _reference_merge(ref, nxt), acc.merge(nxt)
            assert acc.first == ref.first and acc.latest == ref.latest, trial
            assert all(a is b for (_, a), (_, b) in zip(acc.first + acc.latest, ref.first + ref.latest))


def test_offers_grow_an_episode_as_their_summaries_do():
    """The planner folds one-event detections straight into the episode (no summary of their own):
    the same episode as folding each detection's summary, values and evidence order included."""
    rng = random.Random(3)
    dets = []
    for i in range(300):
        t = rng.randrange(600)
        d = fake_det(t, n=1 if rng.random() < 0.85 else rng.randrange(2, 4), did=f"d{i}")
        d.evidence[0]["user.name"] = rng.choice(["root", "admin", 7, None])
        if rng.random() < 0.1:
            d.metric = {"values": [f"v{rng.randrange(50)}"]}
        dets.append(d)
    direct, by_summary = EpisodeBook(quiet_s=120, max_span_s=300), EpisodeBook(quiet_s=120, max_span_s=300)
    for d in dets:
        direct.offer(d.dedup_key, None, d, Offer.of_detection(d))
        by_summary.offer(d.dedup_key, None, d, Offer.of_detection(d).summary)
    a, b = direct.episodes(), by_summary.episodes()
    assert len(a) == len(b) > 1
    for x, y in zip(a, b):
        assert x.alert_id == y.alert_id and x.summary.to_data() == y.summary.to_data()
        assert [id(e) for e in x.summary.evidence()] == [id(e) for e in y.summary.evidence()]


def test_batch_summary_is_the_merge_of_its_offers():
    from detectors.alerts.plan import BatchEpisode

    rng = random.Random(9)
    dets = [fake_det(rng.randrange(400), n=rng.choice([1, 1, 1, 3]), did=f"d{i}") for i in range(80)]
    offers = [Offer.of_detection(d) for d in dets]
    batch = BatchEpisode("k", "d0", dets[0], offers)
    for skip in (frozenset(), frozenset({"d0", "d5", "d7"})):
        kept = [Offer.of_detection(d).summary for d in dets if d.alert_id not in skip]
        ref = kept[0]
        for s in kept[1:]:
            ref = ref.merge(s)
        got = batch.summary(skip)
        assert got is not None
        assert got.to_data() == ref.to_data() and got.evidence() == ref.evidence()
    assert offers[0].summary.detections == 1  # the offers' own summaries are untouched
