"""Elasticsearch outage and rejected documents, with a real worker process, Kafka and Elasticsearch.

We cannot stop the shared Elasticsearch, so the worker talks to it through a TCP proxy started here on
a free port; "down" makes the proxy reset every open connection and close new ones at once, which
the client sees as connection errors, as with a dead node. The outage lasts SOCPIPE_TEST_ES_OUTAGE_S
seconds (default 20; the issue's figure is 60) while events keep flowing. Afterwards every expected
alert must be there exactly once and the worker must never have exited.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import urllib.parse

from kafka import KafkaConsumer

from collectors.wire import LineBatch, LogLine
from tests.integration.conftest import es_client, free_port, wait_for
from tests.integration.test_detector_e2e import brute_force_alerts, brute_force_batches, detector_env, produce

OUTAGE_S = float(os.environ.get("SOCPIPE_TEST_ES_OUTAGE_S", "20"))


class FlakyProxy:
    """Forwards 127.0.0.1:<port> to the upstream until `down` is set; then resets connections."""

    def __init__(self, upstream: str):
        u = urllib.parse.urlsplit(upstream)
        self.scheme = u.scheme  # TLS passes through the proxy untouched (the certificate names 127.0.0.1)
        self.upstream = (u.hostname, u.port or 9200)
        self.port = free_port()
        self.down = threading.Event()
        self.refused = 0
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._server.settimeout(0.2)
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def set_down(self) -> None:
        self.down.set()
        with self._lock:
            for c in list(self._conns):
                _close(c)
            self._conns.clear()

    def close(self) -> None:
        self._stop.set()
        self.set_down()
        self._server.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            if self.down.is_set():
                self.refused += 1
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._conns |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while not self.down.is_set():
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _close(src)
            _close(dst)


def _close(s: socket.socket) -> None:
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


def test_es_outage_loses_and_duplicates_nothing(kafka_bootstrap, es_url, unique, procs):
    proxy = FlakyProxy(es_url)
    try:
        env = detector_env(kafka_bootstrap, es_url, unique) | {
            "SOCPIPE_ES_URL": proxy.url,
            "SOCPIPE_RETRY_BACKOFF_MAX_S": "2",
            # shorter than the outage, as 60 s is against the 60 s outage: time blocked on
            # Elasticsearch must not count as idleness that pushes the queued events past their windows
            "SOCPIPE_ALLOWED_LATENESS_S": str(min(60.0, OUTAGE_S * 0.75)),
        }
        prefix = env["SOCPIPE_ES_INDEX_PREFIX"]
        attackers = 90
        batches = brute_force_batches("ward-phu-my", attackers=attackers, tries=6)
        es = es_client(es_url)  # the test itself reads ES directly
        det = procs.start("detector", ["detect", "run", "--config", "config/detector.yaml"], env)

        stop = threading.Event()

        def stream() -> None:  # events keep flowing before, during and after the outage
            n = len(batches)
            per_step = max(1, n // 30)
            for i in range(0, n, per_step):
                if stop.is_set():
                    return
                produce(kafka_bootstrap, env["SOCPIPE_RAW_TOPIC"], batches[i : i + per_step])
                time.sleep((OUTAGE_S + 10) / 30)

        producer = threading.Thread(target=stream, daemon=True)
        producer.start()
        wait_for(
            lambda: det.check_alive() and brute_force_alerts(es, prefix), 60, interval_s=0.2, what="the first alerts"
        )
        proxy.set_down()
        down_at = time.monotonic()
        time.sleep(2)  # a bulk request fully forwarded just before the cut still lands: count after it
        before = len(brute_force_alerts(es, prefix))
        while time.monotonic() - down_at < OUTAGE_S:
            det.check_alive()
            time.sleep(1)
        during = len(brute_force_alerts(es, prefix))
        proxy.down.clear()
        producer.join(OUTAGE_S + 60)

        wait_for(
            lambda: det.check_alive() and len(brute_force_alerts(es, prefix)) >= attackers,
            120,
            what=f"{attackers} alerts after the outage",
        )
        time.sleep(3)  # a duplicate still in flight would show now
        alerts = brute_force_alerts(es, prefix)
        per_address: dict[str, int] = {}
        for a in alerts:
            per_address[a["source"]["ip"]] = per_address.get(a["source"]["ip"], 0) + 1
        assert det.alive(), det.log_tail()
        assert before < attackers, "the outage began after everything was indexed; the test proved nothing"
        assert during == before, "alerts were written while Elasticsearch was unreachable?"
        assert proxy.refused > 0, "the worker never tried Elasticsearch during the outage"
        assert "detector.es_unavailable" in det.log_tail(500_000) and "detector.es_available" in det.log_tail(500_000)
        assert len(per_address) == attackers, f"lost alerts: {attackers - len(per_address)}"
        assert max(per_address.values()) == 1, {ip: n for ip, n in per_address.items() if n > 1}
    finally:
        stop.set() if "stop" in locals() else None
        proxy.close()


def test_mapping_conflict_goes_to_dead_letter_with_reason(kafka_bootstrap, es_url, unique, procs):
    env = detector_env(kafka_bootstrap, es_url, unique)
    prefix = env["SOCPIPE_ES_INDEX_PREFIX"]
    es = es_client(es_url)
    det = procs.start("detector", ["detect", "run", "--config", "config/detector.yaml"], env)
    # the worker installs its templates first; then the alert's daily index is created by hand with
    # `rule.name` as a number, so the scanner alert (a text rule name) must be rejected
    wait_for(
        lambda: det.check_alive() and es.indices.exists_index_template(name=f"{prefix}-alerts"),
        60,
        what="the alert template",
    )
    es.indices.create(
        index=f"{prefix}-alerts-2026.01.15",
        mappings={"properties": {"rule": {"properties": {"name": {"type": "long"}}}}},
    )
    line = LogLine(
        '203.0.113.9 - - [15/Jan/2026:10:00:00 +0000] "GET /.env HTTP/1.1" 404 10 "-" "sqlmap/1.7"',
        offset=0,
        line_no=1,
        seq=1,
        read_at=time.time(),
    )
    produce(
        kafka_bootstrap,
        env["SOCPIPE_RAW_TOPIC"],
        [LineBatch("ward-1", "agent-dl", "web", "/var/log/nginx/access.log", [line], dataset="nginx.access")],
    )
    consumer = KafkaConsumer(
        env["SOCPIPE_DEAD_LETTER_TOPIC"],
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        consumer_timeout_ms=1000,
    )
    got: list = []

    def dead_letters():
        det.check_alive()
        got.extend(consumer)
        return got

    wait_for(dead_letters, 60, what="a dead-lettered alert")
    consumer.close()
    reasons = [dict(r.headers).get("reason", b"").decode() for r in got]
    assert any("elasticsearch rejected alert" in r and "rule.name" in r for r in reasons), reasons
    assert b"sqlmap" in got[0].value
    assert det.alive()
