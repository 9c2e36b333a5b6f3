"""A hardened HTTP server for the SOC's own surfaces (triage API and queue).

`http.server.ThreadingHTTPServer` starts one thread per connection, forever, does the TLS handshake
in its accept loop and lets an idle client hold its thread as long as it likes. This one:

- serves from a bounded pool of worker threads; connections beyond the pool and its queue are
  answered 503 (plain HTTP) or closed (TLS) at once, so a flood cannot grow threads or memory;
- does the TLS handshake in the worker, under the socket timeout, never in the accept loop;
- gives every socket operation a timeout (`idle_timeout_s`) and every connection a total deadline
  (`request_deadline_s`), enforced by one watchdog thread: a client dribbling a byte every few
  seconds is cut off too;
- speaks HTTP/1.0 (one request per connection), so no keep-alive connection parks a worker.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer

from collectors.tls import server_context

log = logging.getLogger("socpipe.http")


@dataclass
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8088
    tls_certfile: str = ""  # both set: HTTPS only
    tls_keyfile: str = ""
    workers: int = 16  # requests served at once
    max_queued: int = 64  # accepted connections waiting for a worker; beyond: 503 / closed
    idle_timeout_s: float = 10.0  # per socket operation (handshake, each read, each write)
    request_deadline_s: float = 30.0  # a whole connection, from accept to close

    def validate(self, prefix: str = "") -> None:
        from pipeline.config import ConfigError

        if bool(self.tls_certfile) != bool(self.tls_keyfile):
            raise ConfigError(f"{prefix}tls_certfile and {prefix}tls_keyfile: set both or neither")
        for name in ("workers", "max_queued"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{prefix}{name}: must be at least 1")
        for name in ("idle_timeout_s", "request_deadline_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{prefix}{name}: must be a positive number of seconds")


class PooledHTTPServer(HTTPServer):
    """HTTPServer whose requests run in a bounded pool (see the module docstring)."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        settings: ServeSettings,
        handler: type[BaseHTTPRequestHandler],
        clock: Callable[[], float] = time.monotonic,
    ):
        self.settings = settings
        self.tls = server_context(settings.tls_certfile, settings.tls_keyfile) if settings.tls_certfile else None
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="http-worker")
        self._lock = threading.Lock()
        self._pending = 0  # queued + running
        self._live: dict[int, tuple[socket.socket, float]] = {}
        self._closing = threading.Event()
        self.rejected = 0
        self.timed_out = 0
        handler.timeout = settings.idle_timeout_s
        handler.protocol_version = "HTTP/1.0"
        super().__init__((settings.host, settings.port), handler)
        self._watchdog = threading.Thread(target=self._watch, name="http-deadline", daemon=True)
        self._watchdog.start()

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    # accept loop: never blocks on a client
    # A TCP server's request is always its accepted socket (typeshed's base also allows UDP's (bytes, socket)).
    def process_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:  # type: ignore[override]
        with self._lock:
            full = self._pending >= self.settings.workers + self.settings.max_queued
            if not full:
                self._pending += 1
        if full:
            self.rejected += 1
            log.warning("http.rejected reason=busy client=%s", client_address[0])
            if self.tls is None:
                try:
                    request.settimeout(0.5)
                    request.sendall(
                        b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n"
                        b"Connection: close\r\n\r\n"
                    )
                except OSError:
                    pass
            self.shutdown_request(request)
            return
        try:
            self._pool.submit(self._work, request, client_address)
        except RuntimeError:  # pool shut down: the server is closing
            with self._lock:
                self._pending -= 1
            self.shutdown_request(request)

    def _work(self, request: socket.socket, client_address: tuple[str, int]) -> None:
        key = id(request)
        conn = request
        try:
            request.settimeout(self.settings.idle_timeout_s)
            with self._lock:
                self._live[key] = (request, self._clock() + self.settings.request_deadline_s)
            if self.tls is not None:
                conn = self.tls.wrap_socket(request, server_side=True)  # handshake here, under the timeout
                with self._lock:
                    self._live[key] = (conn, self._live[key][1])
            self.finish_request(conn, client_address)
        except (OSError, ssl.SSLError) as exc:
            log.info("http.connection_dropped client=%s reason=%s", client_address[0], type(exc).__name__)
        except Exception:  # a handler bug must not kill the worker
            self.handle_error(conn, client_address)
        finally:
            with self._lock:
                self._live.pop(key, None)
                self._pending -= 1
            self.shutdown_request(conn)

    def _watch(self) -> None:
        while not self._closing.wait(0.25):
            now = self._clock()
            with self._lock:
                late = [(k, s) for k, (s, deadline) in self._live.items() if now > deadline]
                for k, _ in late:
                    self._live.pop(k, None)
            for _, sock in late:
                self.timed_out += 1
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # unblocks the worker's read or write
                except OSError:
                    pass

    def server_close(self) -> None:
        self._closing.set()
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)
