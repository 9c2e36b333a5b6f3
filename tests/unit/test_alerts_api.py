"""TriageApi request handling with a fake service (the real one is tested in integration)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from pipeline.config import ConfigError
from pipeline.elastic.triage import AlertRecord, TriageService
from pipeline.tokens import token_digest
from pipeline.triage.app import MAX_BODY, TriageApi
from pipeline.triage.auth import Analyst, TokenStore, add_analyst
from pipeline.triage.workflow import apply_change


class FakeService(TriageService):
    def __init__(self):
        self.rec = AlertRecord("a1", "x-alerts-2026.11.28", (1, 1), {"socpipe": {"workflow": {"status": "open"}}})
        self.calls = []

    def get(self, alert_id):
        if alert_id != "a1":
            from pipeline.elastic.triage import AlertNotFound

            raise AlertNotFound(alert_id)
        return self.rec

    def list(self, flt=None, limit=50):
        self.calls.append(("list", flt, limit))
        return [self.rec]

    def change(self, alert_id, change, expected=None):
        self.calls.append(("change", alert_id, change, expected))
        wf = apply_change(self.rec.source["socpipe"]["workflow"], change)
        self.rec = AlertRecord("a1", self.rec.index, (self.rec.version[0] + 1, 1), {"socpipe": {"workflow": wf}})
        return self.rec


@pytest.fixture
def app():
    tokens = TokenStore(
        {token_digest("t-an"): Analyst("an", "analyst"), token_digest("t-ro"): Analyst("ro", "read-only")}
    )
    return TriageApi(FakeService(), tokens, clock=lambda: datetime(2026, 11, 28, tzinfo=UTC))


def test_actor_comes_from_the_token_not_the_body(app):
    r = app.handle(
        "POST",
        "/api/alerts/a1/note",
        {"Authorization": "Bearer t-an"},
        json.dumps({"text": "hi", "actor": "someone-else"}).encode(),
    )
    assert r.status == 200
    _, _, change, expected = app.service.calls[-1]
    assert change.actor == "an" and change.at == "2026-11-28T00:00:00.000Z" and expected is None


def test_if_match_header_is_the_expected_version(app):
    app.handle("POST", "/api/alerts/a1/ack", {"If-Match": '"1:1"', "authorization": "bearer t-an"}, b"")
    assert app.service.calls[-1][3] == (1, 1)


@pytest.mark.parametrize(
    "method,path,headers,body,status",
    [
        ("GET", "/api/alerts", {}, b"", 401),
        ("GET", "/api/alerts", {"Authorization": "Basic t-an"}, b"", 401),
        ("POST", "/api/alerts/a1/ack", {"Authorization": "Bearer t-an"}, b"[1]", 400),
        ("POST", "/api/alerts/a1/ack", {"Authorization": "Bearer t-an"}, b"{not json", 400),
        ("POST", "/api/alerts/a1/ack", {"Authorization": "Bearer t-an", "If-Match": "x:y"}, b"", 400),
        ("POST", "/api/alerts/a1/explode", {"Authorization": "Bearer t-an"}, b"{}", 404),
        ("POST", "/api/alerts/a1/ack", {"Authorization": "Bearer t-ro"}, b"{}", 403),
        ("DELETE", "/api/alerts/a1", {"Authorization": "Bearer t-an"}, b"", 405),
        ("POST", "/api/alerts/a1/note", {"Authorization": "Bearer t-an"}, b"x" * (MAX_BODY + 1), 413),
        ("GET", "/api/alerts?limit=lots", {"Authorization": "Bearer t-an"}, b"", 400),
        ("GET", "/nothing", {}, b"", 404),
    ],
)
def test_bad_requests(app, method, path, headers, body, status):
    assert app.handle(method, path, headers, body).status == status


def test_internal_errors_answer_500(app):
    def boom(*a):
        raise RuntimeError("bug")

    app.service.list = boom
    r = app.handle("GET", "/api/alerts", {"Authorization": "Bearer t-an"})
    assert r.status == 500 and b"bug" not in r.body


def test_tokens_file_roundtrip_and_errors(tmp_path):
    path = tmp_path / "t.yml"
    tok = add_analyst(path, "an", "analyst")
    tok2 = add_analyst(path, "an", "lead")  # replacing revokes the old token
    store = TokenStore.load(path)
    assert store.authenticate(tok) is None and store.authenticate(tok2) == Analyst("an", "lead")
    with pytest.raises(ConfigError):
        add_analyst(path, "x", "admin")
    path.write_text("analysts: [{name: a, role: boss, token_sha256: ab}]")
    with pytest.raises(ConfigError, match="role"):
        TokenStore.load(path)
