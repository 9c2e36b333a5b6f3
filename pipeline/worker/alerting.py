"""What to write for a batch's detections: new alerts, or count updates of open ones (pure, no I/O).

Rule detections and anomaly findings go through one `Suppressor` decision per stage: the first
detection of a dedup key in its window opens an alert; repeats inside the window only add to that
alert's `socpipe.suppression.count`. Repeats of an alert opened in the same batch are folded into
the new document before it is written, so most repeats cost no Elasticsearch update at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from detectors.alerts.plan import BatchEpisode, Offer, plan_batch
from detectors.finding import Finding
from detectors.sigma.suppress import Suppressor

Doc = dict[str, Any]  # an alert document as build_alert makes it and Elasticsearch stores it


@dataclass(slots=True)
class Candidate:
    """A finding in the shape `Suppressor.offer` reads: its suppression key, alert id and times."""

    item: Finding  # what build_alert turns into a document
    dedup_key: str
    detection_id: str  # the alert `_id` it would get
    start_ts: float
    end_ts: float
    count: int = 1
    source: str | None = None  # the record it came from ("topic/partition", offset); None: no one record
    offset: int = -1

    @classmethod
    def of(cls, finding: Finding, source: str | None = None, offset: int = -1) -> Candidate:
        return cls(finding, finding.dedup_key, finding.alert_id, finding.start_ts, finding.end_ts, 1, source, offset)


@dataclass(slots=True)
class NewAlert:
    candidate: Candidate
    repeats: int = 0  # repeats folded in before the document was written
    last_ts: float = 0.0


@dataclass(slots=True)
class CountUpdate:
    """Repeats of an alert written by an earlier batch: `AlertIndexer.update_suppressed` adds them."""

    candidate: Candidate  # the first repeat: becomes a new alert if the open one is gone (closed)
    repeats: int
    last_ts: float
    window_start: float  # event time the open alert may not be older than
    suppressor: Suppressor | None = None  # whose decision this was (reopen tells it)


@dataclass(slots=True)
class AlertPlan:
    new: list[NewAlert] = field(default_factory=list)
    updates: list[CountUpdate] = field(default_factory=list)
    episodes: list[BatchEpisode] = field(default_factory=list)  # the one alert plan (detectors/alerts/plan.py)

    def __bool__(self) -> bool:
        return bool(self.new or self.updates or self.episodes)

    def extend(self, other: AlertPlan) -> None:
        self.new += other.new
        self.updates += other.updates
        self.episodes += other.episodes


@dataclass(frozen=True, slots=True)
class EpisodeSettings:
    quiet_s: float = 900.0
    max_span_s: float = 86400.0


def plan_alerts(
    suppressor: Suppressor | None, candidates: list[Candidate], episodes: EpisodeSettings | None = None
) -> AlertPlan:
    """The batch's alert plan. With `episodes` (and suppression on): the episodes of the one alert
    plan `socpipe scan` uses too, merged into their open alerts by the sink. Otherwise the older
    count-only suppression below (kept for callers that pass no settings)."""
    if episodes is not None and suppressor is not None:
        offers = [Offer.of(c.item, c.source, c.offset) for c in candidates]
        return AlertPlan(episodes=plan_batch(offers, episodes.quiet_s, episodes.max_span_s))
    return plan_counts(suppressor, candidates)


def plan_counts(suppressor: Suppressor | None, candidates: list[Candidate]) -> AlertPlan:
    """Decide, in order, which candidates open alerts and which only count as repeats.

    Without a suppressor (window 0) every candidate is a new alert. A replayed detection (same id as
    the open alert) is written again as new: create-only writes make that a no-op, never a count.
    """
    plan = AlertPlan()
    if suppressor is None:  # a correlation's continuations only ever grow an open alert
        plan.new = [NewAlert(c, 0, c.end_ts) for c in candidates if not getattr(c.item, "continuation", False)]
        return plan
    opened: dict[str, NewAlert] = {}  # alert id -> its new document in this batch
    updates: dict[str, CountUpdate] = {}  # alert id -> repeats of an earlier batch's alert
    for c in candidates:
        decision = suppressor.offer(c)
        if decision.action == "new" or decision.alert_id == c.detection_id:
            if decision.alert_id not in opened:
                opened[decision.alert_id] = NewAlert(c, 0, c.end_ts)
                plan.new.append(opened[decision.alert_id])
            continue
        target = opened.get(decision.alert_id)
        if target is not None:
            target.repeats += 1
            target.last_ts = max(target.last_ts, c.end_ts)
            continue
        upd = updates.get(decision.alert_id)
        if upd is None:
            upd = updates[decision.alert_id] = CountUpdate(c, 0, c.end_ts, c.end_ts - suppressor.window, suppressor)
            plan.updates.append(upd)
        upd.repeats += 1
        upd.last_ts = max(upd.last_ts, c.end_ts)
    return plan


def reopen(update: CountUpdate) -> NewAlert:
    """The open alert of `update` is gone (closed by an analyst, or never indexed): start a new one."""
    if update.suppressor is not None:
        update.suppressor.open.pop(update.candidate.dedup_key, None)
        update.suppressor.offer(update.candidate)
    return NewAlert(update.candidate, update.repeats - 1, update.last_ts)


def with_repeats(doc: Doc, repeats: int, last_seen: str | None) -> Doc:
    """Fold repeats seen before the first write into the alert document's suppression block."""
    if repeats:
        supp = doc.setdefault("socpipe", {}).setdefault("suppression", {})
        supp["count"] = int(supp.get("count", 0)) + repeats
        if last_seen:
            supp["last_seen"] = last_seen
    return doc
