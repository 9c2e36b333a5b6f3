"""Tumbling event-time windows per entity, closed by a watermark (pure, bounded state).

Windows are aligned to multiples of their length in unix time, so a window's identity
(entity, start) is the same in training, offline scoring and every worker replica. A window closes
when the watermark reaches its end; an event older than what is already closed is counted as late
and dropped rather than reopening a window that has been scored.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from detectors.anomaly.features import NO_HISTORY, History, Profile

EVIDENCE_MAX = 20
HISTORY_WINDOWS = 10  # a 1-minute window also sees the entity's previous 10 minutes
EVIDENCE_FIELDS = (
    "@timestamp",
    "event.dataset",
    "source.ip",
    "user.name",
    "event.outcome",
    "http.request.method",
    "url.original",
    "http.request.body.content",
    "http.response.status_code",
    "http.response.body.bytes",
    "user_agent.original",
    "process.name",
    "host.name",
    "log.file.path",
    "log.offset",
)


def window_start(ts: float, window_seconds: int) -> float:
    return float(int(ts // window_seconds) * window_seconds)


def evidence_of(event: dict[str, Any]) -> dict[str, Any]:
    """The few fields an analyst needs, values truncated: evidence must stay small."""
    out = {}
    for key in EVIDENCE_FIELDS:
        v = event.get(key)
        if v is not None:
            out[key] = v[:512] if isinstance(v, str) else v
    return out


@dataclass(slots=True)
class ClosedWindow:
    entity: tuple[str, ...]
    start: float
    end: float
    accumulator: Any
    events: int
    evidence: list[dict[str, Any]] = field(default_factory=list)
    history: History = NO_HISTORY


@dataclass(slots=True)
class WindowStats:
    accepted: int = 0
    late: int = 0  # event time already closed by the watermark
    overflow: int = 0  # open-window limit reached
    untimed: int = 0  # no usable @timestamp


class Windower:
    """Open windows of one profile and length; `add` is O(1) per event."""

    def __init__(
        self, profile: Profile, window_seconds: int, max_open: int = 200_000, evidence_max: int = EVIDENCE_MAX
    ) -> None:
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        self.profile = profile
        self.window_seconds = int(window_seconds)
        self.max_open = max_open
        self.evidence_max = evidence_max
        self.open: dict[float, dict[tuple[str, ...], ClosedWindow]] = {}
        self.open_count = 0
        self.history_windows = HISTORY_WINDOWS
        self.histories: dict[tuple[str, ...], deque[Any]] = {}  # entity -> (start, events, errors)
        self.closed_until = float("-inf")
        self._pruned_at = float("-inf")
        self.stats = WindowStats()

    def add(self, event: dict[str, Any], ts: float | None) -> ClosedWindow | None:
        """Feed one accepted event; per-request profiles return their one-event window at once."""
        if ts is None:
            self.stats.untimed += 1
            return None
        entity = self.profile.entity(event)
        if self.profile.per_request:
            acc = self.profile.accumulator()
            acc.add(event)
            self.stats.accepted += 1
            return ClosedWindow(entity, ts, ts, acc, 1)  # evidence only if it becomes a finding
        start = window_start(ts, self.window_seconds)
        if start + self.window_seconds <= self.closed_until:
            self.stats.late += 1
            return None
        by_entity = self.open.get(start)
        if by_entity is None:
            by_entity = self.open[start] = {}
        window = by_entity.get(entity)
        if window is None:
            if self.open_count >= self.max_open:
                self.stats.overflow += 1
                return None
            window = by_entity[entity] = ClosedWindow(
                entity, start, start + self.window_seconds, self.profile.accumulator(), 0
            )
            self.open_count += 1
        window.accumulator.add(event)
        window.events += 1
        if len(window.evidence) < self.evidence_max:
            window.evidence.append(evidence_of(event))
        self.stats.accepted += 1
        return None

    def advance(self, watermark: float) -> list[ClosedWindow]:
        """Close every window whose end is at or before the watermark.

        An infinite watermark (the worker's idle flush, the end of an offline input) closes every open
        window but not the future: what counts as closed is up to the end of the last window it closed,
        so events after a quiet period open new windows instead of all being dropped as late."""
        if watermark <= self.closed_until:
            return []
        if watermark != float("inf"):
            self.closed_until = watermark
        elif self.open:
            self.closed_until = max(self.closed_until, max(self.open) + self.window_seconds)
        closed: list[ClosedWindow] = []
        for start in sorted(s for s in self.open if s + self.window_seconds <= watermark):
            windows = self.open.pop(start)
            self.open_count -= len(windows)
            for w in windows.values():
                w.history = self._remember(w)
            closed.extend(windows.values())
        if closed:
            self._forget_before(closed[-1].start - self.history_windows * self.window_seconds)
        return closed

    def _remember(self, w: ClosedWindow) -> History:
        """History of the entity's previous `history_windows` windows, then record this one."""
        past = self.histories.get(w.entity)
        lookback = w.start - self.history_windows * self.window_seconds
        if past is None:
            if len(self.histories) >= self.max_open:
                past = deque()  # bounded: no room to remember this entity
            else:
                past = self.histories[w.entity] = deque()
        while past and past[0][0] < lookback:
            past.popleft()
        h = History(sum(p[1] for p in past), sum(p[2] for p in past), len(past)) if past else NO_HISTORY
        events, errors = w.accumulator.summary()
        past.append((w.start, events, errors))
        return h

    def _forget_before(self, cutoff: float) -> None:
        if cutoff < self._pruned_at + self.window_seconds:
            return  # once per window length: a full scan on every close would cost O(entities)
        self._pruned_at = cutoff
        stale = [e for e, past in self.histories.items() if not past or past[-1][0] < cutoff]
        for e in stale:
            del self.histories[e]

    def flush(self) -> list[ClosedWindow]:
        """Close everything (end of an offline input)."""
        return self.advance(float("inf"))
