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


def alert_hits(es, prefix: str, query: dict | None = None, size: int = 500) -> list[dict]:
    """Search hits of the alert indices of `prefix` (refreshed first, so what a worker wrote is there);
    none while no daily index exists yet."""
    index = f"{prefix}-alerts-*"
    es.indices.refresh(index=index, allow_no_indices=True, ignore_unavailable=True)
    res = es.search(
        index=index, size=size, query=query or {"match_all": {}}, allow_no_indices=True, ignore_unavailable=True
    )
    return res["hits"]["hits"]


def alert_sources(es, prefix: str, query: dict | None = None, size: int = 500) -> list[dict]:
    return [h["_source"] for h in alert_hits(es, prefix, query, size)]


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


def free_ports(count: int, attempts: int = 50) -> int:
    """The first of `count` consecutive TCP ports free on 127.0.0.1 (all bound at once to check, then
    released: free when returned, as free_port's), for a plan that steps from one base port, such as a
    Kafka cluster's (node i on each Kafka port + 3*i)."""
    for _ in range(attempts):
        first = free_port()
        held: list[socket.socket] = []
        try:
            for port in range(first, first + count):
                held.append(s := socket.socket())
                s.bind(("127.0.0.1", port))
            return first
        except OSError:  # one of them in use (or past 65535): try another base
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError(f"no {count} consecutive free ports on 127.0.0.1 in {attempts} attempts")


def describe_groups(admin, groups: list[str]) -> dict[str, dict] | None:
    """`admin.describe_groups(groups)`, or None while the cluster has no group coordinator yet: a fresh
    cluster creates `__consumer_offsets` at the first FindCoordinator and answers COORDINATOR_NOT_AVAILABLE
    (or COORDINATOR_LOAD_IN_PROGRESS) until its partitions have leaders and are loaded. A test polling
    a group right after `socpipe stack up` must wait on that, as the worker's own consumers do, not fail
    (test_detector_stop did, in 1.6 s, on a fresh stack). Any other error is raised."""
    from kafka.errors import CoordinatorLoadInProgressError, CoordinatorNotAvailableError

    try:
        described: dict[str, dict] = admin.describe_groups(groups)
    except (CoordinatorNotAvailableError, CoordinatorLoadInProgressError):
        return None
    return described


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


MAX_STRETCH = 6  # no wait lasts longer than this many times its budget, in wall-clock seconds


def load_per_core() -> float:
    """The machine's 1-minute load average per core, at least 1 (an idle machine counts as 1)."""
    return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


class Deadline:
    """A wait's budget in seconds of an unloaded machine, not a wall-clock guess.

    The machine is shared (2 cores; other suites running beside ours pushed the load to 10-18, and
    fixed deadlines failed there while the pipeline was only slow). Each wall-clock second spends
    1 / `load_per_core()` of the budget: on an idle machine the budget is the wall clock, at load 12
    on 2 cores a second spends a sixth. `moved(value)` restarts the budget whenever `value` (a count
    of work done) changed: work that is slow but moving gets its time, work that is stuck fails after
    a budget without a change. Whatever happens, the wait ends after MAX_STRETCH x budget_s wall seconds.
    """

    def __init__(self, budget_s: float):
        self.budget_s = budget_s
        self.started = self._tick = time.monotonic()
        self.spent = 0.0
        self.peak_load = load_per_core()
        self._value: object = object()

    def moved(self, value: object) -> None:
        if value != self._value:
            self._value, self.spent = value, 0.0

    def expired(self) -> bool:
        now, load = time.monotonic(), load_per_core()
        self.spent += (now - self._tick) / load
        self._tick, self.peak_load = now, max(self.peak_load, load)
        return self.spent >= self.budget_s or now - self.started >= MAX_STRETCH * self.budget_s

    def describe(self) -> str:
        return (
            f"after {time.monotonic() - self.started:.0f}s (budget {self.budget_s:.0f}s of an idle machine, "
            f"load per core up to {self.peak_load:.1f})"
        )


def wait_for(predicate, timeout_s: float, interval_s: float = 0.5, what: str = "condition", progress=None):
    """Poll until predicate() returns something truthy; fail the test with `what` when a `Deadline` of
    `timeout_s` expires. `progress`: a callable returning a count of work done (lines consumed,
    records processed); each change restarts the deadline, so only a wait where nothing moves fails."""
    deadline = Deadline(timeout_s)
    last = None
    while True:
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
        if progress is not None:
            deadline.moved(progress())
        if deadline.expired():
            break
        time.sleep(interval_s)
    pytest.fail(f"timed out {deadline.describe()} waiting for {what} (last value: {last!r})")


@pytest.fixture
def procs(tmp_path):
    """Start socpipe commands as processes (`procs.start(name, args, env)`); all stopped after the test."""
    from tests.integration.procs import Procs

    p = Procs(tmp_path)
    yield p
    p.stop_all()
