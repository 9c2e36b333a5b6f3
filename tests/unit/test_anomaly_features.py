"""Window features and windows: pure, on hand-built events."""

from __future__ import annotations

import math

import pytest

from detectors.anomaly import features as F
from detectors.anomaly.csic import csic_events, looks_like_raw_http
from detectors.anomaly.windows import EVIDENCE_MAX, Windower, window_start
from pipeline.devtools.synthetic import web_event

T0 = 1_700_000_040.0  # a minute boundary


def web_features(events, history=F.NO_HISTORY):
    acc = F.WebSourceWindow()
    for e in events:
        acc.add(e)
    return dict(zip(F.WEB_SOURCE_FEATURES, acc.features({}, history)))


def test_web_source_features_count_what_they_say():
    evs = [
        web_event(T0, "1.1.1.1", "/a/b/c.php", status=404, query="id=1'"),
        web_event(T0 + 1, "1.1.1.1", "/a/b/c.php", status=200),
        web_event(T0 + 1.5, "1.1.1.1", "/style.css", status=200, method="POST"),
        web_event(T0 + 2, "1.1.1.1", "/x", status=408, method="HEAD"),
    ]
    f = web_features(evs)
    assert f["requests"] == 4
    assert f["distinct_paths"] == 3
    assert f["distinct_urls"] == 4  # the query makes /a/b/c.php?id=1' a URL of its own
    assert f["ratio_4xx"] == pytest.approx(1 / 4)  # the 408 (unused preconnect) is not a probe
    assert f["query_share"] == pytest.approx(1 / 4)
    assert f["special_char_share"] == pytest.approx(1 / 4)
    assert f["static_share"] == pytest.approx(1 / 4)
    assert f["post_share"] == pytest.approx(1 / 4)
    assert f["other_method_share"] == pytest.approx(1 / 4)
    assert f["max_path_depth"] == 3
    assert f["active_seconds"] == 3  # T0, T0+1 and T0+1.5 share a second
    assert f["prior_requests"] == 0


def test_history_reaches_features():
    f = web_features([web_event(T0, "1.1.1.1", "/")], F.History(events=50, errors=25, windows=3))
    assert (f["prior_requests"], f["prior_ratio_4xx"], f["prior_active_windows"]) == (50, 0.5, 3)


def test_distinct_sets_are_capped():
    acc = F.WebSourceWindow()
    for i in range(F.DISTINCT_CAP + 100):
        acc.add(web_event(T0, "1.1.1.1", f"/p{i}"))
    assert len(acc.paths) == F.DISTINCT_CAP
    assert acc.n == F.DISTINCT_CAP + 100


def test_entropy_and_depth():
    assert F.char_entropy("") == 0.0
    assert F.char_entropy("aaaa") == 0.0
    assert F.char_entropy("abcd") == pytest.approx(2.0)
    assert F.path_depth("/a//b/") == 2
    assert F.path_extension("/x/y.PHP") == "php"


def test_missing_or_odd_fields_do_not_raise():
    acc = F.WebSourceWindow()
    acc.add({"@timestamp": "bad", "url.original": None, "http.response.status_code": "n/a"})
    vec = F.model_vector(F.PROFILES["web.source"], acc.features({}, F.NO_HISTORY))
    assert all(math.isfinite(v) for v in vec)


def test_request_features_use_the_application_vocabulary():
    profile = F.PROFILES["web.request"]
    ctx = F.load_context(profile.context([web_event(T0, "1.1.1.1", "/shop/cart.jsp", query="id=3&qty=1")]))
    known = profile.accumulator()
    known.add(web_event(T0, "2.2.2.2", "/shop/cart.jsp", query="id=9"))
    novel = profile.accumulator()
    novel.add(web_event(T0, "2.2.2.2", "/admin/shell.php", query="cmd=id"))
    fk = dict(zip(profile.feature_names, known.features(ctx, F.NO_HISTORY)))
    fn = dict(zip(profile.feature_names, novel.features(ctx, F.NO_HISTORY)))
    assert (fk["unknown_path_segments"], fk["unknown_param_names"]) == (0.0, 0.0)
    assert (fn["unknown_path_segments"], fn["unknown_param_names"]) == (1.0, 1.0)


def test_user_features_new_network_and_rare_hour():
    profile = F.PROFILES["auth.user"]
    day = 1_700_006_400.0  # 00:00 UTC
    train = [
        {
            "@timestamp": F_iso(day + 9 * 3600 + i),
            "event.dataset": "system.auth",
            "user.name": "an",
            "event.outcome": "success",
            "source.ip": "10.1.2.3",
        }
        for i in range(20)
    ]
    ctx = F.load_context(profile.context(train))
    acc = profile.accumulator()
    acc.add(
        {
            "@timestamp": F_iso(day + 3 * 3600),
            "event.dataset": "system.auth",
            "user.name": "an",
            "event.outcome": "success",
            "source.ip": "198.51.100.7",
        }
    )
    f = dict(zip(profile.feature_names, acc.features(ctx, F.NO_HISTORY)))
    assert f["new_source_networks"] == 1 and f["login_hour_rarity"] == 1.0
    usual = profile.accumulator()
    usual.add(train[0])
    g = dict(zip(profile.feature_names, usual.features(ctx, F.NO_HISTORY)))
    assert g["new_source_networks"] == 0 and g["login_hour_rarity"] == 0.0


def F_iso(ts):
    from detectors.common.times import iso_ms as iso

    return iso(ts)


def test_host_features_auth_failures_and_new_processes():
    profile = F.PROFILES["host.activity"]
    ctx = F.load_context(profile.context([{"process.name": "sshd"}]))
    acc = profile.accumulator()
    for outcome in ("failure", "failure", "success"):
        acc.add(
            {
                "event.dataset": "system.auth",
                "event.outcome": outcome,
                "user.name": "root",
                "process.name": "sshd",
                "source.ip": "1.2.3.4",
            }
        )
    acc.add({"event.dataset": "auditd.log", "process.name": "xmrig"})
    f = dict(zip(profile.feature_names, acc.features(ctx, F.NO_HISTORY)))
    assert f["auth_failure_ratio"] == pytest.approx(2 / 3)
    assert f["events_auth"] == 3 and f["events_audit"] == 1
    assert f["new_processes"] == 1


# ------------------------------------------------------------------ windows
def test_windows_close_on_watermark_and_drop_late_events():
    w = Windower(F.PROFILES["web.source"], 60)
    for i in range(5):
        assert w.add(web_event(T0 + i, "1.1.1.1", "/"), T0 + i) is None
    w.add(web_event(T0 + 61, "1.1.1.1", "/"), T0 + 61)
    assert w.advance(T0 + 59) == []
    closed = w.advance(T0 + 60)
    assert [(c.start, c.events) for c in closed] == [(T0, 5)]
    assert w.add(web_event(T0 + 3, "1.1.1.1", "/"), T0 + 3) is None
    assert w.stats.late == 1
    nxt = w.flush()
    assert nxt[0].history.events == 5 and nxt[0].history.windows == 1


def test_window_evidence_and_open_windows_are_bounded():
    w = Windower(F.PROFILES["web.source"], 60, max_open=2)
    for i in range(50):
        w.add(web_event(T0, "1.1.1.1", f"/{i}"), T0)
    w.add(web_event(T0, "2.2.2.2", "/"), T0)
    w.add(web_event(T0, "3.3.3.3", "/"), T0)
    assert w.stats.overflow == 1
    closed = {c.entity: c for c in w.flush()}
    assert len(closed[("1.1.1.1",)].evidence) == EVIDENCE_MAX
    assert closed[("1.1.1.1",)].events == 50


def test_window_start_is_aligned():
    assert window_start(T0 + 59.9, 60) == T0
    for ts in (T0 + 60, T0 + 599.5, 0.0):
        start = window_start(ts, 600)
        assert start % 600 == 0 and start <= ts < start + 600


# ------------------------------------------------------------------ CSIC
RAW = (
    "GET http://localhost:8080/tienda1/index.jsp HTTP/1.1\r\nUser-Agent: Mozilla/5.0 (compatible; Konqueror/3.5)\r\n"
    "Host: localhost:8080\r\n\r\n\r\n"
    "POST http://localhost:8080/tienda1/publico/anadir.jsp HTTP/1.1\r\nUser-Agent: X\r\nContent-Length: 9\r\n"
    "Content-Type: application/x-www-form-urlencoded\r\n\r\nid=3&a=b\r\n\r\n"
    "GET http://localhost:8080/tienda1/a.jsp?x=1&y=%F1 HTTP/1.1\r\n\r\n"
)


def test_csic_requests_become_access_like_events():
    events = list(csic_events(RAW.splitlines(keepends=True)))
    assert [e["http.request.method"] for e in events] == ["GET", "POST", "GET"]
    assert events[0]["url.path"] == "/tienda1/index.jsp" and "url.query" not in events[0]
    assert events[1]["http.request.body.content"] == "id=3&a=b"
    assert events[2]["url.original"] == "/tienda1/a.jsp?x=1&y=%F1" and events[2]["url.query"] == "x=1&y=%F1"
    ua, t0, t1 = events[0]["user_agent.original"], events[0]["@timestamp"], events[1]["@timestamp"]
    assert isinstance(ua, str) and ua.startswith("Mozilla")
    assert isinstance(t0, str) and isinstance(t1, str) and t1 > t0
    assert looks_like_raw_http("GET http://a/ HTTP/1.1") and not looks_like_raw_http('1.2.3.4 - - [x] "GET /"')
