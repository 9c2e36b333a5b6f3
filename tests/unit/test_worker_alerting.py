"""The worker's suppression decisions: which detections open alerts, which only bump a count."""

from __future__ import annotations

from detectors.sigma import Suppressor
from pipeline.worker.alerting import Candidate, CountUpdate, plan_alerts, reopen, with_repeats

from .factories import detection


def cand(key: str, n: int, ts: float) -> Candidate:
    return Candidate(
        item=detection(f"{key}-{n}", key, ts), dedup_key=key, detection_id=f"{key}-{n}", start_ts=ts, end_ts=ts
    )


def test_repeats_in_one_batch_fold_into_the_new_alert():
    plan = plan_alerts(
        Suppressor(window=600), [cand("a", 1, 100), cand("a", 2, 160), cand("b", 1, 170), cand("a", 3, 200)]
    )
    assert [(n.candidate.detection_id, n.repeats, n.last_ts) for n in plan.new] == [("a-1", 2, 200), ("b-1", 0, 170)]
    assert plan.updates == []


def test_repeat_of_an_earlier_batch_becomes_one_count_update():
    s = Suppressor(window=600)
    first = plan_alerts(s, [cand("a", 1, 100)])
    assert len(first.new) == 1
    later = plan_alerts(s, [cand("a", 2, 300), cand("a", 3, 400)])
    assert later.new == []
    [upd] = later.updates
    assert (upd.candidate.detection_id, upd.repeats, upd.last_ts) == ("a-2", 2, 400)
    assert upd.window_start == 300 - 600 and upd.suppressor is s


def test_outside_the_window_a_new_alert_opens():
    s = Suppressor(window=600)
    plan_alerts(s, [cand("a", 1, 100)])
    plan = plan_alerts(s, [cand("a", 2, 700)])
    assert [n.candidate.detection_id for n in plan.new] == ["a-2"] and plan.updates == []


def test_replayed_detection_is_rewritten_not_counted():
    s = Suppressor(window=600)
    plan_alerts(s, [cand("a", 1, 100)])
    plan = plan_alerts(s, [cand("a", 1, 100)])  # same id again: a replay after a crash
    assert [n.candidate.detection_id for n in plan.new] == ["a-1"] and plan.updates == []


def test_without_suppressor_every_detection_is_an_alert():
    plan = plan_alerts(None, [cand("a", 1, 100), cand("a", 2, 101)])
    assert [n.repeats for n in plan.new] == [0, 0] and len(plan.new) == 2


def test_reopen_makes_the_first_repeat_the_new_alert_and_tells_the_suppressor():
    s = Suppressor(window=600)
    plan_alerts(s, [cand("a", 1, 100)])
    [upd] = plan_alerts(s, [cand("a", 2, 200), cand("a", 3, 250)]).updates
    new = reopen(upd)
    assert (new.candidate.detection_id, new.repeats, new.last_ts) == ("a-2", 1, 250)
    # later repeats now count against the reopened alert
    [upd2] = plan_alerts(s, [cand("a", 4, 300)]).updates
    assert isinstance(upd2, CountUpdate) and s.open["a"].alert_id == "a-2"


def test_with_repeats_sets_count_and_last_seen():
    doc = {"socpipe": {"suppression": {"count": 0, "last_seen": "x"}}}
    assert with_repeats(doc, 3, "2026-11-28T00:00:00.000Z")["socpipe"]["suppression"] == {
        "count": 3,
        "last_seen": "2026-11-28T00:00:00.000Z",
    }
    untouched = {"socpipe": {"suppression": {"count": 0, "last_seen": "x"}}}
    assert with_repeats(untouched, 0, None)["socpipe"]["suppression"]["count"] == 0


def test_with_episode_settings_the_plan_is_the_one_alert_plan_of_scan():
    """Workers plan exactly what `socpipe scan` plans: episodes per key, split by quiet gaps."""
    from detectors.sigma.detection import make_detection
    from detectors.sigma.model import RuleMeta
    from pipeline.worker.alerting import EpisodeSettings

    meta = RuleMeta(id="r1", title="Brute force", level="high")

    def det(t: float, ip: str = "203.0.113.9"):
        ev = {"@timestamp": "2026-01-01T00:00:00Z", "source.ip": ip}
        return make_detection(meta, "event_count", {"source.ip": ip}, [t, t + 5], [ev], 5, t)

    dets = [det(0), det(60), det(120, ip="198.51.100.1"), det(5000)]
    plan = plan_alerts(Suppressor(window=3600), [Candidate.of(d) for d in dets], EpisodeSettings(quiet_s=900))
    assert not plan.new and not plan.updates
    assert [(b.alert_id, len(b.offers)) for b in plan.episodes] == [
        (dets[0].alert_id, 2),
        (dets[2].alert_id, 1),
        (dets[3].alert_id, 1),
    ]
    off = plan_alerts(None, [Candidate.of(d) for d in dets], EpisodeSettings())  # suppression off
    assert len(off.new) == 4 and not off.episodes
