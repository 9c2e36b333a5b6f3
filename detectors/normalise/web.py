"""Apache and nginx access logs (common, combined, vhost_combined, X-Forwarded-For lists, extra
trailing fields) and error logs (Apache 2.2/2.4, nginx).

Access lines are split by hand around the first ' [' (what precedes it says which format: 3 fields
common/combined, 4 with a vhost, more with an X-Forwarded-For list); one compiled regex takes the rest.
"""

from __future__ import annotations

import re
from typing import Any

from detectors.normalise.ecs import MONTHS, is_ip, utc_iso, zone_of

_QS = r'"([^"\\]*(?:\\.[^"\\]*)*)"'  # unrolled: no alternation per character
_ACCESS_TAIL = re.compile(r"\[([^\]]{20,40})\] " + _QS + r" (\d{3}|-) (\d+|-)(?: " + _QS + r" " + _QS + r")?(.*)", re.S)
# The common and combined formats with a plain request, no escapes and no forwarded list, in one
# regex: the whole line is split in C and the event built without the general path's string work.
_ACCESS_FAST = re.compile(
    r'([^ ,"\\]+) ([^ "\\]+) ([^ "\\]+) \[(\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] '
    r'"([A-Z]{1,20}) (/[^ "\\?]*)(?:\?([^ "\\]*))? HTTP/([^ "\\]+)" (\d{3}) (\d{1,18}|-)'
    r'(?: "([^"\\]*)" "([^"\\]*)")?\s*\Z'
)  # trailing blanks: the general path strips them too
_APACHE_ERROR = re.compile(
    r"\[(?:\w{3} )?(\w{3}) (\d{1,2}) (\d\d):(\d\d):(\d\d)(?:\.(\d+))? (\d{4})\] \[(?:([\w-]*):)?(\w+)\]"
    r"(?: \[pid (\d+)(?::tid (\d+))?\])?(?: \[(?:client|remote) ([^\]]+)\])? ?(.*)",
    re.S,
)
_APACHE_ERROR_NOTIME = re.compile(
    r"\[(?:[\w-]*:)?(\w+)\](?: \[pid [^\]]*\])?(?: \[(?:client|remote) ([^\]]+)\])? ?(.*)", re.S
)
_NGINX_ERROR = re.compile(
    r"(\d{4})/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d) \[(\w+)\] ?(?:(\d+)[#:](\d+):? ?)?(?:\*(\d+) )?(.*)", re.S
)
_NGINX_CLIENT = re.compile(r", client: ([^,\s]+)(?:, server: ([^,]*))?(?:, request: \"([^\"]*)\")?")
_NGINX_HOST = re.compile(r', host: "([^"]*)"')
_AH_CODE = re.compile(r"(AH\d{5}): ")
_LEVELS = {"emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"}


_clf_minutes: dict[tuple[str, str, str], str | None] = {}


def _time_clf(ts: str, tz: str) -> str | None:
    """'10/Oct/2000:13:55:36 -0700' -> UTC ISO; the minute's conversion is cached (hot path)."""
    if len(ts) == 26 and ts[17] == ":" and ts[18:20].isdigit() and ts[18:20] < "60":
        key = (ts[:17], ts[20:], tz)
        prefix = _clf_minutes.get(key, "")
        if prefix == "":
            full = _time_clf_slow(ts[:18] + "00" + ts[20:], tz)
            prefix = full[:-7] if full else None
            if len(_clf_minutes) > 20000:
                _clf_minutes.clear()
            _clf_minutes[key] = prefix
        return f"{prefix}{ts[18:20]}.000Z" if prefix is not None else None
    return _time_clf_slow(ts, tz)


def _time_clf_slow(ts: str, tz: str) -> str | None:
    if len(ts) < 20 or ts[2] != "/" or ts[6] != "/":
        return None
    mo = MONTHS.get(ts[3:6])
    try:
        d, y, hh, mm, ss = int(ts[0:2]), int(ts[7:11]), int(ts[12:14]), int(ts[15:17]), int(ts[18:20])
    except ValueError:
        return None
    if mo is None:
        return None
    frac = ""
    rest = ts[20:]
    if rest.startswith((".", ",")):
        sp = rest.find(" ")
        frac = rest[1:sp] if sp > 0 else rest[1:]
        rest = rest[sp:] if sp > 0 else ""
    zone = zone_of(rest[1:] if rest.startswith(" ") else None, tz)
    return utc_iso(zone, y, mo, d, hh, mm, ss, frac if frac.isdigit() else "")


def _unescape(s: str) -> str:
    return s.replace('\\"', '"').replace("\\\\", "\\") if "\\" in s else s


def parse_access(text: str, tz: str, dataset: str) -> dict[str, Any] | None:
    """One access-log line -> ECS event, or None if it is not one."""
    m = _ACCESS_FAST.match(text)
    if m is not None:
        return _access_fast(m, text, tz, dataset)
    return access_general(text, tz, dataset)


def access_general(text: str, tz: str, dataset: str) -> dict[str, Any] | None:
    """Every access format `parse_access` accepts; its fast path must give the same events."""
    at = text.find(" [")
    if at <= 0:
        return None
    m = _ACCESS_TAIL.match(text, at + 1)
    if m is None:
        return None
    head = text[:at].split(" ")
    vhost = None
    if len(head) == 3:
        client, ident, user = head
    elif len(head) == 4 and not head[0].endswith(","):
        vhost, client, ident, user = head
    elif len(head) >= 3 and "," in text[:at]:
        user, ident = head[-1], head[-2]
        client = " ".join(head[:-2])
    else:
        return None
    ts, request, status, size, referrer, agent, rest = m.groups()
    module = dataset.partition(".")[0]
    ev = _access_event(text, ts, tz, dataset, module)
    forwarded = None
    if "," in client:
        chain = [c.strip() for c in client.split(",") if c.strip()]
        client = chain[0] if chain else client
        forwarded = chain
    if is_ip(client):
        ev["source.ip"] = client
    ev["source.address"] = client
    if vhost:
        host, _, port = vhost.rpartition(":") if vhost.count(":") == 1 else (vhost, "", "")
        ev["url.domain"] = host or vhost
        if port.isdigit() and len(port) <= 5:
            ev["destination.port"] = int(port)
    if user != "-":
        ev["user.name"] = _unescape(user.strip('"'))
    if ident != "-":
        ev[module + ".access.ident"] = ident
    if status.isdigit():
        code = int(status)
        ev["http.response.status_code"] = code
        ev["event.outcome"] = "failure" if code >= 400 else "success"
    ev["http.response.body.bytes"] = int(size) if size.isdigit() and len(size) < 19 else 0
    _request(ev, _unescape(request))
    if referrer is not None:
        if referrer != "-":
            ev["http.request.referrer"] = _unescape(referrer)
        if agent != "-":
            ev["user_agent.original"] = _unescape(agent)
    if rest:
        _trailing(ev, rest, forwarded)
    if forwarded:
        ev["related.ip"] = [ip for ip in forwarded if is_ip(ip)]
        if len(forwarded) > 1:
            ev["network.forwarded_ip"] = forwarded[0]
    return ev


def _access_event(text: str, ts: str, tz: str, dataset: str, module: str) -> dict[str, Any]:
    """The fields every access event starts with, in their order (both paths build on it)."""
    return {
        "@timestamp": _time_clf(ts, tz),
        "message": text,
        "event.original": text,
        "event.kind": "event",
        "event.dataset": dataset,
        "event.module": module,
        "event.category": ["web"],
        "event.type": ["access"],
    }


def _access_fast(m: re.Match[str], text: str, tz: str, dataset: str) -> dict[str, Any]:
    """The event `parse_access` would build for a line `_ACCESS_FAST` matched, built directly."""
    client, ident, user, ts, method, path, query, version, status, size, referrer, agent = m.groups()
    module = dataset.partition(".")[0]
    code = int(status)
    ev = _access_event(text, ts, tz, dataset, module)
    if is_ip(client):
        ev["source.ip"] = client
    ev["source.address"] = client
    if user != "-":
        ev["user.name"] = user
    if ident != "-":
        ev[module + ".access.ident"] = ident
    ev["http.response.status_code"] = code
    ev["event.outcome"] = "failure" if code >= 400 else "success"
    ev["http.response.body.bytes"] = 0 if size == "-" else int(size)
    ev["http.version"] = version
    ev["http.request.method"] = method
    ev["url.original"] = path if query is None else f"{path}?{query}"
    ev["url.path"] = path
    if query is not None:
        ev["url.query"] = query
    dot = path.rfind(".")
    if dot > path.rfind("/") and 0 < len(path) - dot - 1 <= 10:
        ev["url.extension"] = path[dot + 1 :].lower()
    if referrer is not None:
        if referrer != "-":
            ev["http.request.referrer"] = referrer
        if agent != "-":
            ev["user_agent.original"] = agent
    return ev


def _request(ev: dict[str, Any], request: str) -> None:
    """'GET /a?b=c HTTP/1.1' -> method, url.*, version; malformed requests keep url.original only."""
    parts = request.split(" ")
    if len(parts) >= 3 and parts[-1].startswith("HTTP/"):
        method, url, version = parts[0], " ".join(parts[1:-1]), parts[-1][5:]
        ev["http.version"] = version
    elif len(parts) == 2 and parts[0].isalpha():
        method, url = parts
    else:
        if request and request != "-":
            ev["url.original"] = request
            ev["tags"] = ["_socpipe_malformed_request"]
        return
    if method.isalpha() and method.isascii() and len(method) <= 20:
        ev["http.request.method"] = method.upper()
    ev["url.original"] = url
    q = url.find("?")
    path = url if q < 0 else url[:q]
    if path.startswith(("http://", "https://")):  # proxy-style absolute URI
        scheme, _, rest = path.partition("://")
        host, slash, tail = rest.partition("/")
        ev["url.scheme"] = scheme
        ev["url.domain"] = host
        path = slash + tail
    ev["url.path"] = path
    if q >= 0:
        ev["url.query"] = url[q + 1 :]
    dot = path.rfind(".")
    if dot > path.rfind("/") and 0 < len(path) - dot - 1 <= 10:
        ev["url.extension"] = path[dot + 1 :].lower()


def _trailing(ev: dict[str, Any], rest: str, forwarded: list[str] | None) -> None:
    """Extra fields after combined: nginx's "$http_x_forwarded_for", request time, etc."""
    rest = rest.strip()
    if rest.startswith('"'):
        end = rest.find('"', 1)
        xff = rest[1:end] if end > 0 else ""
        if xff and xff != "-":
            chain = [c.strip() for c in xff.split(",") if c.strip()]
            if chain and is_ip(chain[0]):
                ev["network.forwarded_ip"] = chain[0]
                ev["related.ip"] = [ip for ip in chain if is_ip(ip)] + ([ev["source.ip"]] if "source.ip" in ev else [])
                ev["socpipe.x_forwarded_for"] = xff


def parse_error(text: str, tz: str, dataset: str) -> dict[str, Any] | None:
    """Apache '[time] [module:level] [pid] [client ip:port] msg' or nginx 'Y/m/d H:M:S [level] pid#tid: msg'."""
    if text.startswith("["):
        ds = "apache.error"  # the format itself says which server wrote it
        m = _APACHE_ERROR.match(text)
        if m is not None:
            mon, d, hh, mm, ss, frac, y, module, level, pid, tid, client, msg = m.groups()
            mo = MONTHS.get(mon)
            ts = utc_iso(tz, int(y), mo, int(d), int(hh), int(mm), int(ss), frac or "") if mo else None
            ev = _error_event(text, ds, ts, level, msg)
            if module:
                ev["apache.error.module"] = module
            if pid:
                ev["process.pid"] = int(pid)
            if tid:
                ev["process.thread.id"] = int(tid)
        else:
            m = _APACHE_ERROR_NOTIME.match(text)
            if m is None or m.group(1).lower() not in _LEVELS:
                return None
            level, client, msg = m.groups()
            ev = _error_event(text, ds, "", level, msg)
        if client:
            host, _, port = client.rpartition(":") if client.count(":") in (1,) or "]:" in client else (client, "", "")
            host = host.strip("[]")
            if is_ip(host):
                ev["source.ip"] = host
                ev["source.address"] = host
                if port.isdigit():
                    ev["source.port"] = int(port)
            elif is_ip(client):
                ev["source.ip"] = client
                ev["source.address"] = client
        code = _AH_CODE.match(msg)
        if code is not None:
            ev["error.code"] = code.group(1)
        return ev
    m = _NGINX_ERROR.match(text)
    if m is None:
        return None
    ny, nmo, nd, nhh, nmm, nss, level, npid, ntid, conn, msg = m.groups()
    ds = "nginx.error"
    ev = _error_event(text, ds, utc_iso(tz, int(ny), int(nmo), int(nd), int(nhh), int(nmm), int(nss)), level, msg)
    if npid and len(npid) < 12:
        ev["process.pid"] = int(npid)
    if ntid and len(ntid) < 12:
        ev["process.thread.id"] = int(ntid)
    if conn:
        ev["nginx.error.connection_id"] = int(conn) if len(conn) < 18 else 0
    c = None
    for c in _NGINX_CLIENT.finditer(msg):  # noqa: B007 — nginx appends the real client last; earlier ones are user data
        pass
    if c is not None:
        client, server, request = c.groups()
        if is_ip(client):
            ev["source.ip"] = client
        ev["source.address"] = client
        if server:
            ev["url.domain"] = server
        if request:
            _request(ev, request)
    h = _NGINX_HOST.search(msg)
    if h is not None:
        ev["url.domain"] = h.group(1)
    return ev


def _error_event(text: str, dataset: str, ts: str | None, level: str, msg: str) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "message": msg,
        "event.original": text,
        "event.kind": "event",
        "event.dataset": dataset,
        "event.module": dataset.partition(".")[0],
        "event.category": ["web"],
        "event.type": ["error"],
        "log.level": level.lower(),
    }
    if ts != "":
        ev["@timestamp"] = ts
    return ev
