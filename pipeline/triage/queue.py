"""The browser triage queue, served by the triage server under /queue (server-rendered, no scripts).

Login once: the analyst's API token is posted to /queue/login and exchanged for a session (random
id in an HttpOnly, SameSite=Strict cookie; Secure under TLS); the token never appears in a page or
URL. Every form carries the session's CSRF token, checked on each POST. Incidents and alerts worst
first (or newest first), filters by status, severity and agency, an incident's timeline, an alert's
evidence, and ack/close/assign/note on both (closing an incident closes its alerts). Times are
shown in Asia/Ho_Chi_Minh; Vietnamese or English as the analyst chooses (`lang`, kept per session).
"""

from __future__ import annotations

import hmac
import html
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from detectors.common.severity import KIBANA_LEVELS
from detectors.common.times import DEFAULT_TIMEZONE, to_epoch
from pipeline.triage.workflow import CLOSING_REASONS, STATUSES

TZ = ZoneInfo(DEFAULT_TIMEZONE)  # the province's zone, as analysts read times
SESSION_COOKIE = "socpipe_session"
SESSION_TTL_S = 8 * 3600
MAX_SESSIONS = 10_000

TEXT = {
    "en": {
        "title": "Triage queue",
        "login": "Sign in",
        "token": "API token",
        "incidents": "Incidents",
        "alerts": "Alerts",
        "status": "Status",
        "severity": "Severity",
        "agency": "Agency",
        "sort": "Sort",
        "by_severity": "severity",
        "by_time": "newest",
        "filter": "Filter",
        "time": "Time (Vietnam)",
        "end": "Until",
        "rule": "Rule",
        "source": "Source",
        "events": "Events",
        "assignee": "Assignee",
        "timeline": "Timeline",
        "evidence": "Evidence",
        "tactics": "Tactics",
        "entities": "Entities",
        "ack": "Acknowledge",
        "close": "Close",
        "reopen": "Reopen",
        "assign": "Assign to",
        "note": "Add note",
        "reason": "Reason",
        "signed_in": "Signed in as",
        "logout": "Sign out",
        "none": "Nothing matches.",
        "done": "Done",
        "any": "any",
        "history": "History",
        "open": "open",
        "acknowledged": "acknowledged",
        "closed": "closed",
        "back": "Back to the queue",
    },
    "vi": {
        "title": "Hàng đợi xử lý",
        "login": "Đăng nhập",
        "token": "Mã truy cập API",
        "incidents": "Sự cố",
        "alerts": "Cảnh báo",
        "status": "Trạng thái",
        "severity": "Mức độ",
        "agency": "Đơn vị",
        "sort": "Sắp xếp",
        "by_severity": "mức độ",
        "by_time": "mới nhất",
        "filter": "Lọc",
        "time": "Thời gian (giờ Việt Nam)",
        "end": "Đến",
        "rule": "Luật",
        "source": "Nguồn",
        "events": "Sự kiện",
        "assignee": "Người xử lý",
        "timeline": "Diễn biến",
        "evidence": "Bằng chứng",
        "tactics": "Chiến thuật",
        "entities": "Thực thể",
        "ack": "Tiếp nhận",
        "close": "Đóng",
        "reopen": "Mở lại",
        "assign": "Giao cho",
        "note": "Thêm ghi chú",
        "reason": "Lý do",
        "signed_in": "Đăng nhập với tên",
        "logout": "Đăng xuất",
        "none": "Không có kết quả.",
        "done": "Đã thực hiện",
        "any": "tất cả",
        "history": "Lịch sử",
        "open": "mở",
        "acknowledged": "đã tiếp nhận",
        "closed": "đã đóng",
        "back": "Về hàng đợi",
    },
}
LEVEL_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1}
_STYLE = (
    "body{font-family:sans-serif;margin:1em 2em}table{border-collapse:collapse;width:100%}"
    "td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}"
    "th{background:#eef}form{display:inline-block;margin:.2em}.critical{background:#f8c0c0}"
    ".high{background:#fbd9b0}.medium{background:#fff3b0}nav{margin:.5em 0}pre{white-space:pre-wrap;margin:0}"
)


def local_time(value: Any) -> str:
    """ISO/epoch -> 'YYYY-MM-DD HH:MM:SS' in Asia/Ho_Chi_Minh."""
    ts = to_epoch(value)
    return datetime.fromtimestamp(ts, TZ).strftime("%Y-%m-%d %H:%M:%S") if ts is not None else "-"


class Sessions:
    """Server-side sessions: id -> (analyst, csrf token, lang, expiry). Thread-safe, bounded."""

    def __init__(self, ttl_s: float = SESSION_TTL_S, clock: Callable[[], float] = time.monotonic):
        self.ttl_s, self.clock = ttl_s, clock
        self._by_id: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def create(self, analyst: Any, lang: str) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            if len(self._by_id) >= MAX_SESSIONS:
                oldest = min(self._by_id, key=lambda k: self._by_id[k]["expires"])
                del self._by_id[oldest]
            self._by_id[sid] = {
                "analyst": analyst,
                "csrf": secrets.token_urlsafe(32),
                "lang": lang,
                "expires": self.clock() + self.ttl_s,
            }
        return sid

    def get(self, sid: str | None) -> dict[str, Any] | None:
        if not sid:
            return None
        with self._lock:
            s = self._by_id.get(sid)
            if s is None or s["expires"] < self.clock():
                self._by_id.pop(sid, None)
                return None
            return s

    def drop(self, sid: str | None) -> None:
        with self._lock:
            self._by_id.pop(sid or "", None)


def cookies(header: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (header or "").split(";"):
        k, eq, v = part.strip().partition("=")
        if eq:
            out[k] = v
    return out


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def page(title: str, body: str, lang: str) -> str:
    return (
        f"<!doctype html><html lang='{_e(lang)}'><head><meta charset='utf-8'><title>{_e(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def login_page(lang: str, error: str = "", next_url: str = "") -> str:
    t = TEXT[lang]
    other = "en" if lang == "vi" else "vi"
    return page(
        t["title"],
        f"<h1>{_e(t['title'])}</h1>"
        + (f"<p class='error'>{_e(error)}</p>" if error else "")
        + f"<form method='post' action='/queue/login'><input type='hidden' name='lang' value='{_e(lang)}'>"
        f"<input type='hidden' name='next' value='{_e(next_url)}'>"
        f"<label>{_e(t['token'])} <input type='password' name='token' id='token' autocomplete='off'></label> "
        f"<button id='login'>{_e(t['login'])}</button></form>"
        f"<p><a href='/queue/login?lang={other}' id='lang-{other}'>{'English' if other == 'en' else 'Tiếng Việt'}</a></p>",
        lang,
    )


def _header(session: dict[str, Any], filters: Mapping[str, str]) -> str:
    t = TEXT[session["lang"]]
    lang = session["lang"]
    other = "en" if lang == "vi" else "vi"
    q = urllib.parse.urlencode({**filters, "lang": other})
    return (
        f"<nav>{_e(t['signed_in'])} <b id='analyst'>{_e(session['analyst'].name)}</b> · "
        f"<a href='/queue?{_e(q)}' id='lang-{other}'>{'English' if other == 'en' else 'Tiếng Việt'}</a> · "
        f"<form method='post' action='/queue/logout'>{csrf_field(session)}<button>{_e(t['logout'])}</button></form></nav>"
    )


def csrf_field(session: dict[str, Any]) -> str:
    return f"<input type='hidden' name='csrf' value='{_e(session['csrf'])}'>"


def csrf_ok(session: dict[str, Any], form: Mapping[str, str]) -> bool:
    return hmac.compare_digest(str(form.get("csrf", "")), session["csrf"])


def _select(name: str, values: Sequence[str], chosen: str, t: dict[str, str]) -> str:
    opts = [f"<option value=''>{_e(t['any'])}</option>"] + [
        f"<option value='{_e(v)}'{' selected' if v == chosen else ''}>{_e(t.get(v, v))}</option>" for v in values
    ]
    return f"<select name='{name}' id='f-{name}'>{''.join(opts)}</select>"


def queue_page(session: dict[str, Any], incidents: list[Any], alerts: list[Any], filters: Mapping[str, str]) -> str:
    t = TEXT[session["lang"]]
    form = (
        "<form method='get' action='/queue' id='filters'>"
        f"<label>{_e(t['status'])} {_select('status', STATUSES, filters.get('status', ''), t)}</label> "
        f"<label>{_e(t['severity'])} {_select('severity', KIBANA_LEVELS[::-1], filters.get('severity', ''), t)}</label> "
        f"<label>{_e(t['agency'])} <input name='agency' id='f-agency' value='{_e(filters.get('agency', ''))}'></label> "
        f"<label>{_e(t['sort'])} <select name='sort' id='f-sort'>"
        f"<option value='severity'{' selected' if filters.get('sort', 'severity') == 'severity' else ''}>{_e(t['by_severity'])}</option>"
        f"<option value='time'{' selected' if filters.get('sort') == 'time' else ''}>{_e(t['by_time'])}</option>"
        f"</select></label> <button id='apply'>{_e(t['filter'])}</button></form>"
    )
    inc_rows = "".join(
        f"<tr class='{_e(r.source['socpipe']['incident'].get('severity', ''))}'>"
        f"<td>{_e(local_time(r.source.get('event', {}).get('end')))}</td>"
        f"<td>{_e(r.source['socpipe']['incident'].get('severity', ''))}</td>"
        f"<td>{_e(t.get(r.status, r.status))}</td><td>{_e(r.source.get('organization', {}).get('id', '-'))}</td>"
        f"<td><a class='incident' href='/queue/incident/{_e(r.id)}'>{_e(r.source['socpipe']['incident'].get('title', ''))}</a></td>"
        f"<td>{_e(r.source['socpipe']['incident'].get('alert_count', 0))}</td></tr>"
        for r in incidents
    )
    alert_rows = "".join(
        f"<tr class='{_e(r.source.get('kibana', {}).get('alert', {}).get('severity', ''))}'>"
        f"<td>{_e(local_time(r.source.get('event', {}).get('end') or r.source.get('@timestamp')))}</td>"
        f"<td>{_e(r.source.get('kibana', {}).get('alert', {}).get('severity', ''))}</td>"
        f"<td>{_e(t.get(r.status, r.status))}</td><td>{_e(r.source.get('organization', {}).get('id', '-'))}</td>"
        f"<td><a class='alert' href='/queue/alert/{_e(r.id)}'>{_e(r.source.get('rule', {}).get('name', ''))}</a></td>"
        f"<td>{_e(r.source.get('source', {}).get('ip', '-'))}</td>"
        f"<td>{_e(r.source.get('socpipe', {}).get('workflow', {}).get('assignee') or '-')}</td></tr>"
        for r in alerts
    )
    none = f"<p>{_e(t['none'])}</p>"
    body = (
        f"<h1>{_e(t['title'])}</h1>{_header(session, filters)}{form}"
        f"<h2>{_e(t['incidents'])}</h2>"
        + (
            f"<table id='incidents'><tr><th>{_e(t['time'])}</th><th>{_e(t['severity'])}</th><th>{_e(t['status'])}</th>"
            f"<th>{_e(t['agency'])}</th><th>{_e(t['incidents'])}</th><th>{_e(t['alerts'])}</th></tr>{inc_rows}</table>"
            if incidents
            else none
        )
        + f"<h2>{_e(t['alerts'])}</h2>"
        + (
            f"<table id='alerts'><tr><th>{_e(t['time'])}</th><th>{_e(t['severity'])}</th><th>{_e(t['status'])}</th>"
            f"<th>{_e(t['agency'])}</th><th>{_e(t['rule'])}</th><th>{_e(t['source'])}</th><th>{_e(t['assignee'])}</th></tr>"
            f"{alert_rows}</table>"
            if alerts
            else none
        )
    )
    return page(t["title"], body, session["lang"])


def _actions(session: dict[str, Any], base: str, status: str) -> str:
    t = TEXT[session["lang"]]
    c = csrf_field(session)
    out = []
    if status == "open":
        out.append(f"<form method='post' action='{base}/ack'>{c}<button id='do-ack'>{_e(t['ack'])}</button></form>")
    if status != "closed":
        reasons = "".join(f"<option value='{r}'>{r}</option>" for r in CLOSING_REASONS)
        out.append(
            f"<form method='post' action='{base}/close'>{c}<label>{_e(t['reason'])} <select name='reason' id='reason'>"
            f"{reasons}</select></label><button id='do-close'>{_e(t['close'])}</button></form>"
        )
    else:
        out.append(
            f"<form method='post' action='{base}/reopen'>{c}<button id='do-reopen'>{_e(t['reopen'])}</button></form>"
        )
    out.append(
        f"<form method='post' action='{base}/assign'>{c}<input name='assignee' id='assignee'>"
        f"<button id='do-assign'>{_e(t['assign'])}</button></form>"
    )
    out.append(
        f"<form method='post' action='{base}/note'>{c}<input name='text' id='note' size='40'>"
        f"<button id='do-note'>{_e(t['note'])}</button></form>"
    )
    return "<div id='actions'>" + "".join(out) + "</div>"


def _history(session: dict[str, Any], wf: Mapping[str, Any]) -> str:
    t = TEXT[session["lang"]]
    rows = "".join(
        f"<tr><td>{_e(local_time(h.get('at')))}</td><td>{_e(h.get('actor', ''))}</td><td>{_e(h.get('action', ''))}</td>"
        f"<td>{_e(h.get('outcome', ''))}</td><td>{_e(h.get('to_status', '') or '')}</td><td>{_e(h.get('detail', '') or '')}</td></tr>"
        for h in wf.get("history") or []
    )
    notes = "".join(
        f"<li>{_e(local_time(n.get('at')))} {_e(n.get('author', ''))}: {_e(n.get('text', ''))}</li>"
        for n in wf.get("notes") or []
    )
    return f"<h2>{_e(t['history'])}</h2><table id='history'>{rows}</table><ul id='notes'>{notes}</ul>"


def incident_page(session: dict[str, Any], rec: Any, done: str = "") -> str:
    t = TEXT[session["lang"]]
    inc = rec.source["socpipe"]["incident"]
    wf = rec.source["socpipe"].get("workflow") or {}
    timeline = "".join(
        f"<tr class='{_e(e.get('level', ''))}'><td>{_e(local_time(e.get('start')))}</td><td>{_e(local_time(e.get('end')))}</td>"
        f"<td>{_e(e.get('level', ''))}</td><td><a href='/queue/alert/{_e(e.get('alert_id', ''))}'>{_e(e.get('rule', ''))}</a></td>"
        f"<td>{_e(', '.join(e.get('tactics') or []))}</td><td>{_e(e.get('events', 0))}</td></tr>"
        for e in inc.get("timeline") or []
    )
    body = (
        f"<h1 id='incident-title'>{_e(inc.get('title', ''))}</h1>{_header(session, {})}"
        f"<p><a href='/queue'>{_e(t['back'])}</a></p>"
        + (f"<p id='done'>{_e(t['done'])}: {_e(done)}</p>" if done else "")
        + f"<p>{_e(t['severity'])}: <b>{_e(inc.get('severity', ''))}</b> · {_e(t['status'])}: "
        f"<b id='status'>{_e(t.get(rec.status, rec.status))}</b> · {_e(t['agency'])}: {_e(rec.source.get('organization', {}).get('id', '-'))}"
        f" · {_e(t['assignee'])}: <b id='assigned'>{_e(wf.get('assignee') or '-')}</b></p>"
        f"<p>{_e(t['tactics'])}: <span id='tactics'>{_e(' → '.join(inc.get('tactics') or []))}</span></p>"
        f"<p>{_e(t['entities'])}: {_e(', '.join(inc.get('entity_keys') or []))}</p>"
        f"{_actions(session, '/queue/incident/' + _e(rec.id), rec.status)}"
        f"<h2>{_e(t['timeline'])}</h2><table id='timeline'><tr><th>{_e(t['time'])}</th><th>{_e(t['end'])}</th><th>{_e(t['severity'])}</th>"
        f"<th>{_e(t['rule'])}</th><th>{_e(t['tactics'])}</th><th>{_e(t['events'])}</th></tr>{timeline}</table>"
        f"{_history(session, wf)}"
    )
    return page(inc.get("title", ""), body, session["lang"])


def alert_page(session: dict[str, Any], rec: Any, done: str = "") -> str:
    t = TEXT[session["lang"]]
    s = rec.source
    wf = s.get("socpipe", {}).get("workflow") or {}
    evidence = "".join(
        f"<tr><td>{_e(local_time(ev.get('@timestamp')))}</td><td><pre>{_e(ev.get('message', ev.get('event', {}).get('original', '')))}</pre></td></tr>"
        for ev in s.get("socpipe", {}).get("evidence") or []
    )
    episode = s.get("socpipe", {}).get("episode") or {}
    body = (
        f"<h1 id='alert-title'>{_e(s.get('rule', {}).get('name', ''))}</h1>{_header(session, {})}"
        f"<p><a href='/queue'>{_e(t['back'])}</a></p>"
        + (f"<p id='done'>{_e(t['done'])}: {_e(done)}</p>" if done else "")
        + f"<p>{_e(t['severity'])}: <b>{_e(s.get('kibana', {}).get('alert', {}).get('severity', ''))}</b> · "
        f"{_e(t['status'])}: <b id='status'>{_e(t.get(rec.status, rec.status))}</b> · {_e(t['agency'])}: "
        f"{_e(s.get('organization', {}).get('id', '-'))} · {_e(t['source'])}: {_e(s.get('source', {}).get('ip', '-'))}</p>"
        f"<p>{_e(t['time'])}: {_e(local_time(s.get('event', {}).get('start')))} – {_e(local_time(s.get('event', {}).get('end')))}"
        f" · {_e(t['events'])}: {_e(episode.get('events', s.get('socpipe', {}).get('evidence_count', '-')))}</p>"
        f"{_actions(session, '/queue/alert/' + _e(rec.id), rec.status)}"
        f"<h2>{_e(t['evidence'])}</h2><table id='evidence'>{evidence}</table>{_history(session, wf)}"
    )
    return page(s.get("rule", {}).get("name", ""), body, session["lang"])


def sort_records(
    records: list[Any], by: str, severity_of: Callable[[Any], str], end_of: Callable[[Any], Any]
) -> list[Any]:
    newest = sorted(records, key=lambda r: to_epoch(end_of(r)) or 0.0, reverse=True)
    if by == "time":
        return newest
    return sorted(newest, key=lambda r: -LEVEL_RANK.get(severity_of(r), 0))
