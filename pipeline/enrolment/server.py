"""The enrolment endpoint: `POST /v1/enroll` exchanges an agency's token for an agent identity.

Request  {"token": "...", "host": "...", "agent_version": "..."}
Response 200 {"agency_id", "agent_id", "secret", "kafka": {"bootstrap", "security_protocol",
             "sasl_mechanism", "sasl_username", "sasl_password", "ssl_ca_pem"}}; 403 for a refused token (unknown, revoked, expired,
             used up, or its agency is not in the inventory: the answer does not say which, the log
             does); 400 for a malformed request; 429 once an address has had `max_failures` refusals
             in `failure_window_s`. The agency id comes from the token only; a field the agent sends
             claiming one is ignored. Tokens and secrets are never logged. 503 when the agent's Kafka principal
             could not be made: the agent is revoked again and the token gets its use back.

With a SASL handout each agent gets its own SCRAM user (its agent id) and write-only ACLs through
`KafkaAccess` (pipeline.enrolment.kafka_access), handed out with the CA that signed the broker's
certificate; there is no shared Kafka password.

Connections are served by `pipeline.httpserve.PooledHTTPServer` (the triage API's server too): a
bounded pool of workers, TLS handshakes in the worker under `idle_timeout_s`, a total deadline per
connection, so a client that stalls holds one bounded slot, never the accept loop.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from pipeline.coverage.config import EnrolmentConfig, KafkaHandout
from pipeline.enrolment.kafka_access import KafkaAccess, KafkaAccessError
from pipeline.enrolment.registry import EnrolmentError, Registry
from pipeline.httpserve import PooledHTTPServer

log = logging.getLogger("socpipe.enrolment")
MAX_BODY = 16 * 1024


class FailureLimiter:
    """Refused attempts per client address in a sliding window (pure; the clock is passed in). Memory is
    bounded: at most `max_addresses` addresses, the least recently failing forgotten first."""

    def __init__(self, max_failures: int, window_s: float, max_addresses: int = 100_000):
        self.max_failures, self.window_s, self.max_addresses = max_failures, window_s, max_addresses
        self._failures: OrderedDict[str, list[float]] = OrderedDict()

    def blocked(self, address: str, now: float) -> bool:
        times = self._failures.get(address)
        if not times:
            return False
        times[:] = [t for t in times if now - t < self.window_s]
        return len(times) >= self.max_failures

    def failed(self, address: str, now: float) -> None:
        times = self._failures.pop(address, [])
        times.append(now)
        self._failures[address] = times[-self.max_failures :]
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)


def kafka_handout(h: KafkaHandout) -> dict[str, str]:
    """What every agent is told about the broker (its own user and password are added per agent).
    Raises OSError when the CA file cannot be read (checked when the server starts)."""
    out = {"bootstrap": h.bootstrap, "security_protocol": h.security_protocol}
    if h.per_agent_credentials:
        out["sasl_mechanism"] = h.sasl_mechanism
    if "SSL" in h.security_protocol and h.ca_file:
        with open(h.ca_file) as f:
            out["ssl_ca_pem"] = f.read()
    return out


def handle_enroll(
    registry: Registry,
    cfg: EnrolmentConfig,
    body: bytes,
    agency_allowed: Callable[[str], bool] = lambda _agency_id: True,
    client: str = "-",
    access: KafkaAccess | None = None,
) -> tuple[int, dict[str, Any]]:
    """Request handling (the registry and, with a SASL handout, the broker are the only I/O): -> (HTTP
    status, JSON body). Every refusal is logged with the client address and the reason (never the token)."""

    def refuse(status: int, error: str, reason: str, token_id: str | None = None) -> tuple[int, dict[str, Any]]:
        log.warning(
            "enrolment.refused client=%s status=%d reason=%s token_id=%s", client, status, reason, token_id or "-"
        )
        return status, {"error": error}

    try:
        req = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return refuse(400, "body must be JSON", "malformed")
    if not isinstance(req, dict):
        return refuse(400, "body must be a JSON object", "malformed")
    token, host, version = req.get("token"), req.get("host"), req.get("agent_version", "")
    if not isinstance(token, str) or not token or len(token) > 256:
        return refuse(400, "token: required string", "malformed")
    if not isinstance(host, str) or not host.strip() or len(host) > 255:
        return refuse(400, "host: required string (at most 255 characters)", "malformed")
    if not isinstance(version, str):
        return refuse(400, "agent_version: must be a string", "malformed")
    try:
        rec = registry.enroll(token, host.strip(), version, agency_allowed=agency_allowed)
    except EnrolmentError as exc:
        return refuse(403, "enrolment token refused (unknown, expired, used up or revoked)", exc.reason, exc.token_id)
    kafka = kafka_handout(cfg.kafka)
    if cfg.kafka.per_agent_credentials:
        try:
            if access is None:
                raise KafkaAccessError("no Kafka admin access configured")
            kafka["sasl_username"], kafka["sasl_password"] = rec.agent_id, access.grant(rec.agent_id)
        except KafkaAccessError as exc:
            registry.undo_enrolment(rec.agent_id)
            log.error(
                "enrolment.kafka_failed client=%s agency=%s agent=%s error=%s", client, rec.agency_id, rec.agent_id, exc
            )
            return 503, {
                "error": "the SOC cannot issue Kafka credentials now; try again later (the token was not used)"
            }
    log.info(
        "enrolment.enrolled client=%s agency=%s agent=%s host=%.255r version=%.64r",
        client,
        rec.agency_id,
        rec.agent_id,
        rec.host,
        rec.agent_version,
    )
    return 200, {"agency_id": rec.agency_id, "agent_id": rec.agent_id, "secret": rec.secret, "kafka": kafka}


def make_server(
    registry: Registry,
    cfg: EnrolmentConfig,
    agency_allowed: Callable[[str], bool] | None = None,
    access: KafkaAccess | None = None,
) -> PooledHTTPServer:
    cfg.validate()
    kafka_handout(cfg.kafka)  # an unreadable CA file is a start-up error, not a failed enrolment
    limiter = FailureLimiter(cfg.max_failures, cfg.failure_window_s)
    limiter_lock = threading.Lock()
    allowed = agency_allowed or (lambda _agency_id: True)

    class Handler(BaseHTTPRequestHandler):
        server_version = "socpipe-enrol"
        sys_version = ""

        def do_POST(self) -> None:  # noqa: N802 (http.server naming)
            if self.path.rstrip("/") != "/v1/enroll":
                return self._send(404, {"error": "not found"})
            client = self.client_address[0]
            with limiter_lock:
                blocked = limiter.blocked(client, time.monotonic())
            if blocked:
                log.warning("enrolment.refused client=%s status=429 reason=rate_limited", client)
                return self._send(429, {"error": "too many refused enrolments from this address; try later"})
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if not 0 < length <= MAX_BODY:
                return self._send(400, {"error": f"Content-Length must be 1..{MAX_BODY}"})
            data = self.rfile.read(length)
            if len(data) < length:
                return  # the client went away (or timed out) mid-body
            status, body = handle_enroll(registry, cfg, data, allowed, client, access)
            if status == 403:
                with limiter_lock:
                    limiter.failed(client, time.monotonic())
            self._send(status, body)

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/healthz":
                return self._send(200, {"ok": True})
            self._send(404, {"error": "not found"})

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt: str, *args: Any) -> None:  # access log without bodies (tokens, secrets)
            log.debug("enrolment.http client=%s %s", self.client_address[0], fmt % args)

    return PooledHTTPServer(cfg.serve_settings(), Handler)


def serve_in_thread(
    registry: Registry,
    cfg: EnrolmentConfig,
    agency_allowed: Callable[[str], bool] | None = None,
    access: KafkaAccess | None = None,
) -> tuple[PooledHTTPServer, threading.Thread]:
    server = make_server(registry, cfg, agency_allowed, access)
    t = threading.Thread(target=server.serve_forever, name="enrolment-http", daemon=True)
    t.start()
    return server, t
