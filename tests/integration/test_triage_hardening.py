"""The triage server under hostile or careless clients, over real sockets and the real Elasticsearch
API: TLS, idle and dribbling connections, a flood beyond the worker pool, tokens revoked while it
runs, bad query values, and the CLI's table, id prefixes and version format."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner

from detectors.alerts import build_alert
from pipeline.cli import main
from pipeline.elastic import AlertIndexer
from pipeline.elastic.triage import TriageService
from pipeline.httpserve import ServeSettings
from pipeline.triage.app import TriageApi
from pipeline.triage.auth import ReloadingTokenStore, add_analyst, revoke_analyst
from pipeline.triage.server import make_server
from tests.integration.alerts_support import detection, es_env  # noqa: F401  (fixture)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert)]
        + ["-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


@pytest.fixture
def indexed(es_env):  # noqa: F811
    cfg, es = es_env
    docs = [build_alert(detection(user, 1795000000.0 + i, ip=f"203.0.113.{i + 1}")) for i, user in enumerate("abc")]
    assert len(AlertIndexer(es, prefix=cfg.index_prefix, refresh="wait_for").index(docs).created) == 3
    return cfg, es, [d["_id"] for d in docs]


def _serve(indexed, tmp_path, **settings):
    cfg, es, ids = indexed
    tokens_file = tmp_path / "tokens.yml"
    token = add_analyst(tokens_file, "an", "analyst")
    store = ReloadingTokenStore(tokens_file, check_every_s=0.2)
    server = make_server(
        TriageApi(TriageService(es, prefix=cfg.index_prefix), store),
        settings=ServeSettings(host="127.0.0.1", port=0, **settings),
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread, tokens_file, token, ids


def _stop(server, thread):
    server.shutdown()
    server.server_close()
    thread.join(5)


def _get(url, token=None, context=None, timeout=10):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            return resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as err:
        return err.code, err.read(), err.headers


def test_tls_only_and_the_handshake_is_not_in_the_accept_loop(indexed, tmp_path, tls_files):
    cert, key = tls_files
    server, thread, _, token, ids = _serve(indexed, tmp_path, tls_certfile=cert, tls_keyfile=key, idle_timeout_s=1.0)
    port = server.server_address[1]
    try:
        ctx = ssl.create_default_context(cafile=cert)
        # a client that connects and never starts the handshake must not block anyone
        stuck = socket.create_connection(("127.0.0.1", port))
        status, body, headers = _get(f"https://127.0.0.1:{port}/api/alerts/{ids[0]}", token, ctx, timeout=3)
        assert status == 200 and json.loads(body)["id"] == ids[0]
        assert headers["Strict-Transport-Security"]
        # plain HTTP to the TLS port gets no answer in clear
        with socket.create_connection(("127.0.0.1", port), timeout=3) as plain:
            plain.sendall(b"GET /api/alerts HTTP/1.0\r\nAuthorization: Bearer " + token.encode() + b"\r\n\r\n")
            try:
                reply = plain.recv(4096)
            except ConnectionResetError:
                reply = b""
        assert b"alerts" not in reply and not reply.startswith(b"HTTP/1.")
        # the silent client is cut off after the idle timeout
        stuck.settimeout(5)
        t0 = time.monotonic()
        assert stuck.recv(1) == b"" and time.monotonic() - t0 < 3
        stuck.close()
    finally:
        _stop(server, thread)


def test_idle_and_dribbling_clients_and_a_flood_beyond_the_pool(indexed, tmp_path):
    server, thread, _, token, ids = _serve(
        indexed, tmp_path, workers=2, max_queued=1, idle_timeout_s=1.5, request_deadline_s=3.0
    )
    base = f"http://127.0.0.1:{server.server_address[1]}"
    threads_before = threading.active_count()
    try:
        idle = [socket.create_connection(server.server_address) for _ in range(3)]  # fills pool + queue
        time.sleep(0.3)
        status, _, headers = _get(f"{base}/api/alerts", token, timeout=3)
        assert status == 503 and headers["Retry-After"] == "1"  # answered at once, no new thread
        assert server.rejected >= 1
        assert threading.active_count() <= threads_before + 2  # the pool's 2 workers, nothing per connection
        for s in idle:  # idle connections are closed by the server after idle_timeout_s
            s.settimeout(5)
            assert s.recv(1) == b""
            s.close()
        assert _get(f"{base}/api/alerts", token)[0] == 200  # service is back
        # a client dribbling one header byte every second never idles out but hits the deadline
        drip = socket.create_connection(server.server_address)
        t0 = time.monotonic()
        closed = False
        for byte in b"GET /api/alerts HTTP/1.0\r\nX-Slow: " + b"a" * 20:
            try:
                drip.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            drip.settimeout(1.0)
            try:
                if drip.recv(1) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
        assert closed and 2.5 <= time.monotonic() - t0 < 6 and server.timed_out >= 1
        drip.close()
    finally:
        _stop(server, thread)


def test_tokens_revoked_and_added_while_serving(indexed, tmp_path):
    server, thread, tokens_file, token, _ = _serve(indexed, tmp_path)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert _get(f"{base}/api/alerts", token)[0] == 200
        new = add_analyst(tokens_file, "binh", "lead")
        assert revoke_analyst(tokens_file, "an")
        deadline = time.monotonic() + 5
        while _get(f"{base}/api/alerts", token)[0] != 401:
            assert time.monotonic() < deadline, "revoked token still accepted"
            time.sleep(0.1)
        assert _get(f"{base}/api/alerts", new)[0] == 200
    finally:
        _stop(server, thread)


BAD = [
    "since=99999999999999d",
    "until=9999-12-31T23:59:59-14:00",
    "since=0000-00-00",
    "status=bogus",
    "severity=high,urgent",
    "limit=0",
    "limit=99999999999999999999",
    "sevrity=high",
    "rule=%ff",
    "agency=" + "x" * 400,
]
ODD_BUT_VALID = ["rule=%22%7D%7D%5D", "rule=*", "agency=%3Cscript%3E", "assignee=%5C%5C", "since=1s"]


def test_bad_query_values_answer_4xx_against_real_elasticsearch(indexed, tmp_path):
    server, thread, _, token, ids = _serve(indexed, tmp_path)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        for q in BAD:
            status, body, _ = _get(f"{base}/api/alerts?{q}", token)
            assert 400 <= status < 500, (q, status, body)
        for q in ODD_BUT_VALID:
            status, body, _ = _get(f"{base}/api/alerts?{q}", token)
            assert status == 200 and json.loads(body)["alerts"] == [], (q, status, body)
        for path in (f"/api/alerts/{'f' * 5000}", "/api/alerts/%ff", f"/api/alerts/{ids[0][:3]}"):
            assert 400 <= _get(base + path, token)[0] < 500, path
        status, body, _ = _get(f"{base}/api/alerts/{ids[0][:10]}", token)  # a unique prefix
        assert status == 200 and json.loads(body)["id"] == ids[0]
    finally:
        _stop(server, thread)


def test_alerts_cli_table_prefixes_versions_and_hostile_text(indexed, monkeypatch):
    cfg, es, ids = indexed
    hostile = build_alert(detection("evil\x1b]0;pwned\x07\x1b[2J", 1795000100.0, ip="198.51.100.66"))
    AlertIndexer(es, prefix=cfg.index_prefix, refresh="wait_for").index([hostile])
    monkeypatch.setenv("SOCPIPE_ES_URL", cfg.url)
    runner = CliRunner()
    args = ["--prefix", cfg.index_prefix]
    out = runner.invoke(main, ["alerts", "list", *args])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].split()[:3] == ["TIME", "(UTC)", "SEVERITY"] and "VERSION" in lines[0] and len(lines) == 5
    assert "\x1b" not in out.output and "evil\\x1b]" in out.output
    row = next(ln for ln in lines if ids[1][:12] in ln)
    version = row.split()[-2]
    assert version.count(":") == 1 and version[0].isdigit()  # printed exactly as --if-version takes it
    out = runner.invoke(main, ["alerts", "ack", ids[1][:8], *args, "--as", "an", "--if-version", version])
    assert out.exit_code == 0, out.output
    out = runner.invoke(main, ["alerts", "ack", ids[1][:8], *args, "--as", "an", "--if-version", version])
    assert out.exit_code != 0  # stale version now
    out = runner.invoke(main, ["alerts", "show", ids[2][:12], *args])
    assert out.exit_code == 0 and json.loads(out.output)["_id"] == ids[2]
    out = runner.invoke(main, ["alerts", "list", *args, "--agency", "nowhere"])
    assert out.exit_code == 0 and out.output.strip() == "no alerts match --agency nowhere"
