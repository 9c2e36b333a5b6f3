"""Fixtures for tests over the real local stack (`socpipe stack up`; `make test` starts it).

The endpoints come from the variables the stack's env file exports. Without them these tests skip
with a message rather than fail, so unit tests still run on a machine with no stack.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
from elasticsearch import ApiError

pytestmark = pytest.mark.integration


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.skip(f"{name} is not set: start the stack (`socpipe stack up`, then `. .socpipe/stack/env`)")
    return value


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    return _env("SOCPIPE_KAFKA_BOOTSTRAP")


@pytest.fixture(scope="session")
def es_url() -> str:
    return _env("SOCPIPE_ES_URL")


def es_config(url: str, **kw):
    """An ElasticsearchConfig for `url` with the stack's credentials from the environment (the secured
    stack exports HTTPS, its CA and the local operator's credential; the plain one exports none)."""
    from pipeline.config import ElasticsearchConfig

    env = os.environ
    return ElasticsearchConfig(
        url=url,
        username=env.get("SOCPIPE_ES_USERNAME", ""),
        password=env.get("SOCPIPE_ES_PASSWORD", ""),
        api_key=env.get("SOCPIPE_ES_API_KEY", ""),
        ca_certs=env.get("SOCPIPE_ES_CA_CERTS", ""),
        **kw,
    )


def es_client(url: str, **kw):
    """The one way tests get an Elasticsearch client: works on the plain and the secured stack."""
    from pipeline.elastic import connect

    return connect(es_config(url), **kw)


@pytest.fixture(scope="session")
def prometheus_url() -> str:
    return _env("SOCPIPE_PROMETHEUS_URL")


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topics, groups and indices, so tests never see each other's data."""
    return uuid.uuid4().hex[:10]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def scrape_target():
    """Register a metrics endpoint with the local Prometheus (file_sd); removed after the test."""
    targets_dir = Path(_env("SOCPIPE_STACK_DIR")) / "prometheus" / "targets"
    written: list[Path] = []

    def register(port: int, job: str, labels: dict[str, str] | None = None) -> None:
        path = targets_dir / f"test-{job}-{port}.json"
        path.write_text(json.dumps([{"targets": [f"127.0.0.1:{port}"], "labels": {"job": job, **(labels or {})}}]))
        written.append(path)

    yield register
    for path in written:
        path.unlink(missing_ok=True)


def promql(prometheus_url: str, query: str) -> list[dict]:
    url = f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]["result"]


def wait_for(predicate, timeout_s: float, interval_s: float = 0.5, what: str = "condition"):
    """Poll until predicate() returns something truthy; fail the test with `what` on the deadline."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except ApiError as exc:
            # 503 while polling = not yet: an index the worker has just created answers searches with
            # "no shard available" until its primary is allocated (seen under load on the real ES)
            if exc.meta.status != 503:
                raise
            last = f"Elasticsearch 503: {exc}"
        else:
            if last:
                return last
        time.sleep(interval_s)
    pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what} (last value: {last!r})")


@pytest.fixture
def procs(tmp_path):
    """Start socpipe commands as processes (`procs.start(name, args, env)`); all stopped after the test."""
    from tests.integration.procs import Procs

    p = Procs(tmp_path)
    yield p
    p.stop_all()
