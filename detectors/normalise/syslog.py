"""Syslog headers: RFC 3164 (year inferred), RFC 5424, ISO-8601 / rsyslog high-precision, journald
short-iso and short-precise, and the bare `host prog[pid]: msg` form journald exports without time.

A header parse yields the time, the sender's hostname, the program tag and the free-text message;
the program tag then picks the message parser (auth, auditd, firewall...) in `detect`.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from detectors.normalise.ecs import MONTHS, utc_iso, zone_of


class SyslogHeader(NamedTuple):
    timestamp: str | None  # ECS @timestamp; None when absurd, "" when the line carries none
    hostname: str | None
    program: str | None
    pid: int | None
    message: str
    priority: int | None


class Reference(NamedTuple):
    """The local date a line was read on: RFC 3164 omits the year, so it is inferred from this."""

    year: int
    month: int
    day: int


_RFC3164 = re.compile(
    r"(?:<(\d{1,3})>)?([A-Z][a-z]{2}) {1,2}(\d{1,2}) (?:(\d{4}) )?(\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?"
    r"(?: (\d{4}))?(?: ([+-]\d\d:?\d\d))? ?(.*)",
    re.S,
)
_ISO = re.compile(
    r"(?:<(\d{1,3})>(1 )?)?(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?"
    r"(Z|[+-]\d\d(?::?\d\d)?)? +(.*)",
    re.S,
)
# `2015 Nov 13 13:40:01 host prog: msg` (some rsyslog templates) and `Mon 2023-01-02 ...` are rare: one regex.
_YEAR_FIRST = re.compile(r"(\d{4}) ([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))? (.*)", re.S)
_TAG_CHARS = re.compile(r"[\w.\-/()@]+\Z")
_BARE = re.compile(r"([\w.\-]+) ([\w.\-/()@]+)\[(\d+)\]: ?(.*)", re.S)


def infer_year(month: int, day: int, ref: Reference) -> int:
    """A date later than the read date (plus a day of clock/zone slack) belongs to last year."""
    if month > ref.month or (month == ref.month and day > ref.day + 1):
        return ref.year - 1
    return ref.year


def split_tag(rest: str, expect_host: bool = True) -> tuple[str | None, str | None, int | None, str]:
    """'host prog[pid]: msg' -> (host, prog, pid, msg); the host is optional (local syslog omits it)."""
    first, sep, after = rest.partition(" ")
    tag = _tag(first)
    if tag is not None:
        return None, tag[0], tag[1], after
    host = first or None
    second, sep2, after2 = after.partition(" ")
    tag = _tag(second)
    if tag is not None:
        return host, tag[0], tag[1], after2
    return host, None, None, after


def _tag(token: str) -> tuple[str, int | None] | None:
    """'sshd[123]:' -> ('sshd', 123); 'kernel:' -> ('kernel', None); '[sshd]:' -> ('sshd', None)."""
    if token[:1] == "[" and token.endswith(("]", "]:")) and len(token) > 3:
        inner = token[1 : token.rfind("]")]
        return (inner, None) if _TAG_CHARS.match(inner) else None
    if not token.endswith(":") or len(token) < 2:
        return None
    token = token[:-1]
    pid = None
    if token.endswith("]"):
        open_at = token.rfind("[")
        if open_at <= 0:
            return None
        pid_text = token[open_at + 1 : -1]
        token = token[:open_at]
        if pid_text.isdigit() and len(pid_text) < 12:
            pid = int(pid_text)
    if not _TAG_CHARS.match(token):
        return None
    return token, pid


# The common case, 'Mmm dd HH:MM:SS host prog[pid]: msg', in one regex; the minute is cached.
FAST_HEADER = re.compile(
    r"([A-Z][a-z]{2} [ \d]\d \d\d:\d\d):(\d\d) ([\w.\-]+) ([\w.\-/]+)(?:\[(\d{1,10})\])?: (.*)", re.S
)
_minute_cache: dict[tuple[str, Reference, str], str | None] = {}


def fast_minute(tz: str, ref: Reference, minute: str) -> str | None:
    """'Nov 27 10:00' -> UTC 'YYYY-MM-DDTHH:MM:' for this zone and read date (bounded cache)."""
    key = (tz, ref, minute)
    hit = _minute_cache.get(key, False)
    if hit is not False:
        return hit  # type: ignore[return-value]
    mo = MONTHS.get(minute[:3])
    value = None
    if mo is not None:
        day = int(minute[4:6])
        full = utc_iso(tz, infer_year(mo, day, ref), mo, day, int(minute[7:9]), int(minute[10:12]), 0)
        value = full[:-7] if full else None
    if len(_minute_cache) > 20000:
        _minute_cache.clear()
    _minute_cache[key] = value
    return value


def parse_header(text: str, tz: str, ref: Reference) -> SyslogHeader | None:
    """Parse any supported syslog header; None when the line is not syslog."""
    m = FAST_HEADER.match(text)
    if m is not None:
        minute, sec, host, prog, pid, msg = m.groups()
        prefix = fast_minute(tz, ref, minute)
        ts = f"{prefix}{sec}.000Z" if prefix is not None and sec < "60" else None
        return SyslogHeader(ts, host, prog, int(pid) if pid else None, msg, None)
    c = text[:1]
    if c == "<":
        m = _ISO.match(text)
        if m is not None:
            return _iso(m, tz)
        m = _RFC3164.match(text)
        return _rfc3164(m, tz, ref) if m is not None else None
    if c.isdigit():
        m = _ISO.match(text)
        if m is not None:
            return _iso(m, tz)
        m = _YEAR_FIRST.match(text)
        if m is not None:
            y, mon, d, hh, mm, ss, frac, rest = m.groups()
            mo = MONTHS.get(mon)
            if mo is None:
                return None
            ts = utc_iso(tz, int(y), mo, int(d), int(hh), int(mm), int(ss), frac or "")
            host, prog, pid, msg = split_tag(rest)
            return SyslogHeader(ts, host, prog, pid, msg, None)
        return None
    if text[3:4] == " " and text[:3] in MONTHS:
        m = _RFC3164.match(text)
        return _rfc3164(m, tz, ref) if m is not None else None
    m = _BARE.match(text)
    if m is not None:
        host, prog, pid, msg = m.groups()
        return SyslogHeader("", host, prog, int(pid) if len(pid) < 12 else None, msg, None)
    return None


def _rfc3164(m: re.Match[str], tz: str, ref: Reference) -> SyslogHeader | None:
    pri, mon, d, y1, hh, mm, ss, frac, y2, off, rest = m.groups()
    mo = MONTHS.get(mon)
    if mo is None:
        return None
    day = int(d)
    year = int(y1 or y2) if (y1 or y2) else infer_year(mo, day, ref)
    zone = zone_of(off, tz)
    ts = utc_iso(zone, year, mo, day, int(hh), int(mm), int(ss), frac or "")
    host, prog, pid, msg = split_tag(rest)
    return SyslogHeader(ts, host, prog, pid, msg, int(pri) if pri else None)


def _iso(m: re.Match[str], tz: str) -> SyslogHeader:
    pri, v1, y, mo, d, hh, mm, ss, frac, off, rest = m.groups()
    zone = zone_of(off, tz)
    ts = utc_iso(zone, int(y), int(mo), int(d), int(hh), int(mm), int(ss), frac or "")
    if v1:  # RFC 5424: HOST APP PROCID MSGID SD MSG, '-' for absent values
        parts = rest.split(" ", 4)
        while len(parts) < 5:
            parts.append("-")
        host, app, procid, _msgid, tail = parts
        msg = _strip_structured_data(tail)
        return SyslogHeader(
            ts,
            None if host == "-" else host,
            None if app == "-" else app,
            int(procid) if procid.isdigit() and len(procid) < 12 else None,
            msg,
            int(pri) if pri else None,
        )
    host, prog, pid, msg = split_tag(rest)
    return SyslogHeader(ts, host, prog, pid, msg, int(pri) if pri else None)


def _strip_structured_data(tail: str) -> str:
    """Drop RFC 5424 STRUCTURED-DATA ('-' or [id k="v"]...) and the BOM before MSG."""
    if tail.startswith("-"):
        msg = tail[2:] if tail.startswith("- ") else tail[1:]
    elif tail.startswith("["):
        i, n, depth, quoted = 0, len(tail), 0, False
        while i < n:
            ch = tail[i]
            if ch == "\\" and quoted:
                i += 2
                continue
            if ch == '"':
                quoted = not quoted
            elif not quoted and ch == "[":
                depth += 1
            elif not quoted and ch == "]":
                depth -= 1
                if depth == 0 and (i + 1 >= n or tail[i + 1] != "["):
                    i += 1
                    break
            i += 1
        msg = tail[i + 1 :] if i < n and tail[i : i + 1] == " " else tail[i:]
    else:
        msg = tail
    return msg[1:] if msg.startswith("\ufeff") else msg
