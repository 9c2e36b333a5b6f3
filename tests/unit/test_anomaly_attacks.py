"""Attack request generator for honest evaluation: deterministic, split by family/payload, readable
by the CSIC reader, built only from carriers and a published payload corpus."""

from __future__ import annotations

import random

import pytest

from detectors.anomaly.attacks import (
    SHARED_FAMILIES,
    TEST_ONLY_FAMILIES,
    Payload,
    Request,
    inject,
    make_attacks,
    tamper,
)
from detectors.anomaly.csic import request_to_event, split_requests
from detectors.anomaly.request_parts import request_parts

CARRIERS = [
    {"http.request.method": "GET", "url.path": "/app/item.jsp", "url.query": "id=3&name=Vino+Rioja"},
    {"http.request.method": "POST", "url.path": "/app/login.jsp", "http.request.body.content": "user=ana&pwd=x1"},
    {"http.request.method": "GET", "url.path": "/app/index.jsp"},
]
PAYLOADS = [
    Payload(f, "a.json", str(i), t)
    for i, (f, t) in enumerate(
        [
            ("sqli", "' OR 1=1--"),
            ("xss", "<script>alert(1)</script>"),
            ("path_traversal", "../../etc/passwd"),
            ("ldap_injection", "*)(uid=*))(|(uid=*"),
            ("sqli", "1 UNION SELECT NULL"),
            ("xss", "<svg onload=x>"),
        ]
        * 3
    )
]


def events_of(raws: list[str]) -> list[dict]:
    text = "".join(raws)
    return [request_to_event(line, h, b) for line, h, b in split_requests(text.splitlines())]


def test_splits_are_disjoint_and_test_only_families_never_validate():
    splits = {p.split for p in PAYLOADS if p.family in TEST_ONLY_FAMILIES}
    assert splits == {"test"}
    assert not set(SHARED_FAMILIES) & set(TEST_ONLY_FAMILIES)
    val = make_attacks(CARRIERS, PAYLOADS, "validation")
    test = make_attacks(CARRIERS, PAYLOADS, "test")
    assert "ldap_injection" not in val and "ldap_injection" in test
    assert make_attacks(CARRIERS, PAYLOADS, "test") == test  # deterministic
    with pytest.raises(ValueError):
        make_attacks(CARRIERS, PAYLOADS, "train")


def test_attack_requests_parse_back_and_carry_the_payload():
    made = make_attacks(CARRIERS, PAYLOADS, "test", per_payload=3)
    for family, raws in made.items():
        events = events_of(raws)
        assert len(events) == len(raws), family
        for e in events:
            assert e["url.path"].startswith("/app/")
    sqli = events_of(made["sqli"])
    decoded = [" ".join(v for _, v in request_parts(e)[2]) for e in sqli]
    assert all("OR 1=1" in d or "UNION SELECT" in d for d in decoded)


def test_inject_into_body_and_path_and_tamper_kinds():
    rng = random.Random(1)
    post = Request("POST", "/app/login.jsp", [("user", "ana"), ("pwd", "x1")], True)
    hit = inject(rng, post, Payload("sqli", "f", "1", "' OR 'a'='a"))
    assert hit.in_body and any("%27" in v or "'" in v for _, v in hit.params)
    path = inject(
        random.Random(3), Request("GET", "/app/x.jsp", [], False), Payload("path_traversal", "f", "2", "../etc")
    )
    assert path.path == "/app/../etc"
    backup, duplicated = tamper(rng, post, "backup_path"), tamper(rng, post, "duplicate_param")
    assert backup is not None and backup.path.startswith("/app/login.jsp")
    assert duplicated is not None and len(duplicated.params) == 3
    assert tamper(rng, Request("GET", "/a", [], False), "oversize") is None
    [event] = events_of([post.raw()])
    assert event["http.request.body.content"] == "user=ana&pwd=x1"


def test_the_published_corpus_loads_when_installed():
    pytest.importorskip("fray")
    from detectors.anomaly.attacks import corpus_dir, load_payloads

    payloads = load_payloads(corpus_dir())
    families = {p.family for p in payloads}
    assert {"sqli", "xss", "path_traversal"} <= families
    assert len(payloads) > 1000
    val = {p.text for p in payloads if p.split == "validation"}
    test = {(p.family, p.text) for p in payloads if p.split == "test"}
    assert val and test and not {(p.family, p.text) for p in payloads if p.split == "validation"} & test
