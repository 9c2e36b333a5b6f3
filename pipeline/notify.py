"""Optional notifications for critical alerts (webhook or Telegram-style bot), rate limited, off by default.

Deciding (severity threshold, rate limits, message text) is pure; sending is one narrow function.
A notification failing or being rate limited never affects indexing: alerts are in Elasticsearch
regardless, notifications only page someone. The worker sends through `NotificationQueue` (bounded,
own thread), so a slow target never holds up the alert write path. This lives in `pipeline/` (the I/O
side): `detectors/` makes no network call.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from collectors.lazy import LazyLogger
from detectors.common.severity import SEVERITY

log = LazyLogger("socpipe.notify")  # logging imported at the first message (scan imports this module for its config)


@dataclass
class NotifyConfig:
    enabled: bool = False
    min_level: str = "critical"  # Sigma level at or above which alerts notify
    webhook_url: str = ""  # JSON POST of the alert summary
    telegram_url: str = ""  # e.g. https://api.telegram.org/bot<TOKEN>/sendMessage
    telegram_chat_id: str = ""
    max_per_minute: int = 10  # all notifications together
    max_per_rule_per_hour: int = 3  # a noisy rule cannot flood the channel
    timeout_s: float = 5.0
    max_pending: int = 1000  # batches of alerts waiting for the sender thread; more are dropped (counted)


@dataclass
class RateLimiter:
    """Sliding windows: global per minute and per rule per hour (pure; clock injected)."""

    per_minute: int
    per_rule_per_hour: int
    clock: Callable[[], float] = time.monotonic
    _all: deque[float] = field(default_factory=deque)
    _rules: dict[str, deque[float]] = field(default_factory=dict)
    suppressed: int = 0

    def allow(self, rule_id: str) -> bool:
        now = self.clock()
        while self._all and now - self._all[0] >= 60:
            self._all.popleft()
        rule = self._rules.setdefault(rule_id, deque())
        while rule and now - rule[0] >= 3600:
            rule.popleft()
        if len(self._all) >= self.per_minute or len(rule) >= self.per_rule_per_hour:
            self.suppressed += 1
            return False
        self._all.append(now)
        rule.append(now)
        return True


def should_notify(alert: dict[str, Any], min_level: str) -> bool:
    level = alert.get("socpipe", {}).get("level", "medium")
    return SEVERITY.get(level, 0) >= SEVERITY.get(min_level, 99)


def message(alert: dict[str, Any]) -> str:
    """Short human text: what, where, who, when, and the id to triage."""
    s = alert
    parts = [
        f"[{s.get('socpipe', {}).get('level', '?').upper()}] {s.get('rule', {}).get('name', '?')}",
        f"agency: {s.get('socpipe', {}).get('agency', {}).get('name') or s.get('organization', {}).get('id', '-')}",
    ]
    for label, value in (
        ("host", s.get("host", {}).get("name")),
        ("source", s.get("source", {}).get("ip")),
        ("user", s.get("user", {}).get("name")),
    ):
        if value:
            parts.append(f"{label}: {value}")
    parts.append(f"time: {s.get('@timestamp')}  events: {s.get('socpipe', {}).get('detection', {}).get('count', '?')}")
    parts.append(f"alert id: {s.get('_id') or s.get('event', {}).get('id')}")
    return "\n".join(parts)


def _post(url: str, payload: dict[str, Any], timeout_s: float) -> None:
    import urllib.request  # here, not at the top: every detector config import (socpipe scan too) would pay ~20 ms

    req = urllib.request.Request(
        url,
        data=json.dumps(payload, ensure_ascii=False).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:
        resp.read()


class Notifier:
    def __init__(
        self,
        cfg: NotifyConfig,
        send: Callable[[str, dict[str, Any], float], None] = _post,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.cfg = cfg
        self.limiter = RateLimiter(cfg.max_per_minute, cfg.max_per_rule_per_hour, clock)
        self._send = send
        self.sent = 0
        self.failed = 0

    def offer(self, alerts: list[dict[str, Any]]) -> int:
        """Notify about the alerts that qualify; returns how many were sent. Never raises."""
        if not self.cfg.enabled:
            return 0
        sent = 0
        for alert in alerts:
            if not should_notify(alert, self.cfg.min_level):
                continue
            if not self.limiter.allow(str(alert.get("rule", {}).get("id", ""))):
                log.info("notify rate_limited rule=%s alert=%s", alert.get("rule", {}).get("id"), alert.get("_id"))
                continue
            text = message(alert)
            targets = []
            if self.cfg.webhook_url:
                targets.append(
                    (
                        self.cfg.webhook_url,
                        {
                            "text": text,
                            "alert_id": alert.get("_id"),
                            "rule": alert.get("rule", {}).get("name"),
                            "level": alert.get("socpipe", {}).get("level"),
                            "agency": alert.get("organization", {}).get("id"),
                        },
                    )
                )
            if self.cfg.telegram_url and self.cfg.telegram_chat_id:
                targets.append((self.cfg.telegram_url, {"chat_id": self.cfg.telegram_chat_id, "text": text}))
            for url, payload in targets:
                try:
                    self._send(url, payload, self.cfg.timeout_s)
                    self.sent += 1
                    sent += 1
                except (OSError, ValueError) as exc:  # urllib's URLError is an OSError
                    self.failed += 1
                    log.warning("notify failed target=%s error=%s", url.split("/bot")[0], exc)
        return sent


class NotificationQueue:
    """Notifications off the alert write path: a bounded queue drained by one daemon thread.

    `offer` never blocks and never raises: when the queue is full (targets slow or down) the alerts
    are dropped from notification (they are indexed regardless) and counted in `dropped`.
    """

    def __init__(self, notifier: Notifier, max_pending: int = 1000, on_drop: Callable[[int], None] | None = None):
        self.notifier = notifier
        self.dropped = 0
        self._on_drop = on_drop
        self._queue: queue.Queue[list[dict[str, Any]] | None] = queue.Queue(maxsize=max_pending)
        self._thread = threading.Thread(target=self._run, name="socpipe-notify", daemon=True)
        self._thread.start()

    def offer(self, alerts: list[dict[str, Any]]) -> None:
        if not alerts:
            return
        try:
            self._queue.put_nowait(alerts)
        except queue.Full:
            self.dropped += len(alerts)
            if self._on_drop is not None:
                self._on_drop(len(alerts))
            log.warning("notify queue_full dropped=%d total_dropped=%d", len(alerts), self.dropped)

    def close(self, timeout_s: float = 5.0) -> None:
        """Send what is queued (up to `timeout_s`), then stop the thread."""
        try:
            self._queue.put(None, timeout=timeout_s)
        except queue.Full:
            return
        self._thread.join(timeout_s)

    def join(self) -> None:
        """Wait until everything offered so far was handled (tests)."""
        self._queue.join()

    def _run(self) -> None:
        while True:
            alerts = self._queue.get()
            try:
                if alerts is None:
                    return
                self.notifier.offer(alerts)
            except Exception:  # a notification bug must not kill the thread
                log.exception("notify failed_unexpectedly")
            finally:
                self._queue.task_done()
