"""Triage surface: every bad query value a 4xx, tokens reloaded and revoked without restart, CLI
output that a log line cannot turn into terminal control."""

from __future__ import annotations

import json
import urllib.parse
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.cli.output import clean, clean_json, table_row
from pipeline.elastic.triage import AlertRecord, TriageService
from pipeline.tokens import token_digest
from pipeline.triage.app import TriageApi
from pipeline.triage.auth import Analyst, ReloadingTokenStore, TokenStore, add_analyst, revoke_analyst
from pipeline.triage.workflow import apply_change

NOW = datetime(2026, 11, 28, tzinfo=UTC)


class QueryingService(TriageService):
    """Builds the real Elasticsearch query from each filter (what the real service sends)."""

    def __init__(self):
        self.rec = AlertRecord("a1", "x-alerts-2026.11.28", (1, 1), {"socpipe": {"workflow": {"status": "open"}}})

    def list(self, flt=None, limit=50):
        flt.query(NOW)
        return [self.rec]

    def get(self, alert_id):
        from pipeline.elastic.triage import AlertNotFound

        if alert_id != "a1":
            raise AlertNotFound(alert_id)
        return self.rec

    def change(self, alert_id, change, expected=None):
        wf = apply_change(self.get(alert_id).source["socpipe"]["workflow"], change)
        return AlertRecord("a1", self.rec.index, (2, 1), {"socpipe": {"workflow": wf}})


@pytest.fixture
def app():
    tokens = TokenStore({token_digest("t-an"): Analyst("an", "analyst")})
    return TriageApi(QueryingService(), tokens, clock=lambda: NOW)


AUTH = {"Authorization": "Bearer t-an"}


@pytest.mark.parametrize(
    "query,status",
    [
        ("since=99999999999999d", 400),
        ("since=9999999999999999999999999w", 400),
        ("until=9999-12-31T23:59:59-14:00", 400),
        ("since=yesterday", 400),
        ("since=%C2%B2h", 400),  # a digit to isdigit(), not to int()
        ("status=bogus", 400),
        ("severity=urgent", 400),
        ("limit=0", 400),
        ("limit=501", 400),
        ("limit=-3", 400),
        ("limit=1e3", 400),
        ("sevrity=high", 400),  # a typo must not silently list everything
        ("rule=%ff", 400),  # not UTF-8
        ("rule=" + "x" * 300, 400),
        ("&".join(f"p{i}=1" for i in range(60)), 400),
        ("status=open,closed&severity=high&since=24h&limit=500&rule=ssh&agency=so-tc", 200),
    ],
)
def test_list_query_values(app, query, status):
    r = app.handle("GET", "/api/alerts?" + query, AUTH)
    assert r.status == status, r.body
    if status == 400:
        assert json.loads(r.body)["error"]


@pytest.mark.parametrize(
    "method,path,body,headers,status",
    [
        ("GET", "/api/alerts/" + "a" * 600, b"", {}, 404),
        ("GET", "/api/alerts/%ff%fe", b"", {}, 400),
        ("POST", "/api/alerts/a1/ack", b'{"version": "99999999999999999999999:1"}', {}, 400),
        ("POST", "/api/alerts/a1/ack", b'{"version": "-1:1"}', {}, 400),
        ("POST", "/api/alerts/a1/ack", b'{"version": "1:0"}', {}, 400),
        ("POST", "/api/alerts/a1/note", b'{"text": {"$ne": 1}}', {}, 400),
        ("POST", "/api/alerts/a1/assign", b'{"assignee": ["x"]}', {}, 400),
        ("POST", "/api/alerts/a1/ack", b"\xff\xfe", {}, 400),
        ("POST", "/api/alerts/a1/ack", b"{}", {"If-Match": '"1:x"'}, 400),
        ("POST", "/api/alerts/a1/note", b'{"text": "checked, benign"}', {}, 200),
    ],
)
def test_bad_ids_versions_and_bodies(app, method, path, body, headers, status):
    assert app.handle(method, path, {**AUTH, **headers}, body).status == status


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["status", "severity", "agency", "rule", "assignee", "since", "until", "limit", "x"]),
        st.text(min_size=0, max_size=40),
        max_size=5,
    )
)
def test_no_query_value_answers_500(query):
    app = TriageApi(QueryingService(), TokenStore({token_digest("t"): Analyst("an", "analyst")}), clock=lambda: NOW)
    r = app.handle("GET", "/api/alerts?" + urllib.parse.urlencode(query), {"Authorization": "Bearer t"})
    assert r.status in (200, 400), (query, r.status, r.body)


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_tokens_reload_and_revoke_without_restart(tmp_path):
    path = tmp_path / "tokens.yml"
    an = add_analyst(path, "an", "analyst")
    clock = Clock()
    store = ReloadingTokenStore(path, check_every_s=1.0, clock=clock)
    assert store.authenticate(an) == Analyst("an", "analyst")
    binh = add_analyst(path, "binh", "lead")
    assert store.authenticate(binh) is None  # not re-checked before the interval
    clock.t = 1.0
    assert store.authenticate(binh) == Analyst("binh", "lead")
    assert revoke_analyst(path, "an") and not revoke_analyst(path, "nobody")
    clock.t = 2.0
    assert store.authenticate(an) is None
    replaced = add_analyst(path, "binh", "analyst")  # a replaced token: the old one stops working
    clock.t = 3.0
    assert store.authenticate(binh) is None and store.authenticate(replaced) == Analyst("binh", "analyst")
    assert store.reloads == 3


def test_a_broken_tokens_file_keeps_the_last_good_set_and_a_deleted_one_admits_nobody(tmp_path, caplog):
    path = tmp_path / "tokens.yml"
    an = add_analyst(path, "an", "analyst")
    clock = Clock()
    store = ReloadingTokenStore(path, check_every_s=1.0, clock=clock)
    path.write_text("analysts: [{name: x, role: god, token_sha256: ab}]\n")
    clock.t = 1.0
    assert store.authenticate(an) == Analyst("an", "analyst")
    assert store.reload_errors == 1 and "tokens_reload_failed" in caplog.text
    path.unlink()
    clock.t = 2.0
    assert store.authenticate(an) is None


@pytest.mark.parametrize(
    "raw,shown",
    [
        ("ok \x1b[31mred\x1b[0m", "ok \\x1b[31mred\\x1b[0m"),
        ("title\x1b]0;pwned\x07", "title\\x1b]0;pwned\\x07"),
        ("over\rwrite", "over\\x0dwrite"),
        ("csi\x9b2J", "csi\\x9b2J"),
        ("bidi \u202egnp.exe", "bidi \\u202egnp.exe"),
        ("tab\tand Tiếng Việt stay", "tab\tand Tiếng Việt stay"),
    ],
)
def test_clean_shows_control_characters_as_escapes(raw, shown):
    assert clean(raw) == shown


def test_clean_json_stays_json():
    text = json.dumps({"m": "a\x1b[2J\x9b\u202e", "n": [1]}, indent=2, ensure_ascii=False)
    safe = clean_json(text)
    assert json.loads(safe) == json.loads(text)
    assert not any(c in safe for c in "\x1b\x9b\u202e")


def test_table_rows_are_cut_padded_and_cleaned():
    cols = (("A", 4), ("B", 0))
    assert table_row(cols, ["ab", "rest"]) == "ab    rest"
    assert table_row(cols, ["abcdef", "x\x1b[2J"]) == "abc~  x\\x1b[2J"  # cut with ~; the escape shown
    assert table_row(cols, ["ab", ""]) == "ab"  # no trailing blanks


def test_triage_config_defaults_file_and_refusals(tmp_path):
    from pathlib import Path

    from pipeline.config import ConfigError
    from pipeline.triage.config import load_triage_config

    shipped = Path(__file__).resolve().parents[2] / "config" / "triage.yaml"
    cfg = load_triage_config(str(shipped), env={})
    assert (cfg.server.host, cfg.server.port, cfg.server.workers, cfg.token_reload_s) == ("127.0.0.1", 8088, 16, 1.0)
    with pytest.raises(ConfigError, match="server.host: 0.0.0.0 is not loopback and no TLS"):
        load_triage_config(str(shipped), env={"SOCPIPE_SERVER_HOST": "0.0.0.0"})
    with pytest.raises(ConfigError, match="tls_keyfile: set both"):
        load_triage_config(None, env={"SOCPIPE_SERVER_TLS_CERTFILE": "/x.pem"})
    with pytest.raises(ConfigError, match="server.tls_certfile: no such file"):
        load_triage_config(None, env={"SOCPIPE_SERVER_TLS_CERTFILE": "/nope.pem", "SOCPIPE_SERVER_TLS_KEYFILE": "/k"})
    with pytest.raises(ConfigError, match="server.workers: must be at least 1"):
        load_triage_config(None, env={"SOCPIPE_SERVER_WORKERS": "0"})
    ok = load_triage_config(None, env={"SOCPIPE_SERVER_HOST": "10.0.0.5", "SOCPIPE_ALLOW_PLAIN_HTTP": "true"})
    assert ok.server.host == "10.0.0.5"
