"""The HTTP(S) server around `TriageApi`: bounded worker pool, TLS, timeouts (pipeline.httpserve)."""

from __future__ import annotations

import logging
from http.server import BaseHTTPRequestHandler
from typing import Any

from pipeline.httpserve import PooledHTTPServer, ServeSettings
from pipeline.triage.app import MAX_BODY, TriageApi

log = logging.getLogger("socpipe.triage_api")


def make_server(
    api: TriageApi, host: str = "127.0.0.1", port: int = 8088, settings: ServeSettings | None = None
) -> PooledHTTPServer:
    """`settings` (TLS, pool, timeouts) wins over host/port when given."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "socpipe-triage"
        sys_version = ""

        def _serve(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY:
                self.send_error(413 if length > 0 else 400)
                return
            body = self.rfile.read(length) if length else b""
            if len(body) < length:
                return  # the client went away (or timed out) mid-body
            resp = api.handle(self.command, self.path, dict(self.headers.items()), body)
            self.send_response(resp.status)
            for k, v in resp.headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(resp.body)))
            self.send_header("Cache-Control", "no-store")
            if isinstance(self.server, PooledHTTPServer) and self.server.tls is not None:
                self.send_header("Strict-Transport-Security", "max-age=31536000")
            self.end_headers()
            self.wfile.write(resp.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        def log_message(self, fmt: str, *args: Any) -> None:  # structured, and never the form body (tokens)
            log.info("triage_api request=%r client=%s", self.requestline[:300], self.client_address[0])

    if settings is None:
        settings = ServeSettings(host=host, port=port)
    return PooledHTTPServer(settings, Handler)
