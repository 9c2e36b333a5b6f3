"""Alert suppression: repeats of a dedup key inside the window update one alert's count."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class Suppressible(Protocol):
    """What `Suppressor.offer` reads of a detection (a `Detection`, or the worker's alert candidate)."""

    @property
    def dedup_key(self) -> str: ...
    @property
    def detection_id(self) -> str: ...
    @property
    def start_ts(self) -> float: ...
    @property
    def end_ts(self) -> float: ...
    @property
    def count(self) -> int: ...


@dataclass
class Suppressed:
    """What the worker should do with a detection."""

    action: str  # "new": index a new alert; "update": bump the existing one
    alert_id: str  # detection_id of the alert that stands for this dedup key
    count: int  # detections folded into that alert so far
    last_ts: float  # latest event time seen for it
    detection: Suppressible


@dataclass
class _Open:
    alert_id: str
    first_ts: float
    last_ts: float
    count: int


@dataclass
class Suppressor:
    """Pure, event-time suppression keyed by `Detection.dedup_key`.

    A detection whose dedup key has an open alert that started less than `window` seconds
    (event time) before it becomes an "update" of that alert; otherwise it opens a new alert.
    Deterministic for a given detection sequence, so replays make the same decisions.
    """

    window: float = 3600.0
    max_keys: int = 100_000
    open: dict[str, Any] = field(default_factory=dict)

    def offer(self, det: Suppressible) -> Suppressed:
        cur = self.open.get(det.dedup_key)
        if cur is not None and det.end_ts - cur.first_ts < self.window and det.detection_id != cur.alert_id:
            cur.count += det.count
            cur.last_ts = max(cur.last_ts, det.end_ts)
            return Suppressed("update", cur.alert_id, cur.count, cur.last_ts, det)
        if cur is not None and det.detection_id == cur.alert_id:
            return Suppressed("update", cur.alert_id, cur.count, cur.last_ts, det)  # replayed
        if len(self.open) >= self.max_keys:
            self.expire(det.end_ts)
        self.open[det.dedup_key] = _Open(det.detection_id, det.start_ts, det.end_ts, det.count)
        return Suppressed("new", det.detection_id, det.count, det.end_ts, det)

    def expire(self, now_ts: float) -> int:
        """Forget keys whose window ended before `now_ts` (event time)."""
        stale = [k for k, v in self.open.items() if now_ts - v.first_ts >= self.window]
        for k in stale:
            del self.open[k]
        if len(self.open) >= self.max_keys:  # still full: drop the oldest
            for k in sorted(self.open, key=lambda k: self.open[k].first_ts)[: len(self.open) // 10]:
                del self.open[k]
        return len(stale)

    def to_data(self) -> dict[str, Any]:
        return {k: [v.alert_id, v.first_ts, v.last_ts, v.count] for k, v in self.open.items()}

    def load_data(self, data: dict[str, Any]) -> None:
        self.open = {k: _Open(a, float(f), float(last), int(c)) for k, (a, f, last, c) in data.items()}
