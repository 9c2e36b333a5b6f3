"""Notifications: off by default, severity threshold, rate limits, a real local webhook receiver."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from detectors.alerts import build_alert
from detectors.sigma.detection import make_detection
from detectors.sigma.model import RuleMeta
from pipeline.notify import Notifier, NotifyConfig, RateLimiter


def alert(level="critical", rule="r1", i=0):
    meta = RuleMeta(id=rule, title=f"Rule {rule}", level=level)
    ev = [{"@timestamp": "2026-11-28T01:02:03.123Z", "host.name": "db01", "organization.id": "so-tc"}]
    return build_alert(
        make_detection(meta, "single", {}, [1795000000.0 + i], ev, 1, 1795000000.0 + i, identity=i),
        now="2026-11-28T01:02:04.000Z",
    )


def test_off_by_default_and_threshold():
    calls = []
    assert Notifier(NotifyConfig(webhook_url="http://x"), send=lambda *a: calls.append(a)).offer([alert()]) == 0
    n = Notifier(NotifyConfig(enabled=True, webhook_url="http://x"), send=lambda *a: calls.append(a))
    assert n.offer([alert("high"), alert("critical")]) == 1
    assert "[CRITICAL] Rule r1" in calls[0][1]["text"] and "host: db01" in calls[0][1]["text"]


def test_rate_limits_per_rule_and_overall():
    t = [0.0]
    lim = RateLimiter(per_minute=5, per_rule_per_hour=2, clock=lambda: t[0])
    assert [lim.allow("a") for _ in range(3)] == [True, True, False]
    assert [lim.allow(r) for r in "bbcc"] == [True, True, True, False]  # 5 per minute reached
    t[0] = 61.0
    assert lim.allow("d") and not lim.allow("a")  # a's hourly budget still spent
    t[0] = 3601.0
    assert lim.allow("a") and lim.suppressed == 3


def test_failures_are_counted_not_raised():
    def boom(*a):
        raise OSError("refused")

    n = Notifier(NotifyConfig(enabled=True, webhook_url="http://127.0.0.1:9/x"), send=boom)
    assert n.offer([alert()]) == 0 and n.failed == 1


def test_webhook_and_telegram_style_over_http():
    got = []

    class H(BaseHTTPRequestHandler):
        def do_POST(self):
            got.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        n = Notifier(
            NotifyConfig(
                enabled=True,
                webhook_url=f"{base}/hook",
                telegram_url=f"{base}/botT/sendMessage",
                telegram_chat_id="-100",
            )
        )
        a = alert()
        assert n.offer([a]) == 2
    finally:
        srv.shutdown()
        srv.server_close()
    paths = dict(got)
    assert paths["/hook"]["alert_id"] == a["_id"] and paths["/hook"]["level"] == "critical"
    assert paths["/botT/sendMessage"]["chat_id"] == "-100" and a["_id"] in paths["/botT/sendMessage"]["text"]
