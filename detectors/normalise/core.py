"""Dataset detection and dispatch: one raw line -> one flat ECS event, never an exception.

Detection looks at the first bytes only (a JSON brace, `type=`, a month name, a digit...) so the
common case costs a few character tests before the family's parser runs.
"""

from __future__ import annotations

import time
from datetime import datetime
from functools import lru_cache
from typing import Any

from collectors.lazy import LazyLogger
from detectors.common.times import DEFAULT_TIMEZONE
from detectors.normalise import auditd, firewall, jsonl, web
from detectors.normalise.auditd_syscall import syscall_line
from detectors.normalise.auth import SSHD_PROGRAMS, parse_auth
from detectors.normalise.ecs import MONTHS, PARSE_FAILURE_TAG, TIMESTAMP_INVALID_TAG, epoch_iso, zone
from detectors.normalise.sshd import parse_sshd_fast
from detectors.normalise.syslog import FAST_HEADER, Reference, SyslogHeader, fast_minute, parse_header, split_tag

log = LazyLogger(__name__)  # logging imported at the first error

MAX_LINE_CHARS = 1 << 20  # lines over 1 MiB are truncated and tagged
SYSLOG_DATASETS = frozenset(("system.auth", "system.syslog", "syslog"))
ACCESS_DATASETS = frozenset(("apache.access", "nginx.access"))
ERROR_DATASETS = frozenset(("apache.error", "nginx.error"))
AUDIT_PROGRAMS = frozenset(("audispd", "audisp", "auditd", "audit", "audisp-syslog", "audisp-remote", "sedispatch"))
WEB_PROGRAMS = frozenset(("nginx", "apache", "apache2", "httpd"))
SSHD_FAST_PROGRAMS = SSHD_PROGRAMS - {"dropbear"}  # the programs parse_auth sends to parse_sshd


@lru_cache(maxsize=256)
def _reference(tz: str, ten_minutes: int) -> Reference:
    dt = datetime.fromtimestamp(ten_minutes * 600, zone(tz))
    return Reference(dt.year, dt.month, dt.day)


def reference_for(tz: str, at: float | None) -> Reference:
    """The local date used to infer RFC 3164 years: the read time, or now."""
    t = at if at and at > 0 else time.time()
    try:
        return _reference(tz, int(t) // 600)
    except (ValueError, OverflowError, OSError):
        return _reference(tz, int(time.time()) // 600)


def sanitise(text: object) -> tuple[str, list[str]]:
    """Make any input a bounded, NUL-free str; the flags say what was repaired."""
    if type(text) is str and len(text) <= MAX_LINE_CHARS and "\x00" not in text and text[-1:] != "\n":
        return text, []
    flags: list[str] = []
    if isinstance(text, (bytes, bytearray)):
        raw = bytes(text)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", errors="replace")
            flags.append("invalid_utf8")
    elif not isinstance(text, str):
        text = str(text)
    if len(text) > MAX_LINE_CHARS:
        text = text[:MAX_LINE_CHARS]
        flags.append("truncated")
    if text.endswith("\n"):
        text = text[:-2] if text.endswith("\r\n") else text[:-1]
    if "\x00" in text:
        text = text.replace("\x00", "")
        flags.append("nul_bytes")
    return text, flags


def parse_line(
    text: str | bytes,
    dataset: str | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    path: str | None = None,
    line_no: int = 0,
    *,
    read_at: float | None = None,
) -> dict[str, Any]:
    """Parse one raw line into one flat ECS event. Pure except for reading the clock when a line has
    neither a time nor a read time. Never raises: a line no parser understands is tagged, not lost."""
    tz = timezone or DEFAULT_TIMEZONE
    ev = None
    # Hot path: a clean 'Mmm dd HH:MM:SS host prog[pid]: msg' line skips sanitising and detection.
    if (
        type(text) is str
        and text[3:4] == " "
        and text[:3] in MONTHS
        and (dataset is None or dataset in SYSLOG_DATASETS)
        and len(text) <= MAX_LINE_CHARS
        and "\x00" not in text
        and text[-1] != "\n"
    ):
        try:
            ev = _fast_syslog(text, tz, read_at)
        except Exception:  # noqa: BLE001 - a parser bug must cost one line's fields, never the worker
            log.exception("event=parser_error dataset=%s path=%s line=%d", dataset, path, line_no)
            ev = None
    elif (
        type(text) is str
        and text[:17] == "type=SYSCALL msg="
        and (dataset is None or dataset == "auditd.log")
        and len(text) <= MAX_LINE_CHARS
        and "\x00" not in text
        and text[-1] != "\n"
    ):  # hot path: a raw audit SYSCALL record of the kernel's layout (what _parse_any would reach)
        try:
            ev = syscall_line(text)
        except Exception:  # noqa: BLE001 - a parser bug must cost one line's fields, never the worker
            log.exception("event=parser_error dataset=%s path=%s line=%d", dataset, path, line_no)
            ev = None
    if ev is None:
        ev = _parse_any(text, dataset, tz, path, line_no, read_at)
    if ev.get("@timestamp") is None:
        if "@timestamp" in ev:
            ev["tags"] = ev.get("tags", []) + [TIMESTAMP_INVALID_TAG]
        ev["@timestamp"] = epoch_iso(read_at if read_at and read_at > 0 else time.time()) or epoch_iso(time.time())
    if path:
        ev["log.file.path"] = path
    if line_no and line_no > 0:
        ev["log.file.line"] = line_no
    return ev


def _parse_any(
    text: str | bytes, dataset: str | None, tz: str, path: str | None, line_no: int, read_at: float | None
) -> dict[str, Any]:
    """Any input: sanitise, detect the family, and fall back to a tagged failure event."""
    try:
        clean, flags = sanitise(text)
    except Exception:  # noqa: BLE001 - str() of an exotic object; keep the promise never to raise
        clean, flags = "", ["invalid_input"]
    try:
        ev = _dispatch(clean, dataset, tz, path, read_at)
    except Exception:  # noqa: BLE001 - a parser bug must cost one line's fields, never the worker
        log.exception("event=parser_error dataset=%s path=%s line=%d", dataset, path, line_no)
        ev = None
    if ev is None:
        ev = {"message": clean, "event.original": clean, "event.kind": "event", "tags": [PARSE_FAILURE_TAG]}
        if dataset:
            ev["event.dataset"] = dataset
            ev["event.module"] = dataset.partition(".")[0]
    if flags:
        ev["tags"] = ev.get("tags", []) + flags
    return ev


_fast_minutes: dict[tuple[str, int, str], str | None] = {}


def _fast_syslog(text: str, tz: str, read_at: float | None) -> dict[str, Any] | None:
    """RFC 3164 with host and tag in one regex, the minute's UTC conversion from a cache, and the
    event dict built in one literal; None sends the line down the general path."""
    m = FAST_HEADER.match(text)
    if m is None:
        return None
    minute, sec, host, program, pid, msg = m.groups()
    t = read_at if read_at and read_at > 0 else time.time()
    try:
        key = (tz, int(t) // 600, minute)
    except (OverflowError, ValueError):
        key = (tz, -1, minute)
    prefix = _fast_minutes.get(key, False)
    if prefix is False:  # a new minute, zone or read-date window: the slow conversion, once
        if len(_fast_minutes) > 20000:
            _fast_minutes.clear()
        prefix = _fast_minutes[key] = fast_minute(tz, reference_for(tz, t), minute)
    ev = {
        "message": msg,
        "event.original": text,
        "event.kind": "event",
        "@timestamp": f"{prefix}{sec}.000Z" if prefix is not None and sec < "60" else None,
        "host.hostname": host,
        "process.name": program,
    }
    if pid:
        ev["process.pid"] = int(pid)
    if program in SSHD_FAST_PROGRAMS and parse_sshd_fast(ev, msg):  # what classify would do, minus 3 calls
        ev["event.dataset"] = "system.auth"
        ev["event.module"] = "system"
        return ev
    return classify(ev, program, msg, text, tz)


def _dispatch(
    text: str, dataset: str | None, tz: str, path: str | None, read_at: float | None
) -> dict[str, Any] | None:
    if not text.strip():
        return None
    if dataset:
        if dataset in SYSLOG_DATASETS:
            return _syslog(text, tz, read_at, dataset)
        if dataset in ACCESS_DATASETS:
            return web.parse_access(_unwrap(text), tz, dataset) or _syslog(text, tz, read_at, None)
        if dataset in ERROR_DATASETS:
            return web.parse_error(text, tz, dataset)
        if dataset == "auditd.log":
            return auditd.parse_raw(text) or _syslog(text, tz, read_at, None)
        if dataset == "iptables.log":
            return _syslog(text, tz, read_at, None) or firewall.parse_netfilter_line(text)
        if dataset.endswith(".json") or dataset == "json":
            return jsonl.parse_json(text, dataset, tz, path)
    return _detect(text, tz, path, read_at, dataset)


def _detect(text: str, tz: str, path: str | None, read_at: float | None, dataset: str | None) -> dict[str, Any] | None:
    if text[0] in " \t":
        text = text.lstrip()
    c = text[0]
    if c == "{":
        return jsonl.parse_json(text, dataset, tz, path)
    if c in "tn" and text.startswith(("type=", "node=")):
        return auditd.parse_raw(text)
    if c == "[":
        return web.parse_error(text, tz, _web_dataset("error", path, dataset))
    if c == '"':
        return web.parse_access(_unwrap(text), tz, _web_dataset("access", path, dataset))
    if c.isdigit():
        if text[4:5] == "/" and text[7:8] == "/":
            return web.parse_error(text, tz, _web_dataset("error", path, dataset))
        if text[4:5] != "-" and '] "' in text:
            ev = web.parse_access(text, tz, _web_dataset("access", path, dataset))
            if ev is not None:
                return ev
        return _syslog(text, tz, read_at, dataset)
    if c == "<" or (text[3:4] == " " and text[:3] in MONTHS):
        return _syslog(text, tz, read_at, dataset)
    if '] "' in text:
        ev = web.parse_access(text, tz, _web_dataset("access", path, dataset))
        if ev is not None:
            return ev
    return _syslog(text, tz, read_at, dataset)


def _unwrap(text: str) -> str:
    """Some exports wrap each access line in an extra pair of double quotes."""
    if len(text) > 2 and text[0] == '"' and text[-1] == '"' and text[1:2] != '"':
        return text[1:-1]
    return text


def _web_dataset(kind: str, path: str | None, dataset: str | None) -> str:
    """Apache and nginx share access formats; the file path or configuration decides, else apache."""
    if dataset and dataset.endswith("." + kind):
        return dataset
    if path and "nginx" in path:
        return "nginx." + kind
    return "apache." + kind


def _syslog(text: str, tz: str, read_at: float | None, dataset: str | None) -> dict[str, Any] | None:
    hdr = parse_header(text, tz, reference_for(tz, read_at))
    if hdr is None:
        return None
    return from_header(hdr, text, tz)


def from_header(hdr: SyslogHeader, text: str, tz: str) -> dict[str, Any]:
    msg = hdr.message
    ev: dict[str, Any] = {"message": msg, "event.original": text, "event.kind": "event"}
    if hdr.timestamp != "":
        ev["@timestamp"] = hdr.timestamp
    if hdr.hostname:
        ev["host.hostname"] = hdr.hostname
    if hdr.priority is not None and hdr.priority < 192:
        ev["log.syslog.priority"] = hdr.priority
        ev["log.syslog.facility.code"] = hdr.priority >> 3
        ev["log.syslog.severity.code"] = hdr.priority & 7
    program = hdr.program
    if program:
        ev["process.name"] = program
        if hdr.pid is not None:
            ev["process.pid"] = hdr.pid
        return classify(ev, program, msg, text, tz)
    ev["event.dataset"] = "system.syslog"
    ev["event.module"] = "system"
    return ev


def classify(ev: dict[str, Any], program: str, msg: str, text: str, tz: str) -> dict[str, Any]:
    """The program tag picks the message parser: auth, netfilter, auditd, web; else system.syslog."""
    if program == "kernel" or program in ("ufw", "firewalld", "iptables"):  # none is an auth program
        if "IN=" in msg and " OUT=" in msg:
            firewall.parse_netfilter(ev, msg)
            return ev
    if parse_auth(ev, program, msg):
        ev["event.dataset"] = "system.auth"
        ev["event.module"] = "system"
        return ev
    if program in AUDIT_PROGRAMS or ("audit(" in msg and "type=" in msg):
        if auditd.parse_record(ev, msg):
            return ev
    if program in WEB_PROGRAMS or program.startswith(("httpd/", "apache2/", "nginx/")):
        nginx = program.startswith("nginx")
        _host, again, _pid, inner_msg = split_tag(msg)
        if again is not None and again.partition("[")[0] == program:  # doubled 'host nginx: ' prefix
            msg = inner_msg
        if msg[:1] == "[" or (msg[4:5] == "/" and msg[7:8] == "/"):
            inner = web.parse_error(msg, tz, "nginx.error" if nginx else "apache.error")
        else:
            inner = web.parse_access(msg, tz, "nginx.access" if nginx else "apache.access")
        if inner is not None:
            inner["event.original"] = text
            if "host.hostname" in ev:
                inner["host.hostname"] = ev["host.hostname"]
            if inner.get("@timestamp") is None and ev.get("@timestamp"):
                inner["@timestamp"] = ev["@timestamp"]
            return inner
    ev["event.dataset"] = "system.syslog"
    ev["event.module"] = "system"
    return ev
