"""Small ECS helpers shared by every parser family: time conversion, IP checks, event shells.

Time conversion is the hot path of every parser, so the expensive part (time-zone arithmetic) is
cached per minute: a log holds thousands of lines per minute, and only the seconds change.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from detectors.common.times import DEFAULT_TIMEZONE, MAX_EPOCH, iso_ms

UTC = UTC
PARSE_FAILURE_TAG = "_socpipe_parse_failure"
TIMESTAMP_INVALID_TAG = "_socpipe_timestamp_invalid"
MIN_YEAR, MAX_YEAR = 1970, 2200  # anything outside is an absurd timestamp: fall back to read time

MONTHS = {
    m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)
}


@lru_cache(maxsize=64)
def zone(name: str | None) -> ZoneInfo | timezone:
    """A tz database zone; unknown names fall back to the default zone rather than failing a line."""
    if not name:
        return ZoneInfo(DEFAULT_TIMEZONE)
    if name.upper() in ("UTC", "Z", "GMT"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        return ZoneInfo(DEFAULT_TIMEZONE)


@lru_cache(maxsize=8192)
def _minute_prefix(tz: str | int, y: int, mo: int, d: int, h: int, mi: int) -> str | None:
    """'YYYY-MM-DDTHH:MM:' in UTC for a local minute; tz is a zone name or a fixed offset in minutes."""
    if not (MIN_YEAR <= y <= MAX_YEAR):
        return None
    try:
        tzinfo = timezone(timedelta(minutes=tz)) if isinstance(tz, int) else zone(tz)
        dt = datetime(y, mo, d, h, mi, tzinfo=tzinfo).astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return dt.strftime("%Y-%m-%dT%H:%M:")


def utc_iso(tz: str | int, y: int, mo: int, d: int, h: int, mi: int, s: int, frac: str = "") -> str | None:
    """ECS @timestamp (UTC, ms, 'Z') of a local wall-clock time, or None if the time is impossible."""
    if s > 60 or s < 0:
        return None
    prefix = _minute_prefix(tz, y, mo, d, h, mi)
    if prefix is None:
        return None
    if s == 60:  # leap second: keep it inside the minute
        return f"{prefix}59.999Z"
    return f"{prefix}{s:02d}.{(frac + '000')[:3]}Z"


def epoch_iso(seconds: float) -> str | None:
    """ECS @timestamp of a unix time; None for NaN or a time outside 1970..2200."""
    if seconds != seconds or not (0 <= seconds < MAX_EPOCH):
        return None
    return iso_ms(seconds)


def epoch_str_iso(sec: str, frac: str = "") -> str | None:
    """Like epoch_iso but exact for '1758539601' + '697' strings (no float rounding)."""
    if not sec.isdigit() or len(sec) > 11:
        return None
    whole = int(sec)
    if whole >= MAX_EPOCH:
        return None
    return f"{iso_ms(whole)[:-4]}{(frac + '000')[:3]}Z"


def offset_minutes(text: str) -> int | None:
    """'+0700', '+07:00', '-05', 'Z' -> minutes east of UTC."""
    if text in ("Z", "z"):
        return 0
    if len(text) < 3 or text[0] not in "+-":
        return None
    digits = text[1:].replace(":", "")
    if not digits.isdigit() or len(digits) not in (2, 4):
        return None
    minutes = int(digits[:2]) * 60 + (int(digits[2:]) if len(digits) == 4 else 0)
    if minutes > 18 * 60:
        return None
    return -minutes if text[0] == "-" else minutes


def zone_of(offset: str | None, default: str) -> str | int:
    """The zone of a written time: its offset ('+07:00', '-05', 'Z') in minutes east of UTC when it has
    a readable one, else `default` (the source's zone name), as `utc_iso` takes it."""
    if offset:
        minutes = offset_minutes(offset)
        if minutes is not None:
            return minutes
    return default


_IPV4 = re.compile(r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}\Z")


def is_ip(text: str) -> bool:
    """True for IPv4/IPv6 literals; fail2ban logs also hold hostnames here. IPv4 by one C-level regex
    (attack traffic has too many distinct addresses for a cache to help)."""
    if ":" not in text:
        return _IPV4.match(text) is not None
    return _is_ipv6(text)


@lru_cache(maxsize=16384)
def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def clean_ip(text: str) -> str:
    """Strip an IPv4-mapped IPv6 prefix so one attacker has one source.ip."""
    if text.startswith("::ffff:") and "." in text:
        return text[7:]
    return text


def set_source(ev: dict[str, Any], host: str | None, port: str | None = None) -> None:
    """source.ip when the peer is an address, source.address (and .domain) when it is a name."""
    if not host:
        return
    if host[0] in "[]" or host[-1] in "[]":
        host = host.strip("[]")
    if ":" not in host and _IPV4.match(host) is not None:  # the common case: a plain IPv4 peer
        ev["source.ip"] = ev["source.address"] = host
    elif is_ip(host):
        ev["source.ip"] = ev["source.address"] = clean_ip(host)
    elif host not in ("-", "?", "UNKNOWN", "unknown"):
        ev["source.address"] = ev["source.domain"] = host
    if port and port.isdigit() and len(port) <= 5:
        ev["source.port"] = int(port)


def to_int(text: str | None) -> int | None:
    if text is None:
        return None
    if text.isdigit() and len(text) <= 18:
        return int(text)
    if text[:1] == "-" and text[1:].isdigit() and len(text) <= 18:
        return int(text)
    return None
