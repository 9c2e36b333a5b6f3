"""Issue #17 item 4: enrolment tokens are single- or N-use and expire, refusals are logged and rate
limited per address, tokens of agencies outside the inventory are refused, and the HTTPS server does
its handshakes off the accept loop with timeouts and a bounded number of connections. Real sockets."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import sqlite3
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner

from pipeline.config import ConfigError
from pipeline.coverage.config import EnrolmentConfig
from pipeline.enrolment.registry import EnrolmentError, Registry
from pipeline.enrolment.server import FailureLimiter, handle_enroll, serve_in_thread


def refused(reg: Registry, token: str, **kw) -> str:
    with pytest.raises(EnrolmentError) as err:
        reg.enroll(token, "h", **kw)
    return err.value.reason


def test_tokens_are_single_use_by_default_and_n_use_when_stated(tmp_path):
    reg = Registry(tmp_path / "reg.db")
    _, once = reg.create_token("xa-a")
    reg.enroll(once, "srv1")
    assert refused(reg, once) == "used_up"
    _, thrice = reg.create_token("xa-a", uses=3)
    for i in range(3):
        reg.enroll(thrice, f"srv{i}")
    assert refused(reg, thrice) == "used_up"
    [t1, t3] = reg.tokens("xa-a")
    assert (t1.uses_left, t1.max_uses, t3.uses_left, t3.max_uses) == (0, 1, 0, 3)
    assert t3.state(time.time()) == "used_up"
    with pytest.raises(ValueError):
        reg.create_token("xa-a", uses=0)


def test_tokens_expire(tmp_path):
    reg = Registry(tmp_path / "reg.db")
    _, token = reg.create_token("xa-a", uses=5, ttl_s=0.2)
    reg.enroll(token, "srv1")
    time.sleep(0.3)
    assert refused(reg, token) == "expired"
    assert refused(reg, "spt_never-issued") == "unknown"
    with pytest.raises(ValueError):
        reg.create_token("xa-a", ttl_s=0)


def test_a_single_use_token_enrols_once_under_concurrent_use_from_two_processes_worth_of_connections(tmp_path):
    reg = Registry(tmp_path / "reg.db")
    _, token = reg.create_token("xa-a")
    regs = [reg, Registry(tmp_path / "reg.db")]  # two connections: as the server and the CLI would
    wins, barrier = [], threading.Barrier(8)

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            wins.append(regs[i % 2].enroll(token, f"srv{i}"))
        except EnrolmentError:
            pass

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert len(reg.agents()) == 1


def test_tokens_made_before_limits_existed_are_refused(tmp_path):
    db = sqlite3.connect(tmp_path / "reg.db")
    db.executescript(
        "CREATE TABLE tokens (token_id TEXT PRIMARY KEY, agency_id TEXT NOT NULL, token_sha256 TEXT NOT NULL UNIQUE,"
        " created_at REAL NOT NULL, revoked_at REAL);"
    )
    import hashlib

    db.execute("INSERT INTO tokens VALUES ('old', 'xa-a', ?, 1.0, NULL)", (hashlib.sha256(b"spt_old").hexdigest(),))
    db.commit()
    db.close()
    reg = Registry(tmp_path / "reg.db")
    assert refused(reg, "spt_old") == "used_up"
    _, token = reg.create_token("xa-a")
    assert reg.enroll(token, "h").agency_id == "xa-a"


def test_tokens_of_agencies_outside_the_inventory_are_refused(tmp_path, caplog):
    reg = Registry(tmp_path / "reg.db")
    _, token = reg.create_token("xa-removed")
    assert refused(reg, token, agency_allowed=lambda a: a != "xa-removed") == "agency_not_in_inventory"
    caplog.set_level(logging.WARNING, "socpipe.enrolment")
    status, _ = handle_enroll(
        reg, EnrolmentConfig(), json.dumps({"token": token, "host": "h"}).encode(), lambda a: False, "10.1.2.3"
    )
    assert status == 403
    assert "client=10.1.2.3" in caplog.text and "reason=agency_not_in_inventory" in caplog.text
    assert token not in caplog.text  # tokens are never logged
    assert reg.tokens("xa-removed")[0].uses_left == 1  # a refused attempt spends no use


def test_cli_refuses_a_token_for_an_agency_not_in_the_inventory(tmp_path, monkeypatch):
    from pipeline.cli.coverage import agency

    inv = tmp_path / "inventory.yaml"
    inv.write_text("agencies:\n  - {id: xa-a, name: UBND A, tier: commune}\n")
    monkeypatch.setenv("SOCPIPE_INVENTORY", str(inv))
    monkeypatch.setenv("SOCPIPE_REGISTRY", str(tmp_path / "reg.db"))
    runner = CliRunner()
    bad = runner.invoke(agency, ["token", "create", "xa-zzz"])
    assert bad.exit_code == 2 and "not in the inventory" in bad.output
    good = runner.invoke(agency, ["token", "create", "xa-a", "--uses", "3", "--expires-in", "2h"])
    assert good.exit_code == 0, good.output
    assert "uses:     3" in good.output
    listed = runner.invoke(agency, ["token", "list"])
    assert "uses left 3/3" in listed.output and "active" in listed.output


def test_failure_limiter_per_address():
    lim = FailureLimiter(max_failures=3, window_s=60)
    for t in range(3):
        assert not lim.blocked("10.0.0.1", t)
        lim.failed("10.0.0.1", t)
    assert lim.blocked("10.0.0.1", 10) and not lim.blocked("10.0.0.2", 10)
    assert not lim.blocked("10.0.0.1", 100)  # the window slid past
    small = FailureLimiter(1, 60, max_addresses=100)
    for i in range(1000):
        small.failed(f"10.0.{i // 250}.{i % 250}", 0)
    assert len(small._failures) == 100


def post(url: str, payload: dict, ctx=None) -> int:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_refusals_are_rate_limited_per_address(tmp_path, caplog):
    reg = Registry(tmp_path / "reg.db")
    _, token = reg.create_token("xa-a")
    caplog.set_level(logging.WARNING, "socpipe.enrolment")
    server, _ = serve_in_thread(reg, EnrolmentConfig(listen_port=0, max_failures=3, failure_window_s=60))
    url = f"http://127.0.0.1:{server.server_address[1]}/v1/enroll"
    try:
        assert [post(url, {"token": f"spt_guess{i}", "host": "h"}) for i in range(5)] == [403, 403, 403, 429, 429]
        assert post(url, {"token": token, "host": "h"}) == 429  # even a good token, while this address is blocked
        assert caplog.text.count("reason=unknown") == 3 and "reason=rate_limited" in caplog.text
        assert reg.tokens("xa-a")[0].uses_left == 1
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def cert(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    crt, key = tmp_path / "enrol.crt", tmp_path / "enrol.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        + ["-keyout", str(key), "-out", str(crt), "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    return crt, key


def test_a_stalled_tls_client_does_not_block_others_and_is_dropped(tmp_path, cert):
    reg = Registry(tmp_path / "reg.db")
    _, token = reg.create_token("xa-a")
    cfg = EnrolmentConfig(
        listen_port=0, tls_certfile=str(cert[0]), tls_keyfile=str(cert[1]), idle_timeout_s=1.5, workers=3
    )
    server, _ = serve_in_thread(reg, cfg)
    port = server.server_address[1]
    ctx = ssl.create_default_context(cafile=str(cert[0]))
    stalled = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]  # connect, never say hello
    try:
        started = time.monotonic()
        assert post(f"https://127.0.0.1:{port}/v1/enroll", {"token": token, "host": "h"}, ctx) == 200
        assert time.monotonic() - started < 1.0, "the good client waited behind the stalled handshakes"
        stalled[0].settimeout(5)
        assert stalled[0].recv(1) == b""  # dropped by the handshake timeout
        # plain HTTP to the HTTPS port gets no answer, and no enrolment
        with pytest.raises((ConnectionError, urllib.error.URLError, OSError)):
            post(f"http://127.0.0.1:{port}/v1/enroll", {"token": token, "host": "h"})
    finally:
        for s in stalled:
            s.close()
        server.shutdown()
        server.server_close()


def test_connections_beyond_the_bound_are_closed_at_once(tmp_path, cert):
    cfg = EnrolmentConfig(
        listen_port=0, tls_certfile=str(cert[0]), tls_keyfile=str(cert[1]), idle_timeout_s=5, workers=1, max_queued=1
    )
    server, _ = serve_in_thread(Registry(tmp_path / "reg.db"), cfg)
    port = server.server_address[1]
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
    try:
        time.sleep(0.3)
        extra = socket.create_connection(("127.0.0.1", port))
        extra.settimeout(2)
        started = time.monotonic()
        assert extra.recv(1) == b"" and time.monotonic() - started < 1.5
        extra.close()
    finally:
        for s in held:
            s.close()
        server.shutdown()
        server.server_close()


def test_plain_http_on_a_network_address_is_a_config_error():
    with pytest.raises(ConfigError, match="enrolment.tls_certfile"):
        EnrolmentConfig(listen_host="0.0.0.0").validate()
    with pytest.raises(ConfigError, match="set both"):
        EnrolmentConfig(tls_certfile="x.crt").validate()
    EnrolmentConfig(listen_host="0.0.0.0", allow_plain_http=True).validate()
