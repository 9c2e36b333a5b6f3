"""Request handling of the browser queue (/queue): sessions, CSRF, filters, actions (pages in queue.py)."""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from detectors.common.times import iso_ms
from pipeline.elastic.incidents import IncidentStore
from pipeline.elastic.triage import AlertFilter, TriageService
from pipeline.triage import queue as q
from pipeline.triage.auth import TokenStore
from pipeline.triage.workflow import ACTIONS, STATUSES, Change, PermissionDenied, TransitionError, check_permission

log = logging.getLogger("socpipe.triage_queue")

Reply = tuple[int, str, dict[str, str]]  # status, html, extra headers


class QueueApp:
    def __init__(
        self,
        alerts: TriageService,
        incidents: IncidentStore | None,
        tokens: TokenStore,
        secure_cookies: bool = False,
        clock: Callable[[], datetime] | None = None,
        sessions: q.Sessions | None = None,
    ):
        self.alerts, self.incidents, self.tokens = alerts, incidents, tokens
        self.secure = secure_cookies
        self.clock = clock or (lambda: datetime.now(UTC))
        self.sessions = sessions or q.Sessions()

    def _cookie(self, sid: str, max_age: int) -> str:
        return f"{q.SESSION_COOKIE}={sid}; Path=/queue; HttpOnly; SameSite=Strict; Max-Age={max_age}" + (
            "; Secure" if self.secure else ""
        )

    def handle(
        self, method: str, parts: list[str], query: Mapping[str, list[str]], headers: Mapping[str, str], body: bytes
    ) -> Reply:
        lang = _lang(query.get("lang", [""])[-1])
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items()} if body else {}
        sid = q.cookies(headers.get("cookie")).get(q.SESSION_COOKIE)
        session = self.sessions.get(sid)
        if parts == ["login"]:
            if method == "GET":
                nxt = _next(query.get("next", [""])[-1])
                return 200, q.login_page(lang or (session or {}).get("lang", "vi"), next_url=nxt), {}
            if method != "POST":
                return 405, q.login_page("vi", "405"), {}
            analyst = self.tokens.authenticate(form.get("token"))
            lang = _lang(form.get("lang", "")) or "vi"
            if analyst is None:
                log.warning("triage_queue login_failed")
                error = "401: " + ("mã không hợp lệ" if lang == "vi" else "unknown token")
                return 401, q.login_page(lang, error, next_url=_next(form.get("next", ""))), {}
            new = self.sessions.create(analyst, lang)
            log.info("triage_queue login analyst=%s", analyst.name)
            return (
                303,
                "",
                {"Location": _next(form.get("next", "")) or "/queue", "Set-Cookie": self._cookie(new, q.SESSION_TTL_S)},
            )
        if session is None:
            back = (
                "/queue/" + "/".join(urllib.parse.quote(p, safe="") for p in parts) if parts and method == "GET" else ""
            )
            params = {k: v for k, v in (("lang", lang), ("next", back)) if v}
            return 303, "", {"Location": "/queue/login" + ("?" + urllib.parse.urlencode(params) if params else "")}
        if lang and lang != session["lang"]:
            session["lang"] = lang
        if method == "POST" and not q.csrf_ok(session, form):
            log.warning("triage_queue csrf_rejected analyst=%s", session["analyst"].name)
            return 403, q.page("403", "<h1>403</h1><p>CSRF</p>", session["lang"]), {}
        if parts == ["logout"] and method == "POST":
            self.sessions.drop(sid)
            return 303, "", {"Location": "/queue/login", "Set-Cookie": self._cookie("", 0)}
        if not parts and method == "GET":
            return self._queue(session, query)
        if len(parts) in (2, 3) and parts[0] in ("incident", "alert"):
            return self._item(session, method, parts, form, query.get("done", [""])[-1][:20])
        return 404, q.page("404", "<h1>404</h1>", session["lang"]), {}

    def _queue(self, session: dict[str, Any], query: Mapping[str, list[str]]) -> Reply:
        filters = {
            k: query.get(k, [""])[-1] for k in ("status", "severity", "agency", "sort") if query.get(k, [""])[-1]
        }
        status = [filters["status"]] if filters.get("status") in STATUSES else []
        severity = [filters["severity"]] if filters.get("severity") in q.LEVEL_RANK else []
        agency = [filters["agency"][:200]] if filters.get("agency") else []
        sort = "time" if filters.get("sort") == "time" else "severity"
        incidents = self.incidents.list(status or None, agency or None, 200) if self.incidents else []
        if severity:
            incidents = [r for r in incidents if r.source["socpipe"]["incident"].get("severity") in severity]
        incidents = q.sort_records(
            incidents,
            sort,
            lambda r: r.source["socpipe"]["incident"].get("severity", ""),
            lambda r: r.source["event"]["end"],
        )
        alerts = self.alerts.list(AlertFilter(status=status, severity=severity, agency=agency), 200)
        alerts = q.sort_records(
            alerts,
            sort,
            lambda r: r.source.get("kibana", {}).get("alert", {}).get("severity", ""),
            lambda r: r.source.get("event", {}).get("end") or r.source.get("@timestamp"),
        )
        return 200, q.queue_page(session, incidents, alerts, filters), {}

    def _incident_store(self) -> IncidentStore:
        if self.incidents is None:  # served without an incident store: no incident to show (404)
            raise LookupError("no incident store")
        return self.incidents

    def _item(
        self, session: dict[str, Any], method: str, parts: list[str], form: Mapping[str, str], done: str
    ) -> Reply:
        kind, item_id = parts[0], parts[1][:200]
        if len(parts) == 3:
            action = parts[2]
            if method != "POST" or action not in ACTIONS:
                return 405, q.page("405", "<h1>405</h1>", session["lang"]), {}
            analyst = session["analyst"]
            change = Change(
                action,
                analyst.name,
                iso_ms(self.clock()),
                reason=form.get("reason") or None,
                assignee=form.get("assignee") or None,
                text=form.get("text") or None,
            )
            try:
                check_permission(analyst.role, change)
                if kind == "incident":
                    self._incident_store().change(item_id, change, alerts_service=self.alerts)
                else:
                    self.alerts.change(item_id, change, None)
            except PermissionDenied as exc:
                return 403, q.page("403", f"<h1>403</h1><p>{q._e(exc)}</p>", session["lang"]), {}
            except (TransitionError, ValueError) as exc:
                return 422, q.page("422", f"<h1>422</h1><p>{q._e(exc)}</p>", session["lang"]), {}
            except LookupError:
                return 404, q.page("404", "<h1>404</h1>", session["lang"]), {}
            return 303, "", {"Location": f"/queue/{kind}/{urllib.parse.quote(item_id)}?done={action}"}
        if method != "GET":
            return 405, q.page("405", "<h1>405</h1>", session["lang"]), {}
        try:
            rec = self._incident_store().get(item_id) if kind == "incident" else self.alerts.get(item_id)
        except LookupError:
            return 404, q.page("404", "<h1>404</h1>", session["lang"]), {}
        render = q.incident_page if kind == "incident" else q.alert_page
        return 200, render(session, rec, done), {}


def _next(value: str) -> str:
    """Where to go after signing in: only an item page of the queue (never another site)."""
    ok = value.startswith(("/queue/alert/", "/queue/incident/")) and "//" not in value and "\\" not in value
    return value[:300] if ok else ""


def _lang(value: str) -> str:
    return value if value in q.TEXT else ""
