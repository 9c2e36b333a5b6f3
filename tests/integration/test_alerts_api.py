"""The HTTP triage API over a real socket and the real Elasticsearch."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest

from detectors.alerts import build_alert
from pipeline.elastic import AlertIndexer
from pipeline.elastic.triage import TriageService
from pipeline.triage.app import TriageApi
from pipeline.triage.auth import TokenStore, add_analyst
from pipeline.triage.server import make_server
from tests.integration.alerts_support import detection, es_env  # noqa: F401  (fixture)

pytestmark = pytest.mark.integration


@pytest.fixture
def api(es_env, tmp_path):  # noqa: F811
    cfg, es = es_env
    doc = build_alert(detection("root", 1795000000.0))
    assert AlertIndexer(es, prefix=cfg.index_prefix, refresh="wait_for").index([doc]).created
    tokens_file = tmp_path / "tokens.yml"
    tokens = {
        name: add_analyst(tokens_file, name, role)
        for name, role in (("an", "analyst"), ("binh", "analyst"), ("chi", "lead"), ("dung", "read-only"))
    }
    assert oct(tokens_file.stat().st_mode & 0o777) == "0o600"
    assert all(t not in tokens_file.read_text() for t in tokens.values())
    server = make_server(
        TriageApi(TriageService(es, prefix=cfg.index_prefix), TokenStore.load(tokens_file)), "127.0.0.1", 0
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", tokens, doc["_id"]
    server.shutdown()
    server.server_close()
    thread.join(5)


def call(base, method, path, token=None, body=None, headers=None, form=False):
    data = None
    hdrs = dict(headers or {})
    if token and not form:
        hdrs["Authorization"] = f"Bearer {token}"
    if body is not None:
        data = urllib.parse.urlencode(body).encode() if form else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw, status, rh = resp.read(), resp.status, resp.headers
    except urllib.error.HTTPError as err:
        raw, status, rh = err.read(), err.code, err.headers
    ctype = rh.get("Content-Type", "")
    return status, (json.loads(raw) if "json" in ctype else raw.decode()), rh


def test_auth_roles_and_optimistic_concurrency(api):
    base, tok, aid = api
    assert call(base, "GET", "/healthz")[0] == 200
    status, _, headers = call(base, "GET", f"/api/alerts/{aid}")
    assert status == 401 and "Bearer" in headers["WWW-Authenticate"]
    assert call(base, "GET", f"/api/alerts/{aid}", token="forged")[0] == 401

    status, body, headers = call(base, "GET", f"/api/alerts/{aid}", tok["dung"])
    assert status == 200 and body["alert"]["socpipe"]["workflow"]["status"] == "open"
    version = body["version"]
    assert headers["ETag"] == f'"{version}"'
    assert call(base, "POST", f"/api/alerts/{aid}/ack", tok["dung"], {})[0] == 403  # read-only
    assert call(base, "POST", f"/api/alerts/{aid}/assign", tok["an"], {"assignee": "binh"})[0] == 403

    status, body, _ = call(base, "POST", f"/api/alerts/{aid}/ack", tok["an"], {}, {"If-Match": f'"{version}"'})
    assert status == 200 and body["alert"]["socpipe"]["workflow"]["assignee"] == "an"
    status, body, _ = call(
        base, "POST", f"/api/alerts/{aid}/close", tok["binh"], {"reason": "benign", "version": version}
    )
    assert status == 409 and body["alert_status"] == "acknowledged" and body["version"] != version
    assert call(base, "POST", f"/api/alerts/{aid}/close", tok["binh"], {"reason": "maybe"})[0] == 422
    assert call(base, "POST", f"/api/alerts/{aid}/reopen", tok["an"], {})[0] == 403
    assert call(base, "POST", f"/api/alerts/{aid}/reopen", tok["chi"], {"text": "needs a second look"})[0] == 200

    status, body, _ = call(base, "GET", "/api/alerts?status=open&severity=high,critical", tok["dung"])
    assert status == 200 and [a["id"] for a in body["alerts"]] == [aid]
    hist = [
        (h["actor"], h["action"], h["outcome"]) for h in body["alerts"][0]["alert"]["socpipe"]["workflow"]["history"]
    ]
    assert hist[1:] == [("an", "ack", "applied"), ("binh", "close", "conflict"), ("chi", "reopen", "applied")]
    assert call(base, "GET", "/api/alerts/nope", tok["an"])[0] == 404
    assert call(base, "GET", "/api/alerts?since=whenever", tok["an"])[0] == 400


def test_kibana_alert_links_lead_to_the_queue_after_signing_in(api):
    """Kibana's link /alerts/<id> -> the queue's alert page; without a session, the sign-in page
    first (the token posted once, never in a page or URL), then straight back to the alert."""
    import http.cookiejar

    base, tok, aid = api
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{base}/alerts/{aid}", timeout=10) as resp:
        page, url = resp.read().decode(), resp.geturl()
    assert "/queue/login?" in url and "next=%2Fqueue%2Falert%2F" in url
    assert "type='password'" in page and "SSH brute force" not in page  # no data before signing in
    form = urllib.parse.urlencode({"token": tok["an"], "next": f"/queue/alert/{aid}"}).encode()
    with opener.open(urllib.request.Request(f"{base}/queue/login", data=form), timeout=10) as resp:
        page, url, headers = resp.read().decode(), resp.geturl(), resp.headers
    assert url.endswith(f"/queue/alert/{aid}") and "SSH brute force" in page and tok["an"] not in page
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    evil = urllib.parse.urlencode({"token": tok["an"], "next": "https://evil.example/"}).encode()
    with opener.open(urllib.request.Request(f"{base}/queue/login", data=evil), timeout=10) as resp:
        assert resp.geturl() == f"{base}/queue"  # never redirected off the queue
    assert call(base, "POST", f"/alerts/{aid}", body={"token": tok["an"]}, form=True)[0] == 405
