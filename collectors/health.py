"""Loud failures: the state of every input and of the Kafka connection, logged once per change.

An input is `ok` or says why not: missing, permission denied, rotated away before it was read,
listener bind failed, refused (a symlink, or the agent's own state), error. The state goes three
ways: the agent log (one line per change, never one per poll), `<state_dir>/status.json` (read by
`socpipe-agent status`) and the heartbeat (so the SOC's coverage shows "degraded: /var/log/auth.log
permission denied"). Kafka client chatter during an outage becomes one rate-limited line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("socpipe.agent.health")

OK = "ok"
MISSING = "missing"
PERMISSION_DENIED = "permission_denied"
ROTATED_AWAY = "rotated_away"
BIND_FAILED = "bind_failed"
REFUSED = "refused"
ERROR = "error"
INPUT_STATES = (OK, MISSING, PERMISSION_DENIED, ROTATED_AWAY, BIND_FAILED, REFUSED, ERROR)

# What the SOC reads after the source name: "/var/log/auth.log permission denied".
LABELS = {
    OK: "ok",
    MISSING: "missing",
    PERMISSION_DENIED: "permission denied",
    ROTATED_AWAY: "rotated away before it was read",
    BIND_FAILED: "listener bind failed",
    REFUSED: "refused",
    ERROR: "error",
}

KAFKA_CONNECTING = "connecting"
KAFKA_CONNECTED = "connected"
KAFKA_UNREACHABLE = "unreachable"
KAFKA_AUTH_FAILED = "auth_failed"  # the broker rejected the SASL login (wrong password, revoked agent)
KAFKA_NOT_AUTHORIZED = "not_authorized"  # logged in, but the ACLs do not allow the write
KAFKA_TLS_FAILED = "tls_failed"  # the broker's certificate is not trusted, or the handshake failed
KAFKA_LABELS = {
    KAFKA_CONNECTING: "connecting",
    KAFKA_CONNECTED: "connected",
    KAFKA_UNREACHABLE: "unreachable",
    KAFKA_AUTH_FAILED: "credentials refused",
    KAFKA_NOT_AUTHORIZED: "not authorized",
    KAFKA_TLS_FAILED: "TLS failed",
}


@dataclass(slots=True)
class InputState:
    state: str = OK
    detail: str = ""  # the specific cause and what to do, e.g. "user socpipe-agent may not read it"
    since: float = 0.0

    @property
    def reason(self) -> str:
        """Short, for heartbeats and coverage: "permission denied", "missing: no such file"."""
        if self.state == OK:
            return ""
        return LABELS[self.state] + (f": {self.detail}" if self.detail else "")


class Health:
    """Current state per input and of the Kafka connection. Written by the agent's threads, read by
    the heartbeat and status writers; every change is logged exactly once."""

    def __init__(self) -> None:
        self.inputs: dict[str, InputState] = {}
        self.kafka_state = KAFKA_CONNECTING
        self.kafka_error = ""
        self.kafka_since = time.time()
        self._lock = threading.Lock()

    def set_input(self, name: str, state: str, detail: str = "", now: float | None = None) -> bool:
        """Record an input's state; True (and one log line) when it changed."""
        now = time.time() if now is None else now
        with self._lock:
            cur = self.inputs.get(name)
            if cur is not None and cur.state == state and cur.detail == detail:
                return False
            first = cur is None
            self.inputs[name] = InputState(state, detail, now)
        if state == OK:
            if not first:
                log.info("input.ok source=%s (was %s)", name, cur.state if cur else "")
        else:
            log.warning("input.%s source=%s %s", state, name, detail)
        return True

    def forget(self, name: str) -> None:
        with self._lock:
            self.inputs.pop(name, None)

    def input(self, name: str) -> InputState:
        return self.inputs.get(name) or InputState()

    def problems(self) -> dict[str, str]:
        return {n: s.reason for n, s in list(self.inputs.items()) if s.state != OK}

    def set_kafka(self, state: str, error: str = "", bootstrap: str = "") -> None:
        with self._lock:
            if state == self.kafka_state and (state == KAFKA_CONNECTED or error == self.kafka_error):
                return
            self.kafka_state, self.kafka_error, self.kafka_since = state, error, time.time()
        if state == KAFKA_CONNECTED:
            log.info("kafka.connected bootstrap=%s", bootstrap)
        elif state != KAFKA_CONNECTING:  # unreachable, auth_failed, not_authorized, tls_failed
            log.warning(
                "kafka.%s bootstrap=%s error=%s (spooling to disk and retrying; logged again only when this changes)",
                state,
                bootstrap,
                error,
            )

    @property
    def kafka_reason(self) -> str:
        """For heartbeats and coverage: "" while connected, else "credentials refused: Kafka refused ..."."""
        if self.kafka_state in (KAFKA_CONNECTED, KAFKA_CONNECTING):
            return ""
        return f"{KAFKA_LABELS.get(self.kafka_state, self.kafka_state)}: {self.kafka_error}"


class RateLimitFilter(logging.Filter):
    """Lets one record through per `interval_s`; the next one that passes says how many were held
    back. On the `kafka` logger: an unreachable broker makes kafka-python log several lines a second."""

    def __init__(self, interval_s: float = 60.0, clock: Callable[[], float] = time.monotonic, prefix: str = "kafka"):
        super().__init__()
        self.prefix = prefix
        self.interval_s = interval_s
        self.clock = clock
        self._next = 0.0
        self._suppressed = 0
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefix):
            return True
        now = self.clock()
        with self._lock:
            if now < self._next:
                self._suppressed += 1
                return False
            self._next = now + self.interval_s
            held, self._suppressed = self._suppressed, 0
        msg = record.getMessage()
        record.msg = f"kafka.client {msg[:300]}" + (
            f" ({held} similar kafka client messages suppressed in the last {self.interval_s:.0f} s)" if held else ""
        )
        record.args = ()
        return True


def quiet_kafka_client(interval_s: float = 60.0) -> RateLimitFilter:
    """Route kafka-python's own logging (warnings and errors only) through one rate limit, on the
    root handlers: filters on the `kafka` logger itself would not see its children's records."""
    logging.getLogger("kafka").setLevel(logging.WARNING)
    root = logging.getLogger()
    flt = next((f for h in root.handlers for f in h.filters if isinstance(f, RateLimitFilter)), None)
    flt = flt or RateLimitFilter(interval_s)
    for h in root.handlers:
        if flt not in h.filters:
            h.addFilter(flt)
    return flt
