"""The browser queue's sessions and CSRF (the browser test drives the whole thing in chromium)."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.elastic.incidents import IncidentStore
from pipeline.elastic.triage import TriageService
from pipeline.tokens import token_digest
from pipeline.triage.app import TriageApi
from pipeline.triage.auth import Analyst, TokenStore
from pipeline.triage.queue import Sessions, local_time


class NoAlerts(TriageService):
    def __init__(self) -> None:  # no Elasticsearch: nothing to list
        pass

    def list(self, flt=None, limit=50):
        return []


class NoIncidents(IncidentStore):
    def __init__(self) -> None:
        pass

    def list(self, status=None, agency=None, limit=50):
        return []


def app(secure: bool = False) -> TriageApi:
    return TriageApi(
        NoAlerts(),
        TokenStore({token_digest("t-an"): Analyst("an", "analyst")}),
        incidents=NoIncidents(),
        secure_cookies=secure,
    )


def csrf_of(a: TriageApi, sid: str) -> str:
    session = a.queue.sessions.get(sid)
    assert session is not None, "no such session"
    return str(session["csrf"])


def test_login_sets_a_strict_session_cookie_and_never_echoes_the_token():
    r = app(secure=True).handle("POST", "/queue/login", {}, b"token=t-an&lang=en")
    assert r.status == 303 and r.headers["Location"] == "/queue"
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" in cookie and "t-an" not in cookie
    bad = app().handle("POST", "/queue/login", {}, b"token=nope")
    assert bad.status == 401 and b"nope" not in bad.body


def test_pages_need_a_session_and_posts_need_its_csrf_token():
    a = app()
    assert a.handle("GET", "/queue", {}).status == 303  # to the login page
    sid = a.handle("POST", "/queue/login", {}, b"token=t-an").headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    page = a.handle("GET", "/queue", {"Cookie": f"socpipe_session={sid}"})
    assert (
        page.status == 200
        and b"t-an" not in page.body
        and "default-src 'none'" in page.headers["Content-Security-Policy"]
    )
    csrf = csrf_of(a, sid)
    assert csrf.encode() in page.body  # in the logout form
    forged = a.handle("POST", "/queue/alert/x/ack", {"Cookie": f"socpipe_session={sid}"}, b"csrf=wrong")
    assert forged.status == 403
    out = a.handle("POST", "/queue/logout", {"Cookie": f"socpipe_session={sid}"}, f"csrf={csrf}".encode())
    assert out.status == 303 and a.handle("GET", "/queue", {"Cookie": f"socpipe_session={sid}"}).status == 303


def test_without_an_incident_store_an_incident_page_is_not_found_not_a_server_error():
    a = TriageApi(NoAlerts(), TokenStore({token_digest("t-an"): Analyst("an", "analyst")}))
    sid = a.handle("POST", "/queue/login", {}, b"token=t-an").headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    cookie = {"Cookie": f"socpipe_session={sid}"}
    assert a.handle("GET", "/queue", cookie).status == 200  # the queue lists no incidents
    assert a.handle("GET", "/queue/incident/inc-1", cookie).status == 404
    csrf = csrf_of(a, sid)
    assert a.handle("POST", "/queue/incident/inc-1/ack", cookie, f"csrf={csrf}".encode()).status == 404


def test_sessions_expire_and_times_are_shown_in_vietnam():
    now = [0.0]
    s = Sessions(ttl_s=10, clock=lambda: now[0])
    sid = s.create(Analyst("an", "analyst"), "vi")
    assert s.get(sid) is not None
    now[0] = 11
    assert s.get(sid) is None
    assert local_time("2026-11-18T11:06:40.000Z") == "2026-11-18 18:06:40"
    assert local_time(datetime(2026, 1, 1, 17, 0, tzinfo=UTC).timestamp()) == "2026-01-02 00:00:00"
