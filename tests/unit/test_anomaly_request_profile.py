"""Per-endpoint, per-parameter request profiles (`request_profile` kind of `web.request`)."""

from __future__ import annotations

import json
import random
from urllib.parse import quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.alerts.build import build_alert
from detectors.anomaly import AnomalyScorer, ModelLoadError, load_model_dir, save_model_dir, set_stage, train
from detectors.anomaly.csic import request_to_event, split_requests
from detectors.anomaly.request_parts import endpoint_of, grams, parse_params, shape
from detectors.anomaly.request_profile import POINTS, learn
from detectors.common.times import iso_ms as iso

T0 = 1_700_000_000.0
NAMES = ["Ana", "Luis", "María", "José Luis", "Iñaki", "O'Neil", "Zoe", "Pedro", "Marta", "Sofía"]


def shop_event(rng: random.Random, i: int) -> dict:
    """A small shop: product pages with an id enum, a cart with numeric amounts, a login form."""
    kind = rng.random()
    if kind < 0.4:
        path, params = "/shop/item.jsp", [("id", str(rng.randint(1, 3))), ("view", rng.choice(["full", "short"]))]
    elif kind < 0.7:
        path, params = "/shop/cart.jsp", [("id", str(rng.randint(1, 3))), ("qty", str(rng.randint(1, 99)))]
    else:
        path = "/shop/login.jsp"
        params = [("user", rng.choice(NAMES).lower().replace(" ", "")), ("name", rng.choice(NAMES))]
    query = "&".join(f"{k}={quote_plus(v, encoding='latin-1')}" for k, v in params)
    return {
        "@timestamp": iso(T0 + i),
        "event.dataset": "http.request",
        "source.ip": f"10.0.0.{i % 50 + 1}",
        "http.request.method": "GET",
        "url.path": path,
        "url.query": query,
        "url.original": f"{path}?{query}",
    }


def web(path: str, query: str = "", i: int = 0, method: str = "GET") -> dict:
    e = {
        "@timestamp": iso(T0 + 10_000 + i),
        "event.dataset": "http.request",
        "source.ip": "203.0.113.9",
        "http.request.method": method,
        "url.path": path,
        "url.original": path + ("?" + query if query else ""),
    }
    if query:
        e["url.query"] = query
    return e


@pytest.fixture(scope="module")
def normal():
    rng = random.Random(3)
    return [shop_event(rng, i) for i in range(3000)]


@pytest.fixture(scope="module")
def model(normal):
    return train("web.request", normal, kind="request_profile", fp_rate=0.01)


def reasons(model, event):
    return {(r.parameter, r.property) for r in model.score_request(event)[1]}


def test_helpers_shape_grams_endpoint_and_decoding():
    assert shape("Ab9-z") == "Aa9-a"
    assert grams("ab") == {"aa"} and grams("Ab1x") == {"Aa9", "a9a"}
    assert endpoint_of("/item/42/edit") == "/item/{n}/edit"
    assert parse_params("a=1&b=x+y%27", "c=%F1") == [("a", "1"), ("b", "x y'"), ("c", "ñ")]
    assert parse_params("x=1&1644219144817") == [("x", "1"), ("{n}", "")]  # cache-buster names
    assert parse_params("q=日本") == [("q", "æ\x97¥æ\x9c¬")]  # raw UTF-8: bytes, like %E6%97%A5%E6%9C%AC
    assert parse_params("q=%E6%97%A5%E6%9C%AC") == parse_params("q=日本")


def test_threshold_ties_do_not_exceed_the_fp_target(normal):
    # 3% of requests carry a parameter name no other request has: held out, each scores exactly
    # unseen_parameter's points, so the 99% quantile sits on a tie
    rng = random.Random(5)
    tied = [
        dict(e, **{"url.query": e["url.query"] + f"&x{i}=1"}) if rng.random() < 0.03 else e
        for i, e in enumerate(normal)
    ]
    m = train("web.request", tied, kind="request_profile", fp_rate=0.01)
    assert m.threshold > POINTS["unseen_parameter"]
    assert m.metadata["training"]["fp_rate_calibration"] <= 0.01


def test_normal_requests_score_below_threshold(model):
    rng = random.Random(99)  # fresh requests of the same application
    fresh = [shop_event(rng, i) for i in range(500)]
    flagged = sum(model.score_request(e)[0] >= model.threshold for e in fresh)
    assert flagged <= 10
    assert model.threshold >= 3.0 and model.high_threshold >= 3 * model.threshold
    t = model.metadata["training"]
    assert t["fit_windows"] + t["calibration_windows"] == 3000 and "held out" in t["split"]


@pytest.mark.parametrize(
    "event, expected",
    [
        (web("/shop/login.jsp", "user=ana&name=" + quote_plus("x' OR '1'='1")), ("name", "charset")),
        (web("/shop/cart.jsp", "id=2&qty=abc"), ("qty", "numeric_type")),
        (web("/shop/cart.jsp", "id=2&qty=5000"), ("qty", "numeric_range")),
        (web("/shop/item.jsp", "id=7&view=full"), ("id", "enumeration")),
        (web("/shop/item.jsp", "id=2&view=full&debug=1"), ("debug", "unseen_parameter")),
        (web("/shop/item.jsp", "id=2&id=3&view=full"), ("id", "duplicate_parameter")),
        (web("/shop/cart.jsp", "id=2"), ("qty", "missing_parameter")),
        (web("/shop/login.jsp", "user=" + "a" * 300 + "&name=Ana"), ("user", "length")),
        (web("/shop/../../etc/passwd"), ("(endpoint)", "unseen_endpoint")),
        (web("/shop/item.jsp.bak", "id=1&view=full"), ("(endpoint)", "unseen_endpoint")),
        (web("/shop/login.jsp", "user=ana&name=%3Cscript%3Ealert(1)%3C/script%3E"), ("name", "charset")),
    ],
)
def test_departures_are_flagged_and_named(model, event, expected):
    score, why = model.score_request(event)
    assert score >= model.threshold, why
    assert expected in {(r.parameter, r.property) for r in why}


def test_encoded_traversal_in_a_value_is_caught_after_decoding(model):
    score, why = model.score_request(web("/shop/login.jsp", "user=%2e%2e%252f%2e%2e%252fetc&name=Ana"))
    assert score >= model.threshold
    assert ("user", "charset") in {(r.parameter, r.property) for r in why}


def test_form_body_parameters_are_profiled_like_query_ones(normal):
    posts = []
    for e in normal:
        e = dict(e, **{"http.request.method": "POST", "http.request.body.content": e["url.query"]})
        e.pop("url.query")
        e["url.original"] = e["url.path"]
        posts.append(e)
    m = train("web.request", posts, kind="request_profile")
    attack = web("/shop/cart.jsp", method="POST")
    attack["http.request.body.content"] = "id=2&qty=1%3Bcat+/etc/passwd"
    score, why = m.score_request(attack)
    assert score >= m.threshold and why[0].parameter == "qty"


def test_model_directory_round_trip_scores_identically_and_detects_tampering(model, tmp_path):
    d = tmp_path / "req"
    save_model_dir(model, d)
    loaded = load_model_dir(d)
    assert loaded.kind == "request_profile" and loaded.shadow
    probe = [web("/shop/cart.jsp", "id=2&qty=abc"), web("/shop/item.jsp", "id=1&view=full")]
    assert [loaded.score_request(e)[0] for e in probe] == [model.score_request(e)[0] for e in probe]
    meta = json.loads((d / "metadata.json").read_text())
    meta["request_profile"]["endpoints"]["/shop/cart.jsp"]["params"]["qty"]["numeric"] = None
    (d / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="sha256"):
        load_model_dir(d)


def test_scorer_finding_and_alert_name_parameter_and_property(model, tmp_path):
    d = tmp_path / "req"
    save_model_dir(model, d)
    set_stage(d, "live")
    scorer = AnomalyScorer.from_dirs([d])
    assert scorer.process(web("/shop/item.jsp", "id=1&view=full")) == []
    [f] = scorer.process(web("/shop/cart.jsp", "id=2&qty=1%27%20OR%201=1--"))
    assert not f.shadow and f.anomalous and f.profile == "web.request"
    assert f.reasons[0]["parameter"] == "qty" and f.reasons[0]["property"] == "numeric_type"
    assert f.top_features[0][0] == "qty.numeric_type"
    doc = build_alert(f)
    assert doc["socpipe"]["anomaly"]["reasons"][0]["parameter"] == "qty"
    assert "numeric_type of parameter qty" in doc["rule"]["description"]
    assert doc["source"]["ip"] == "203.0.113.9"


def test_raw_http_requests_round_trip_through_the_csic_reader(model):
    raw = (
        "POST http://localhost:8080/shop/cart.jsp HTTP/1.1\r\nHost: x\r\nContent-Length: 16\r\n\r\nid=2&qty=-%2F..9\r\n"
    )
    [(line, headers, body)] = list(split_requests(raw.splitlines()))
    e = request_to_event(line, headers, body)
    assert e["http.request.body.content"] == "id=2&qty=-%2F..9"
    assert model.score_request(e)[0] >= model.threshold


def test_learn_is_bounded_and_needs_enough_requests(normal):
    p = learn(normal[:100], max_endpoints=2)
    assert len(p.endpoints) == 2
    with pytest.raises(ValueError, match="at least 20"):
        train("web.request", normal[:5], kind="request_profile")
    with pytest.raises(ValueError, match="web.request"):
        train("web.source", normal, kind="request_profile")


def test_shadow_request_model_reports_then_alerts_after_promotion_and_retrain_reloads(model, normal, tmp_path):
    from pipeline.worker.models import ModelSet

    class Clock:
        t = 0.0

        def __call__(self):
            return self.t

    d, clock = tmp_path / "req", Clock()
    save_model_dir(model, d)
    ms = ModelSet([str(d)], check_every_s=10, clock=clock)
    [f] = ms.scorer.process(web("/shop/cart.jsp", "id=2&qty=abc"))
    assert f.shadow and f.reasons  # shadow: reported with its reasons, never alerted (the worker's rule)
    set_stage(d, "live")
    clock.t = 11
    assert ms.maybe_reload()
    [f] = ms.scorer.process(web("/shop/cart.jsp", "id=2&qty=abc"))
    assert not f.shadow
    version = f.model_version
    save_model_dir(train("web.request", normal[:2000], kind="request_profile", seed=3), d, stage="live")
    clock.t = 22
    assert ms.maybe_reload()  # a retrained model in the same directory is picked up
    assert ms.scorer.models[0].version != version and ms.scorer.models[0].metadata["training"]["seed"] == 3


_ANY = st.one_of(st.none(), st.integers(), st.text(max_size=300), st.lists(st.text(max_size=5), max_size=3))


@settings(max_examples=200, deadline=None)
@given(
    path=_ANY,
    query=_ANY,
    body=_ANY,
    method=_ANY,
    original=_ANY,
)
def test_hostile_events_never_break_scoring(model, path, query, body, method, original):
    e = {
        "@timestamp": iso(T0),
        "event.dataset": "http.request",
        "url.path": path,
        "url.query": query,
        "http.request.body.content": body,
        "http.request.method": method,
        "url.original": original,
    }
    score, why = model.score_request(e)
    assert score >= 0 and len(why) <= 5
    assert all(isinstance(r.as_dict()["observed"], str) for r in why)


def test_sparse_parameters_check_only_their_type_or_borrow_the_names_wider_profile(normal):
    rare = [
        web("/shop/rare.jsp", f"q={w}&n={i}", i)
        for i, w in enumerate(["shoes", "red", "hat"])  # 3 samples: too few to know q's characters
    ]
    m = train("web.request", normal + rare, kind="request_profile")
    assert m.score_request(web("/shop/rare.jsp", "q=Blue+Jeans+42&n=7"))[0] < m.threshold  # not a departure yet
    assert ("n", "numeric_type") in reasons(m, web("/shop/rare.jsp", "q=x&n=seven"))
    # `id` is rare on this endpoint but common elsewhere: the wider profile (numbers 1..3) applies
    m2 = train("web.request", normal + [web("/shop/other.jsp", "id=2", i) for i in range(3)], kind="request_profile")
    assert ("id", "enumeration") in reasons(m2, web("/shop/other.jsp", "id=9"))
