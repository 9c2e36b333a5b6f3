"""An episode's running figures, `EpisodeSummary` (pure, no I/O): first/last event times, summed
detection and event counts, bounded unions of distinct values of the fields analysts pivot on (the
smallest values kept, so the result does not depend on arrival order), and the first/latest events by
time. Summaries merge commutatively and associatively, so a scan folding every detection in one pass
and workers folding batches into what Elasticsearch holds reach the same figures.

Episodes themselves (which detections form one, and the alert document of one) are
detectors.alerts.episodes.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from detectors.common.times import to_epoch

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


def event_ts(ev: Mapping[str, Any], default: float) -> float:
    ts = to_epoch(ev.get("@timestamp"))
    return ts if ts is not None else default


def order_key(ev: Mapping[str, Any], ts: float) -> OrderKey:
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
                keyed.append((order_key(ev, event_ts(ev, end_ts)), ev if type(ev) is dict else dict(ev)))
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
        item = (order_key(event, event_ts(event, end)), event)
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
        if latest and key > latest[-1][0]:  # later than every event held (events mostly come in order)
            if len(first) < EVIDENCE_FIRST:
                first.append(item)
            latest.append(item)
            del latest[:-EVIDENCE_LATEST]
            return
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
