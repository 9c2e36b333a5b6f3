"""Durations, one home: every duration a person writes (config keys, Sigma `timespan`, `--since`).

One accepted form everywhere: a positive number with an optional unit, s (default), m, h, d or w
("90s", "15m", "1.5h", "2d", "1w", 45). Combined forms ("1h30") and months/years (not a fixed length)
are refused with an error that shows the accepted form.
"""

from __future__ import annotations

import re

UNITS: dict[str, int] = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])?\s*$")


def parse_duration(value: object, *, allow_zero: bool = False) -> float:
    """'90s', '15m', '1h', '2d', '1w' or a number of seconds -> seconds; ValueError otherwise.

    Zero is refused unless `allow_zero` (an offset, like a test event's `at: 0s`, may be zero)."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"expected a duration like 15m, got {value!r}")
    if isinstance(value, (int, float)):
        if not (value >= 0 if allow_zero else value > 0) or value == float("inf"):
            raise ValueError(f"duration must be positive, got {value!r}")
        return float(value)
    m = _DURATION.match(str(value))
    if not m or (float(m.group(1)) <= 0 and not allow_zero):
        raise ValueError(f"expected a positive duration like 90s, 15m, 1h, 2d, 1w, got {value!r}")
    return float(m.group(1)) * UNITS[m.group(2) or "s"]
