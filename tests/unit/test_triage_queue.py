"""The browser queue's sessions and CSRF (the browser test drives the whole thing in chromium)."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.tokens import token_digest
from pipeline.triage.app import TriageApi
from pipeline.triage.auth import Analyst, TokenStore
from pipeline.triage.queue import Sessions, local_time


class NoData:
    def list(self, *a, **k):
        return []


def app(secure: bool = False) -> TriageApi:
    return TriageApi(
        NoData(),
        TokenStore({token_digest("t-an"): Analyst("an", "analyst")}),
        incidents=NoData(),
        secure_cookies=secure,
    )


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
    csrf = a.queue.sessions.get(sid)["csrf"]
    assert csrf.encode() in page.body  # in the logout form
    forged = a.handle("POST", "/queue/alert/x/ack", {"Cookie": f"socpipe_session={sid}"}, b"csrf=wrong")
    assert forged.status == 403
    out = a.handle("POST", "/queue/logout", {"Cookie": f"socpipe_session={sid}"}, f"csrf={csrf}".encode())
    assert out.status == 303 and a.handle("GET", "/queue", {"Cookie": f"socpipe_session={sid}"}).status == 303


def test_without_an_incident_store_an_incident_page_is_not_found_not_a_server_error():
    a = TriageApi(NoData(), TokenStore({token_digest("t-an"): Analyst("an", "analyst")}))
    sid = a.handle("POST", "/queue/login", {}, b"token=t-an").headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    cookie = {"Cookie": f"socpipe_session={sid}"}
    assert a.handle("GET", "/queue", cookie).status == 200  # the queue lists no incidents
    assert a.handle("GET", "/queue/incident/inc-1", cookie).status == 404
    csrf = a.queue.sessions.get(sid)["csrf"]
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
