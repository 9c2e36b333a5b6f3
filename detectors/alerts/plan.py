"""The alert plan: detections and findings in, the alert documents to index out (pure, no I/O).

One planner for every path that makes alerts - `socpipe scan` over a file and the detector
workers over Kafka - so a backfill shows analysts the same alerts the stream does: episodes
(detectors/alerts/episodes.py) fold repeats of a dedup key into one growing alert.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from detectors.alerts.build import build_alert
from detectors.alerts.episodes import (
    DEFAULT_MAX_SPAN_S,
    DEFAULT_QUIET_S,
    EpisodeBook,
    EpisodeSummary,
    OpenEpisode,
    episode_document,
)
from detectors.anomaly.finding import AnomalyFinding
from detectors.finding import Finding
from detectors.sigma.detection import Detection


@dataclass(frozen=True)
class Offer:
    """A detection or finding, in the shape the planner reads: its times, events and values."""

    item: Finding  # what build_alert reads
    dedup_key: str
    first_ts: float
    last_ts: float
    count: int  # events it stands for
    evidence: list[Any]
    metric: Mapping[str, Any] | None = None
    # the Kafka record it came from ("topic/partition", offset), when one record made it (a rule's match
    # on the record's event, a correlation firing on the input record); None: closed by time, or a model's
    source: str | None = None
    offset: int = -1

    @property
    def alert_id(self) -> str:
        """The `_id` it gets if it opens an alert (a detection hashes it on first use)."""
        return self.item.alert_id

    @cached_property
    def summary(self) -> EpisodeSummary:
        """Its own episode summary (made when it opens an episode or a worker batch merges it)."""
        return EpisodeSummary.of(self.first_ts, self.last_ts, self.count, self.evidence, self.metric)

    def absorb_into(self, summary: EpisodeSummary) -> None:
        """`summary.absorb(self.summary)`; a one-event detection (the usual growth) without making it."""
        ev = self.evidence
        values = (self.metric or {}).get("values")
        if len(ev) == 1 and type(ev[0]) is dict and not (isinstance(values, list) and values):
            summary.absorb_event(self.first_ts, self.last_ts, self.count, ev[0])
        else:
            summary.absorb(self.summary)

    @classmethod
    def of(cls, finding: Finding, source: str | None = None, offset: int = -1) -> Offer:
        """Any Finding (detectors/finding.py); `source`/`offset`: the record it came from, if one did."""
        if isinstance(finding, Detection):
            return cls.of_detection(finding, source, offset)
        return cls.of_finding(finding, source, offset)

    @classmethod
    def of_detection(cls, det: Detection, source: str | None = None, offset: int = -1) -> Offer:
        return cls(
            det,
            det.dedup_key,
            float(det.start_ts),
            float(det.end_ts),
            int(det.count),
            det.evidence,
            det.metric,
            source,
            offset,
        )

    @classmethod
    def of_finding(cls, finding: AnomalyFinding, source: str | None = None, offset: int = -1) -> Offer:
        return cls(
            finding,
            finding.dedup_key,
            float(finding.start_ts),
            float(finding.end_ts),
            int(finding.event_count or len(finding.evidence)),
            finding.evidence,
            None,
            source,
            offset,
        )


class AlertPlanner:
    """Open episodes and the documents they stand for. `document(ep)` is what gets indexed."""

    def __init__(
        self,
        quiet_s: float = DEFAULT_QUIET_S,
        max_span_s: float = DEFAULT_MAX_SPAN_S,
        agency_lookup: Callable[[Any], Any] | None = None,
        now: Any = None,
    ):
        self.book = EpisodeBook(quiet_s, max_span_s)
        self.agency_lookup = agency_lookup
        self.now = now
        self.watermark = float("-inf")

    def offer(self, offer: Offer) -> tuple[str, OpenEpisode, list[OpenEpisode]]:
        """Fold one detection in: ("new"|"extend", its episode, episodes that ended)."""
        self.watermark = max(self.watermark, offer.last_ts)
        action, ep, ended = self.book.offer(offer.dedup_key, None, offer.item, offer)
        # files and partitions are not in time order: an episode is only forgotten once it has
        # been quiet for a whole max span beyond its quiet period (its status says "ended" sooner)
        ended += self.book.close_quiet(self.watermark, grace_s=self.book.max_span_s)
        return action, ep, ended

    def document(self, ep: OpenEpisode) -> dict[str, Any]:
        agency = self.agency_lookup(ep.item) if self.agency_lookup else None
        return episode_document(build_alert(ep.item, agency, self.now), ep.summary, self.book.quiet_s)

    def finish(self) -> list[OpenEpisode]:
        """Every episode still open (end of input), oldest first."""
        eps = sorted(self.book.episodes(), key=lambda e: (e.summary.first_ts, e.alert_id))
        self.book.open.clear()
        return eps


def plan_documents(
    offers: Iterable[Offer],
    quiet_s: float = DEFAULT_QUIET_S,
    max_span_s: float = DEFAULT_MAX_SPAN_S,
    now: Any = None,
) -> list[dict[str, Any]]:
    """All alert documents of a finite detection sequence, in the order their episodes started."""
    planner = AlertPlanner(quiet_s, max_span_s, now=now)
    done: list[OpenEpisode] = []
    for offer in offers:
        done += planner.offer(offer)[2]
    done += planner.finish()
    done.sort(key=lambda ep: (ep.summary.first_ts, ep.alert_id))
    return [planner.document(ep) for ep in done]


@dataclass
class BatchEpisode:
    """One episode's share of a worker batch: what to merge into (or create as) its alert."""

    key: str
    alert_id: str  # the id it gets if no open alert of its key takes it
    item: Any  # its first detection/finding (the new alert's base document)
    offers: list[Offer]

    def summary(
        self, skip: frozenset[str] = frozenset(), covered: Mapping[str, Sequence[int]] | None = None
    ) -> EpisodeSummary | None:
        """The batch's summary without the detections already merged (a replay): those whose id is in
        `skip`, and those from a record in `covered` (source -> [first, last] offsets merged)."""
        out: EpisodeSummary | None = None
        for o in self.fresh(skip, covered):
            if out is None:
                out = o.summary.copy()
            else:
                o.absorb_into(out)  # the running union grows in place (merge would copy it per offer)
        return out

    def fresh(
        self, skip: frozenset[str] = frozenset(), covered: Mapping[str, Sequence[int]] | None = None
    ) -> Iterator[Offer]:
        """The detections `summary` counts: not merged already (ids in `skip`, records in `covered`)."""
        for o in self.offers:
            span = covered.get(o.source) if covered and o.source is not None else None
            if span is not None and span[0] <= o.offset <= span[1]:
                continue
            if skip and o.alert_id in skip:  # ids are only hashed when there is something to skip
                continue
            yield o


def plan_batch(offers: Iterable[Offer], quiet_s: float, max_span_s: float) -> list[BatchEpisode]:
    """Split a batch's detections into episodes by key and quiet gaps, in first-seen order."""
    book = EpisodeBook(quiet_s, max_span_s)
    out: list[BatchEpisode] = []
    of: dict[int, BatchEpisode] = {}  # id(open episode) -> its batch share
    for offer in offers:
        action, ep, _ = book.offer(offer.dedup_key, None, offer.item, offer.summary)
        if action == "new":
            of[id(ep)] = BatchEpisode(offer.dedup_key, ep.alert_id, offer.item, [])
            out.append(of[id(ep)])
        of[id(ep)].offers.append(offer)
    return out
