"""The secured Elasticsearch (`socpipe stack up --secure`): HTTPS only, one least-privilege credential per
service, and a credential without the privilege refused.

Runs only against the secured stack (the env file then exports an https SOCPIPE_ES_URL and the path of
the stack's credentials file); skips on the plain one.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from pathlib import Path

import pytest
from elasticsearch import AuthenticationException, AuthorizationException, ConnectionError, Elasticsearch

from detectors.alerts import alert_index_name, build_alert
from pipeline.config import ElasticsearchConfig
from pipeline.elastic import AlertIndexer, connect, setup
from pipeline.elastic.triage import TriageService
from pipeline.triage.workflow import Change
from tests.integration.alerts_support import detection
from tests.integration.conftest import es_client


@pytest.fixture
def secured(es_url):
    if not es_url.startswith("https://") or not os.environ.get("SOCPIPE_STACK_ES_CREDENTIALS"):
        pytest.skip("needs the secured stack (`socpipe stack up --secure`)")
    creds = json.loads(Path(os.environ["SOCPIPE_STACK_ES_CREDENTIALS"]).read_text())

    def client(service: str) -> Elasticsearch:
        c = creds[service]
        cfg = ElasticsearchConfig(
            url=es_url, username=c["username"], password=c["password"], ca_certs=os.environ["SOCPIPE_ES_CA_CERTS"]
        )
        return connect(cfg)

    return client


def test_each_service_can_do_its_job_and_nothing_else(secured, es_url, unique):
    """detector writes alerts, triage changes them, setup installs templates; each refused beyond that.

    The stack's roles are written for the production prefix `socpipe`; the test's indices are
    `socpipe-alerts-test-<unique>` (inside the pattern) and are deleted by the operator afterwards.
    """
    admin = es_client(es_url)
    detector, triage, setup_es = secured("detector"), secured("triage"), secured("setup")
    index = f"socpipe-alerts-test-{unique}"
    try:
        # setup: templates yes; documents no
        report = setup(setup_es, ElasticsearchConfig(url=es_url))
        assert "socpipe-alerts" in report.templates
        with pytest.raises(AuthorizationException):
            setup_es.search(index="socpipe-alerts-*", query={"match_all": {}})

        # detector: creates alert documents through the indexer (create_doc + create_index)
        doc = build_alert(detection("root", 1764291723.0))
        created = detector.create(index=index, id=doc["_id"], document={k: v for k, v in doc.items() if k[0] != "_"})
        assert created["result"] == "created"
        with pytest.raises(AuthorizationException):
            detector.indices.delete(index=index)
        with pytest.raises(AuthorizationException):
            detector.indices.put_index_template(name=f"evil-{unique}", index_patterns=[f"evil-{unique}-*"])
        admin.index(index=f"other-{unique}", document={"x": 1}, refresh=True)
        with pytest.raises(AuthorizationException):  # (a wildcard would silently match only allowed indices)
            detector.search(index=f"other-{unique}", query={"match_all": {}})
        with pytest.raises(AuthorizationException):  # no document outside the alert and event indices
            detector.index(index=f"other-{unique}", document={"x": 2})

        # triage: changes an alert's workflow with optimistic concurrency; cannot create or delete
        admin.indices.refresh(index=index)
        service = TriageService(triage, prefix="socpipe", refresh="wait_for")
        rec = service.change(doc["_id"], Change("ack", "analyst-a", "2026-12-06T03:00:00.000Z"))
        assert rec.status == "acknowledged"
        with pytest.raises(AuthorizationException):
            triage.create(index=f"socpipe-alerts-new-{unique}", id="x", document={"message": "forged"})
        with pytest.raises(AuthorizationException):
            triage.delete(index=index, id=doc["_id"])
        with pytest.raises(AuthorizationException):
            triage.indices.put_index_template(name=f"evil-{unique}", index_patterns=[f"evil-{unique}-*"])
    finally:
        admin.options(ignore_status=404).indices.delete(index=index)
        admin.options(ignore_status=404).indices.delete(index=f"other-{unique}")


def test_the_detector_worker_code_path_with_its_own_credential(secured, es_url, unique):
    """AlertIndexer (bulk op_type=create) and a suppression update succeed with the detector's credential."""
    admin = es_client(es_url)
    detector = secured("detector")
    setup(secured("setup"), ElasticsearchConfig(url=es_url))
    indexer = AlertIndexer(detector, prefix="socpipe", refresh="wait_for")
    doc = build_alert(detection(f"u{unique}", 1764291723.0, ip="198.51.100.77"))
    try:
        result = indexer.index([doc])
        assert result.created == [doc["_id"]], result
        assert indexer.index([doc]).duplicates == [doc["_id"]]
        key = doc["socpipe"]["detection"]["dedup_key"]
        assert indexer.update_suppressed(key, count=2) == doc["_id"]
    finally:
        source = {k: v for k, v in doc.items() if k[0] != "_"}
        admin.options(ignore_status=404).delete(index=alert_index_name(source, "socpipe"), id=doc["_id"])


def test_no_plain_http_and_no_anonymous_or_wrong_credential(secured, es_url):
    u = urllib.parse.urlsplit(es_url)
    plain = Elasticsearch(f"http://{u.netloc}", request_timeout=3, max_retries=0)
    with pytest.raises(ConnectionError):
        plain.cluster.health()
    ca = os.environ["SOCPIPE_ES_CA_CERTS"]
    with pytest.raises(AuthenticationException):
        Elasticsearch(es_url, ca_certs=ca, max_retries=0).cluster.health()
    with pytest.raises(AuthenticationException):
        Elasticsearch(es_url, ca_certs=ca, basic_auth=("socpipe-detector", "wrong"), max_retries=0).cluster.health()
    # an untrusted CA fails the TLS handshake rather than sending a credential
    with pytest.raises(ConnectionError):
        Elasticsearch(es_url, basic_auth=("socpipe-detector", "x"), max_retries=0).cluster.health()
