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

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from detectors.alerts.build import bound_evidence
from detectors.alerts.nested import to_flat
from detectors.common.times import iso_ms, to_epoch

Event = dict[str, Any]
OrderKey = tuple[float, str, str, int, str]
Keyed = tuple[OrderKey, Event]

# Fields whose distinct values an analyst wants counted on an episode (paths of a scan, users of
# a spray, ports of a port scan ...)
DISTINCT_FIELDS = (
    "source.ip",
    "user.name",
    "user.target.name",
    "url.path",
    "destination.port",
    "destination.ip",
    "host.name",
    "http.response.status_code",
    "user_agent.original",
    "process.command_line",
    "file.path",
)
DISTINCT_CAP = 1000  # values kept per field (beyond it the count is "at least")
DISTINCT_SAMPLE = 20  # values shown on the alert
EVIDENCE_FIRST = 10  # earliest events kept
EVIDENCE_LATEST = 10  # latest events kept
DEFAULT_QUIET_S = 900.0
DEFAULT_MAX_SPAN_S = 86400.0


def _iso(ts: float) -> str:
    return iso_ms(ts)


def _event_ts(ev: Mapping[str, Any], default: float) -> float:
    ts = to_epoch(ev.get("@timestamp"))
    return ts if ts is not None else default


def _order(ev: Mapping[str, Any], ts: float) -> OrderKey:
    """A total order on events that does not depend on arrival: time, then where it was read."""
    get = ev.get
    offset = get("log.offset")
    text = get("message", _ABSENT)
    if text is _ABSENT:
        text = get("event.original", "")
    return (
        ts,
        str(get("agent.id", "")),
        str(get("log.file.path", "")),
        int(offset or 0) if isinstance(offset, int) else 0,
        str(text)[:200],
    )


_ABSENT: Any = object()


@dataclass
class EpisodeSummary:
    first_ts: float
    last_ts: float
    detections: int = 1
    events: int = 0
    distinct: dict[str, list[str]] = field(default_factory=dict)  # field -> sorted values (<= cap)
    capped: list[str] = field(default_factory=list)  # fields whose distinct count reached the cap
    first: list[Keyed] = field(default_factory=list)  # (order key, event), sorted
    latest: list[Keyed] = field(default_factory=list)
    # first and latest are the ends of one sorted list without repeated keys (a merge's result)
    unique: bool = field(default=False, repr=False, compare=False)

    @classmethod
    def of(
        cls,
        start_ts: float,
        end_ts: float,
        events: int,
        evidence: Iterable[Any],
        metric: Mapping[str, Any] | None = None,
    ) -> EpisodeSummary:
        s = cls(float(start_ts), float(end_ts), 1, int(events))
        keyed: list[Keyed] = []
        distinct = s.distinct
        for ev in evidence:  # the events themselves, not copies: nothing downstream changes them
            if type(ev) is dict or isinstance(ev, Mapping):
                get = ev.get
                keyed.append((_order(ev, _event_ts(ev, end_ts)), ev if type(ev) is dict else dict(ev)))
                for f in DISTINCT_FIELDS:
                    v = get(f)
                    if v is None or (type(v) is not str and isinstance(v, (dict, list))):
                        continue
                    v = v if type(v) is str else str(v)
                    if f in distinct:
                        s._add_value(f, v)
                    else:
                        distinct[f] = [v]
        values = (metric or {}).get("values")
        if isinstance(values, list) and values:  # a value_count window: all its distinct values
            distinct.setdefault("_values", [])
            for v in values:
                s._add_value("_values", str(v))
        if len(keyed) > 1:
            keyed.sort(key=_first)
        s.first = keyed[:EVIDENCE_FIRST]
        s.latest = keyed[-EVIDENCE_LATEST:]
        s.unique = len(keyed) <= 1
        return s

    def _add_value(self, f: str, v: str) -> None:
        vals = self.distinct.setdefault(f, [])
        i = bisect.bisect_left(vals, v)
        if i < len(vals) and vals[i] == v:
            return
        vals.insert(i, v)
        if len(vals) > DISTINCT_CAP:
            vals.pop()
            if f not in self.capped:
                self.capped.append(f)

    def merge(self, other: EpisodeSummary) -> EpisodeSummary:
        """The union of two summaries (commutative and associative, so batches merge in any order)."""
        return self.copy().absorb(other)

    def copy(self) -> EpisodeSummary:
        """A summary that can absorb others without changing this one (the events are shared)."""
        return EpisodeSummary(
            self.first_ts,
            self.last_ts,
            self.detections,
            self.events,
            {k: list(v) for k, v in self.distinct.items()},
            list(self.capped),
            list(self.first),
            list(self.latest),
            self.unique,
        )

    def absorb(self, other: EpisodeSummary) -> EpisodeSummary:
        """`self.merge(other)` in place (an open episode growing by one detection): returns self."""
        self.first_ts = min(self.first_ts, other.first_ts)
        self.last_ts = max(self.last_ts, other.last_ts)
        self.detections += other.detections
        self.events += other.events
        if self.capped or other.capped:
            self.capped = sorted(set(self.capped) | set(other.capped))
        for f, vals in other.distinct.items():
            for v in vals:
                self._add_value(f, v)
        if self.unique and len(other.first) == 1 and len(other.latest) == 1:
            self._add_one(other.first[0])  # the usual growth: one more event
            return self
        ordered = sorted(_unique(self.first + self.latest + other.first + other.latest), key=_first)
        self.first = ordered[:EVIDENCE_FIRST]
        self.latest = ordered[-EVIDENCE_LATEST:]
        self.unique = True
        return self

    def absorb_event(self, start_ts: float, end_ts: float, count: int, event: Event) -> None:
        """`self.absorb(EpisodeSummary.of(start_ts, end_ts, count, [event]))` without making that summary."""
        start, end = float(start_ts), float(end_ts)
        if start < self.first_ts:  # min() and max(), without the calls
            self.first_ts = start
        if end > self.last_ts:
            self.last_ts = end
        self.detections += 1
        self.events += int(count)
        if self.capped:
            self.capped = sorted(set(self.capped))
        get = event.get
        distinct = self.distinct
        for f in DISTINCT_FIELDS:
            v = get(f)
            if v is None:
                continue
            if type(v) is not str:
                if isinstance(v, (dict, list)):
                    continue
                v = str(v)
            vals = distinct.get(f)
            if vals is not None:  # a value already held (the usual case), found without the call
                i = bisect.bisect_left(vals, v)
                if i < len(vals) and vals[i] == v:
                    continue
            self._add_value(f, v)
        item = (_order(event, _event_ts(event, end)), event)
        if self.unique:
            self._add_one(item)
            return
        ordered = sorted(_unique([*self.first, *self.latest, item]), key=_first)
        self.first = ordered[:EVIDENCE_FIRST]
        self.latest = ordered[-EVIDENCE_LATEST:]
        self.unique = True

    def _add_one(self, item: Keyed) -> None:
        """The sorted-union step of `absorb` for one event, by insertion (same result)."""
        key = item[0]
        first, latest = self.first, self.latest
        if key[0] != key[0]:  # a NaN time orders nothing: look for the key one by one
            if any(k == key for k, _ in first) or any(k == key for k, _ in latest):
                return
            i, j = bisect.bisect_right(first, key, key=_first), bisect.bisect_right(latest, key, key=_first)
        else:  # both lists are sorted with unique keys: a held key is where bisect puts it
            i = bisect.bisect_left(first, key, key=_first)
            if i < len(first) and first[i][0] == key:
                return  # already held: the held event stays, as in the union
            j = bisect.bisect_left(latest, key, key=_first)
            if j < len(latest) and latest[j][0] == key:
                return
        if len(first) < EVIDENCE_FIRST or key < first[-1][0]:
            first.insert(i, item)  # where insort puts it: no equal key is held
            del first[EVIDENCE_FIRST:]
        if len(latest) < EVIDENCE_LATEST or key > latest[0][0]:
            latest.insert(j, item)
            del latest[:-EVIDENCE_LATEST]

    def evidence(self) -> list[Event]:
        seen: set[OrderKey] = set()
        out = []
        for k, ev in self.first + self.latest:
            if k not in seen:
                seen.add(k)
                out.append(ev)
        return out

    # --- plain data, stored on the alert so any worker can merge into it -----------------------
    def to_data(self) -> dict[str, Any]:
        return {
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "detections": self.detections,
            "events": self.events,
            "distinct": self.distinct,
            "capped": self.capped,
        }


_first = itemgetter(0)


def _unique(items: Iterable[Keyed]) -> list[Keyed]:
    seen: dict[OrderKey, Keyed] = {}
    for k, ev in items:
        seen.setdefault(k, (k, ev))
    return list(seen.values())


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
            keyed.append((_order(flat, _event_ts(flat, s.last_ts)), flat))
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
