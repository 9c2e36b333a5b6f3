"""Time, one home: epoch seconds inside the pipeline, ISO-8601 UTC text only where a document is rendered.

`iso_ms` is the only formatter of alert, event and log timestamps ('2026-05-28T20:26:40.123Z'), `iso_s`
the second-precision one (reports); `to_epoch` is the only parser of `@timestamp`-like values (ISO
text, epoch numbers, datetimes) and `to_datetime` its datetime form. Formatting is on the hot path of
parsers and alert building, so the UTC 'YYYY-MM-DDTHH:MM:' prefix is cached per minute; the result is
the same as `datetime.fromtimestamp(ts, UTC)` rounded to microseconds, then cut to milliseconds.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import lru_cache

from collectors.timezone import DEFAULT_TIMEZONE

__all__ = ["DEFAULT_TIMEZONE", "MAX_EPOCH", "epoch_us", "iso_ms", "iso_s", "record_time", "to_datetime", "to_epoch"]

MAX_EPOCH = 7258118400.0  # 2200-01-01: later times are absurd in a log


@lru_cache(maxsize=4096)
def _minute_prefix(minute: int) -> str:
    return datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%dT%H:%M:")


def _split(ts: float) -> tuple[int, int]:
    """(whole seconds, microseconds) rounded like `datetime.fromtimestamp` (half to even)."""
    whole = math.floor(ts)
    us = round((ts - whole) * 1e6)
    if us >= 1_000_000:
        whole, us = whole + 1, us - 1_000_000
    return whole, us


def epoch_us(ts: float) -> int:
    """Epoch seconds -> whole microseconds, rounded like `datetime` (differences of two are exact)."""
    whole, us = _split(ts)
    return whole * 1_000_000 + us


def iso_ms(ts: float | datetime) -> str:
    """Epoch seconds (or an aware datetime) -> 'YYYY-MM-DDTHH:MM:SS.mmmZ' in UTC; ValueError if no date can be."""
    if isinstance(ts, datetime):
        ts = (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp()
    try:
        whole, us = _split(ts)
        return f"{_minute_prefix(whole // 60)}{whole % 60:02d}.{us // 1000:03d}Z"
    except (OverflowError, OSError) as exc:
        raise ValueError(f"not a representable time: {ts!r}") from exc


def record_time(timestamp_ms: int) -> str:
    """A Kafka record's timestamp (epoch ms) as `iso_ms` renders it, or the number itself when no date
    can be (its producer may set any 64-bit value): a listing of records never ends on one of them."""
    try:
        return iso_ms(timestamp_ms / 1000.0)
    except (ValueError, OverflowError, TypeError):
        return f"{timestamp_ms} ms"


def iso_s(ts: float) -> str:
    """Epoch seconds -> 'YYYY-MM-DDTHH:MM:SSZ' in UTC (whole seconds, for reports)."""
    return iso_ms(ts)[:-5] + "Z"


def to_epoch(value: object) -> float | None:
    """ISO-8601 text ('Z' or an offset; naive means UTC), epoch seconds or a datetime -> epoch seconds.

    None when absent or unreadable (booleans are not times). ISO text is read once per distinct text
    while it is in a small memo (the engine and the alert layer read the same `@timestamp`, and a
    burst of events shares its second)."""
    if type(value) is str:
        known = _EPOCHS.get(value, _UNREAD)
        if known is not _UNREAD:
            return known  # type: ignore[return-value]  # a float or None, as stored below
        ts = _read_text(value)
        if len(value) <= _EPOCH_MEMO_CHARS:
            if len(_EPOCHS) >= _EPOCH_MEMO_ENTRIES:
                _EPOCHS.clear()
            _EPOCHS[value] = ts
        return ts
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return _read_text(value)


def _read_text(value: object) -> float | None:
    try:
        dt = datetime.fromisoformat(value)  # type: ignore[arg-type]  # the common case: ISO text as ECS has it
    except (TypeError, ValueError):
        try:
            dt = datetime.fromisoformat(str(value).strip())
        except ValueError:
            return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


_UNREAD: object = object()
_EPOCH_MEMO_ENTRIES = 4096
_EPOCH_MEMO_CHARS = 40  # ISO-8601 with microseconds and an offset is 32
_EPOCHS: dict[str, float | None] = {}  # text -> its reading; bounded (the text comes from logs)


def to_datetime(value: object) -> datetime | None:
    """`to_epoch`'s reading as an aware UTC datetime; None when unreadable or out of range."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    ts = to_epoch(value)
    if ts is None:
        return None
    try:
        return datetime.fromtimestamp(ts, UTC)
    except (OverflowError, OSError, ValueError):
        return None
