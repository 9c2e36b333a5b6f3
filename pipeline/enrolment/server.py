"""The enrolment endpoint: `POST /v1/enroll` exchanges an agency's token for an agent identity.

Request  {"token": "...", "host": "...", "agent_version": "..."}
Response 200 {"agency_id", "agent_id", "secret", "kafka": {"bootstrap", "security_protocol",
             "sasl_username", "sasl_password"}}; 403 for an unknown or revoked token; 400 for a
             malformed request. The agency id comes from the token only; a field the agent sends
             claiming one is ignored. Tokens are never logged.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pipeline.coverage.config import EnrolmentConfig
from pipeline.enrolment.registry import EnrolmentError, Registry

log = logging.getLogger("socpipe.enrolment")
MAX_BODY = 16 * 1024


def handle_enroll(registry: Registry, cfg: EnrolmentConfig, body: bytes) -> tuple[int, dict]:
    """Pure-ish request handling (the registry is the only I/O): -> (HTTP status, JSON body)."""
    try:
        req = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return 400, {"error": "body must be JSON"}
    if not isinstance(req, dict):
        return 400, {"error": "body must be a JSON object"}
    token, host, version = req.get("token"), req.get("host"), req.get("agent_version", "")
    if not isinstance(token, str) or not token:
        return 400, {"error": "token: required string"}
    if not isinstance(host, str) or not host.strip() or len(host) > 255:
        return 400, {"error": "host: required string (at most 255 characters)"}
    if not isinstance(version, str):
        return 400, {"error": "agent_version: must be a string"}
    try:
        rec = registry.enroll(token, host.strip(), version)
    except EnrolmentError:
        return 403, {"error": "unknown or revoked enrolment token"}
    log.info(
        "enrolment.enrolled agency=%s agent=%s host=%s version=%s",
        rec.agency_id,
        rec.agent_id,
        rec.host,
        rec.agent_version,
    )
    return 200, {"agency_id": rec.agency_id, "agent_id": rec.agent_id, "secret": rec.secret, "kafka": asdict(cfg.kafka)}


def make_server(registry: Registry, cfg: EnrolmentConfig) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        server_version = "socpipe-enrol"

        def do_POST(self) -> None:  # noqa: N802 (http.server naming)
            if self.path.rstrip("/") != "/v1/enroll":
                return self._send(404, {"error": "not found"})
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if not 0 < length <= MAX_BODY:
                return self._send(400, {"error": f"Content-Length must be 1..{MAX_BODY}"})
            status, body = handle_enroll(registry, cfg, self.rfile.read(length))
            self._send(status, body)

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/healthz":
                return self._send(200, {"ok": True})
            self._send(404, {"error": "not found"})

        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt: str, *args) -> None:  # access log without bodies (tokens, secrets)
            log.debug("enrolment.http client=%s %s", self.client_address[0], fmt % args)

    server = ThreadingHTTPServer((cfg.listen_host, cfg.listen_port), Handler)
    if cfg.tls_certfile and cfg.tls_keyfile:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cfg.tls_certfile, cfg.tls_keyfile)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    return server


def serve_in_thread(registry: Registry, cfg: EnrolmentConfig) -> tuple[ThreadingHTTPServer, threading.Thread]:
    server = make_server(registry, cfg)
    t = threading.Thread(target=server.serve_forever, name="enrolment-http", daemon=True)
    t.start()
    return server, t
