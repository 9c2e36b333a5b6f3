"""Episodes: an ongoing activity is one alert that keeps growing, not a flood (pure, no I/O).

Every detection (rule match, correlation window, correlation continuation, anomaly finding) has a
dedup key (rule + group values). Detections of one key whose event times follow each other with
gaps of at most `quiet_s` form one *episode*, reported as ONE alert: its id is the first
detection's id, and its `event.end`, counts (detections, events, distinct values of the fields
analysts pivot on) and evidence sample (the first and the latest events, bounded) grow while the
activity continues. A gap longer than `quiet_s`, or an episode older than `max_span_s`, starts a
new alert.

The running figures are an `EpisodeSummary`, which merges: min/max times, summed counts, bounded
unions of distinct values (the smallest values kept, so the result does not depend on arrival
order), and the first/latest events by time. So the document is the same whether a scan folds
every detection in one pass or workers fold batches into what Elasticsearch already holds
(whole-document writes guarded by if_seq_no/if_primary_term): `episode_document(base, summary)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from detectors.alerts.episode_summary import (
    DEFAULT_MAX_SPAN_S,
    DEFAULT_QUIET_S,
    DISTINCT_CAP,
    DISTINCT_FIELDS,
    DISTINCT_SAMPLE,
    EVIDENCE_FIRST,
    EVIDENCE_LATEST,
    EpisodeSummary,
    event_ts,
    order_key,
)
from detectors.alerts.evidence import bound_evidence
from detectors.alerts.nested import to_flat
from detectors.common.times import iso_ms

__all__ = [
    "DEFAULT_MAX_SPAN_S",
    "DEFAULT_QUIET_S",
    "DISTINCT_CAP",
    "DISTINCT_FIELDS",
    "DISTINCT_SAMPLE",
    "EVIDENCE_FIRST",
    "EVIDENCE_LATEST",
    "EpisodeBook",
    "EpisodeSummary",
    "OpenEpisode",
    "episode_document",
    "summary_from_document",
]


def _iso(ts: float) -> str:
    return iso_ms(ts)


def summary_from_document(doc: Mapping[str, Any]) -> EpisodeSummary | None:
    """The summary an indexed alert carries (`socpipe.episode.state` + its evidence)."""
    ep = (doc.get("socpipe") or {}).get("episode") or {}
    state = ep.get("state")
    if not isinstance(state, Mapping):
        return None
    s = EpisodeSummary(
        float(state["first_ts"]),
        float(state["last_ts"]),
        int(state.get("detections", 1)),
        int(state.get("events", 0)),
        {str(k): sorted(str(x) for x in v)[:DISTINCT_CAP] for k, v in (state.get("distinct") or {}).items()},
        list(state.get("capped") or []),
    )
    keyed = []
    for ev in (doc.get("socpipe") or {}).get("evidence") or []:
        if isinstance(ev, Mapping):
            flat = to_flat(ev)
            keyed.append((order_key(flat, event_ts(flat, s.last_ts)), flat))
    keyed.sort(key=lambda kv: kv[0])
    s.first = keyed[:EVIDENCE_FIRST]
    s.latest = keyed[-EVIDENCE_LATEST:]
    return s


def episode_document(base: dict[str, Any], summary: EpisodeSummary, quiet_s: float = DEFAULT_QUIET_S) -> dict[str, Any]:
    """`base` (the first detection's alert document) grown to the whole episode. Pure: a new dict.

    The document holds no "ongoing/ended" flag, which would depend on when it was written: the
    episode is over once `last_seen` is more than `quiet_s` in the past (the triage queue shows it)."""
    doc = dict(base)
    event = dict(doc.get("event") or {})
    event["start"] = _iso(summary.first_ts)
    event["end"] = _iso(summary.last_ts)
    event["duration"] = max(0, int(round((summary.last_ts - summary.first_ts) * 1e9)))
    doc["event"] = event
    socpipe = dict(doc.get("socpipe") or {})
    kept, fields = bound_evidence(summary.evidence())
    socpipe["evidence"] = kept
    socpipe["evidence_fields"] = fields
    socpipe["evidence_count"] = summary.events
    distinct = {
        f: {"count": len(v), "at_least": f in summary.capped, "values": v[:DISTINCT_SAMPLE]}
        for f, v in sorted(summary.distinct.items())
        if f != "_values"
    }
    if summary.distinct.get("_values"):
        distinct["correlated_values"] = {
            "count": len(summary.distinct["_values"]),
            "at_least": "_values" in summary.capped,
            "values": summary.distinct["_values"][:DISTINCT_SAMPLE],
        }
    socpipe["episode"] = {
        "quiet_s": quiet_s,
        "detections": summary.detections,
        "events": summary.events,
        "first_seen": _iso(summary.first_ts),
        "last_seen": _iso(summary.last_ts),
        "distinct": distinct,
        "state": summary.to_data(),
    }
    supp = dict(socpipe.get("suppression") or {})
    supp["count"] = summary.detections - 1  # detections folded into this alert after the first
    supp["first_seen"] = _iso(summary.first_ts)
    supp["last_seen"] = _iso(summary.last_ts)
    socpipe["suppression"] = supp
    doc["socpipe"] = socpipe
    return doc


@dataclass
class OpenEpisode:
    alert_id: str
    item: Any  # the first detection/finding: what the base document is built from
    summary: EpisodeSummary
    dirty: bool = True
    owned: bool = False  # summary is this episode's own copy (else the first offer's: merge, do not absorb)


@dataclass
class EpisodeBook:
    """Open episodes per dedup key, on event time (pure; deterministic for a detection sequence).

    A detection joins an open episode of its key when it lies within `quiet_s` of it on either side
    (detections arrive out of time order: files are not sorted, windows close late) and the episode
    would not grow beyond `max_span_s`; otherwise it opens a new one. A key can have several open
    episodes at once (an old burst still receiving late detections while a new one runs)."""

    quiet_s: float = DEFAULT_QUIET_S
    max_span_s: float = DEFAULT_MAX_SPAN_S
    max_keys: int = 100_000
    open: dict[str, list[OpenEpisode]] = field(default_factory=dict)
    floor: float = float("inf")  # <= every open episode's last_ts: close_quiet's nothing-to-do test

    def fits(self, ep: EpisodeSummary, s: Any) -> bool:
        first: float = s.first_ts
        last: float = s.last_ts
        return (
            first - ep.last_ts <= self.quiet_s
            and ep.first_ts - last <= self.quiet_s
            and max(ep.last_ts, last) - min(ep.first_ts, first) <= self.max_span_s
        )

    def offer(
        self, key: str, alert_id: str | None, item: Any, summary: Any
    ) -> tuple[str, OpenEpisode, list[OpenEpisode]]:
        """-> ("new" | "extend", the episode, episodes it ended). `alert_id` None: `item.alert_id`,
        read only when the detection opens an episode. `summary`: an EpisodeSummary, or what has
        `first_ts`, `last_ts`, `summary` and `absorb_into(summary)` (alerts.plan.Offer)."""
        eps = self.open.setdefault(key, [])
        for cur in eps:
            if self.fits(cur.summary, summary):
                if not cur.owned:
                    cur.summary, cur.owned = cur.summary.copy(), True
                if type(summary) is EpisodeSummary:
                    cur.summary.absorb(summary)
                else:
                    summary.absorb_into(cur.summary)
                cur.dirty = True
                return "extend", cur, []
        ended: list[OpenEpisode] = []
        if len(self.open) >= self.max_keys:
            ended = self.close_quiet(float("inf"), oldest_fraction=0.1)
            eps = self.open.setdefault(key, [])
        own = summary if type(summary) is EpisodeSummary else summary.summary
        ep = OpenEpisode(item.alert_id if alert_id is None else alert_id, item, own)
        eps.append(ep)
        self.floor = min(self.floor, own.last_ts)
        return "new", ep, ended

    def episodes(self) -> list[OpenEpisode]:
        return [ep for eps in self.open.values() for ep in eps]

    def close_quiet(self, watermark: float, grace_s: float = 0.0, oldest_fraction: float = 0.0) -> list[OpenEpisode]:
        """End (and forget) the episodes quiet since before `watermark - quiet_s - grace_s`. A
        detection of the key arriving later (out of order by more than the grace) opens a new
        alert, so callers keep a grace as long as the disorder they expect."""
        if oldest_fraction:
            ranked = sorted(self.episodes(), key=lambda e: e.summary.last_ts)
            gone = {id(e) for e in ranked[: max(1, int(len(ranked) * oldest_fraction))]}
        elif watermark - self.floor <= self.quiet_s + grace_s:
            return []  # the usual case, per detection: no episode can be that quiet yet
        else:
            gone = {id(e) for e in self.episodes() if watermark - e.summary.last_ts > self.quiet_s + grace_s}
        floor = float("inf")
        ended: list[OpenEpisode] = []
        for key in list(self.open):
            keep: list[OpenEpisode] = []
            for e in self.open[key]:
                if id(e) in gone:
                    ended.append(e)
                else:
                    keep.append(e)
                    floor = min(floor, e.summary.last_ts)
            if keep:
                self.open[key] = keep
            else:
                del self.open[key]
        self.floor = floor
        return ended
