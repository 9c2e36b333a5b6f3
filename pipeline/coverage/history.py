"""Coverage over time, in sqlite under the state directory: ratio samples and state transitions.

Transitions (not periodic copies of every agency) keep a week of a 170-agency province small; the
ratio is sampled every `history_interval_s`. `report` turns both into per-day or per-week rows with
the agencies that dropped out in each period.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from detectors.common.times import DEFAULT_TIMEZONE, iso_s
from pipeline.coverage.state import MONITORED, Snapshot

_SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (ts REAL NOT NULL, tier TEXT NOT NULL, total INTEGER NOT NULL,
  monitored INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS samples_ts ON samples(ts);
CREATE TABLE IF NOT EXISTS transitions (ts REAL NOT NULL, agency_id TEXT NOT NULL, name TEXT NOT NULL,
  tier TEXT NOT NULL, old_state TEXT, new_state TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS transitions_ts ON transitions(ts);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class HistoryStore:
    def __init__(self, path: str | Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=10, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._last_states: dict[str, str] | None = None

    def close(self) -> None:
        self._db.close()

    def record_transitions(self, snap: Snapshot) -> int:
        """Store every agency whose state changed since the last call (or since the last run)."""
        if self._last_states is None:
            self._last_states = self._current_states()
        changes = [
            (snap.at, a.id, a.name, a.tier, self._last_states.get(a.id), a.state)
            for a in snap.agencies
            if self._last_states.get(a.id) != a.state
        ]
        if changes:
            with self._lock:
                self._db.executemany("INSERT INTO transitions VALUES (?,?,?,?,?,?)", changes)
            for c in changes:
                self._last_states[c[1]] = c[5]
        return len(changes)

    def record_sample(self, snap: Snapshot) -> None:
        counted = snap.counted()
        rows = [(snap.at, "", len(counted), sum(a.state == MONITORED for a in counted))]
        for tier in sorted({a.tier for a in counted}):
            pool = [a for a in counted if a.tier == tier]
            rows.append((snap.at, tier, len(pool), sum(a.state == MONITORED for a in pool)))
        with self._lock:
            self._db.executemany("INSERT INTO samples VALUES (?,?,?,?)", rows)

    def _current_states(self) -> dict[str, str]:
        with self._lock:
            rows = self._db.execute("SELECT agency_id, new_state FROM transitions ORDER BY ts, rowid").fetchall()
        return {agency_id: state for agency_id, state in rows}

    def put(self, key: str, value: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO kv VALUES (?,?)", (key, json.dumps(value)))

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def samples(self, since: float, until: float) -> list[tuple[float, str, int, int]]:
        with self._lock:
            return self._db.execute(
                "SELECT ts, tier, total, monitored FROM samples WHERE ts>=? AND ts<? ORDER BY ts", (since, until)
            ).fetchall()

    def transitions(self, since: float, until: float) -> list[tuple[float, str, str, str, str | None, str]]:
        with self._lock:
            return self._db.execute(
                "SELECT ts, agency_id, name, tier, old_state, new_state FROM transitions "
                "WHERE ts>=? AND ts<? ORDER BY ts, rowid",
                (since, until),
            ).fetchall()


@dataclass(slots=True)
class Dropout:
    agency_id: str
    name: str
    tier: str
    at: str  # ISO time it left `monitored`
    to_state: str
    recovered: bool  # back to monitored later in the same period


@dataclass(slots=True)
class PeriodRow:
    period: str  # 2026-11-28 or 2026-W48
    samples: int
    ratio_avg: float | None
    ratio_min: float | None
    ratio_last: float | None
    agencies_total: int | None
    monitored_last: int | None
    dropped_out: list[Dropout] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_report(
    store: HistoryStore, since: float, until: float, period: str = "day", tz: str = DEFAULT_TIMEZONE
) -> list[PeriodRow]:
    """Per-period overall ratio (avg/min/last) and the agencies that left `monitored` in each period."""
    zone = ZoneInfo(tz)
    rows: dict[str, PeriodRow] = {}

    def key(ts: float) -> str:
        d = datetime.fromtimestamp(ts, zone)
        if period == "week":
            y, w, _ = d.isocalendar()
            return f"{y}-W{w:02d}"
        return d.strftime("%Y-%m-%d")

    # every period in the window appears, even without data
    cursor = datetime.fromtimestamp(since, zone)
    end = datetime.fromtimestamp(until, zone)
    while cursor <= end:
        k = key(cursor.timestamp())
        rows.setdefault(k, PeriodRow(k, 0, None, None, None, None, None))
        cursor += timedelta(days=1)
    ratios: dict[str, list[float]] = {}
    for ts, tier, total, monitored in store.samples(since, until):
        if tier:
            continue
        k = key(ts)
        row = rows.setdefault(k, PeriodRow(k, 0, None, None, None, None, None))
        r = monitored / total if total else 0.0
        ratios.setdefault(k, []).append(r)
        row.samples += 1
        row.ratio_last, row.agencies_total, row.monitored_last = r, total, monitored
    for k, rs in ratios.items():
        rows[k].ratio_avg = round(sum(rs) / len(rs), 4)
        rows[k].ratio_min = round(min(rs), 4)
        rows[k].ratio_last = round(rows[k].ratio_last or 0.0, 4)
    for ts, agency_id, name, tier, old, new in store.transitions(since, until):
        row = rows[key(ts)]
        if old == MONITORED and new != MONITORED:
            iso = iso_s(ts)
            row.dropped_out.append(Dropout(agency_id, name, tier, iso, new, recovered=False))
        elif new == MONITORED:
            for d in row.dropped_out:
                if d.agency_id == agency_id:
                    d.recovered = True
    return [rows[k] for k in sorted(rows)]
