"""Network and journald inputs: syslog over UDP and TCP (RFC 6587 framing, optional TLS), journald.

Each input runs in its own thread and hands messages to a bounded queue the agent drains. When the
spool is full the agent stops draining: TCP senders then block (backpressure), UDP datagrams that do
not fit are dropped and counted (UDP offers nothing better), journalctl is simply not read further.
"""

from __future__ import annotations

import errno
import json
import logging
import queue
import re
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from collectors.config import JournaldInputConfig, SyslogInputConfig
from collectors.health import BIND_FAILED, ERROR, OK
from collectors.lines import FLAG_INVALID_UTF8, FLAG_TRUNCATED, decode
from collectors.tls import server_context

log = logging.getLogger("socpipe.agent.listeners")


@dataclass(slots=True)
class Message:
    text: str
    read_at: float
    flags: tuple[str, ...] = ()
    cursor: str = ""  # journald only: where to resume after this message


class Outbox(Protocol):
    """Where an input puts its messages: a `queue.Queue[Message]`, or the agent's per-input tagger."""

    def put(self, item: Message, block: bool = True, timeout: float | None = None) -> None: ...
    def put_nowait(self, item: Message) -> None: ...


def to_message(raw: bytes, max_bytes: int, now: float) -> Message | None:
    raw = raw.rstrip(b"\r\n\x00")
    if not raw:
        return None
    truncated = len(raw) > max_bytes
    if truncated:
        raw = raw[:max_bytes]
    text, bad = decode(raw)
    flags = tuple(f for f, on in ((FLAG_TRUNCATED, truncated), (FLAG_INVALID_UTF8, bad)) if on)
    return Message(text, now, flags)


def put_until_stopped(out: Outbox, msg: Message, stop: threading.Event) -> None:
    """Hand `msg` to the agent, waiting while its queue is full, until it is taken or `stop` is set."""
    while not stop.is_set():
        try:
            out.put(msg, timeout=0.5)
            return
        except queue.Full:
            continue


class StreamFramer:
    """Splits a syslog TCP stream into messages (pure). RFC 6587: a message starting with a digit is
    octet-counted ("LEN SP MSG"), otherwise it ends at LF. Over-long messages are cut to max_bytes."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._buf = b""
        self._skip = 0  # bytes of an over-long octet-counted message still to discard

    def feed(self, data: bytes) -> list[tuple[bytes, bool]]:
        out: list[tuple[bytes, bool]] = []
        buf = self._buf + data
        pos = 0
        n = len(buf)
        while pos < n:
            if self._skip:
                take = min(self._skip, n - pos)
                self._skip -= take
                pos += take
                continue
            c = buf[pos]
            if 0x31 <= c <= 0x39:  # octet counting: no leading zero
                sp = buf.find(b" ", pos, pos + 12)
                if sp < 0:
                    if n - pos >= 12:  # digits without a space: not octet counting after all
                        pos = self._newline(buf, pos, out)
                        if pos < 0:
                            break
                        continue
                    break
                digits = buf[pos:sp]
                if not digits.isdigit():
                    pos = self._newline(buf, pos, out)
                    if pos < 0:
                        break
                    continue
                length = int(digits)
                start = sp + 1
                if length > self.max_bytes:
                    if n - start >= self.max_bytes:
                        out.append((buf[start : start + self.max_bytes], True))
                        self._skip = length - self.max_bytes
                        pos = start + self.max_bytes
                        continue
                    break
                if n - start < length:
                    break
                out.append((buf[start : start + length], False))
                pos = start + length
            elif c in (0x0A, 0x00, 0x0D, 0x20):  # stray separators between messages
                pos += 1
            else:
                new = self._newline(buf, pos, out)
                if new < 0:
                    break
                pos = new
        rest = buf[pos:]
        if len(rest) > self.max_bytes and self._skip == 0 and rest.find(b"\n") < 0 and not rest[:1].isdigit():
            out.append((rest[: self.max_bytes], True))  # an endless line: cut it, drop until the newline
            rest = b""
        self._buf = rest
        return out

    def _newline(self, buf: bytes, pos: int, out: list[Any]) -> int:
        nl = buf.find(b"\n", pos)
        if nl < 0:
            return -1
        msg = buf[pos:nl]
        out.append((msg[: self.max_bytes], len(msg) > self.max_bytes))
        return nl + 1


def listener_source_name(cfg: SyslogInputConfig) -> str:
    proto = "tls" if cfg.tls_certfile else cfg.protocol
    kind = "winlog" if cfg.dataset == WINDOWS_DATASET else "syslog"
    return f"{kind}-{proto}:{cfg.port}"


# A listener with `dataset: windows` collects forwarded Windows events (NXLog CE om_tcp + to_json(),
# Winlogbeat, Windows Event Forwarding rendered as JSON): one JSON document per line or
# octet-counted. Each forwarding computer becomes its own source, `<listener>/<computer>`, so the
# SOC sees (and the inventory can expect) every Windows server, and a silent one shows as such.
WINDOWS_DATASET = "windows"
MAX_WINDOWS_HOSTS = 256  # per listener; later computers share `<listener>/other`
_HOST_UNSAFE = re.compile(r"[^a-z0-9._-]+")


def windows_computer(text: str) -> str:
    """The Windows computer a forwarded JSON event names (Winlogbeat `winlog.computer_name`, rendered
    XML `Event.System.Computer`, NXLog `Hostname`, else `host.name`), lower-cased and reduced to
    [a-z0-9._-] (at most 64 characters); '' when the line names none (pure)."""
    if text[:1] != "{":
        return ""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return ""
    if not isinstance(doc, dict):
        return ""
    name: object = None
    w = doc.get("winlog")
    if isinstance(w, dict):
        name = w.get("computer_name")
    event = doc.get("Event")
    if name is None and isinstance(event, dict) and isinstance(event.get("System"), dict):
        name = event["System"].get("Computer")
    if name is None:
        name = doc.get("Hostname")
    host = doc.get("host")
    if name is None and isinstance(host, dict):
        name = host.get("name")
    return computer_slug(name) if isinstance(name, str) else ""


def computer_slug(name: str) -> str:
    """A Windows computer name as it appears in source names and the inventory: 'FS01.Agency.local'
    -> 'fs01.agency.local'; characters outside [a-z0-9._-] become '-'; at most 64 characters."""
    return _HOST_UNSAFE.sub("-", name.strip().lower())[:64].strip("-.")


def bind_failure(cfg: SyslogInputConfig, exc: OSError) -> tuple[str, str]:
    """(state, detail) for a listener that could not start, with the likely fix."""
    where = f"{cfg.protocol} {cfg.host}:{cfg.port}"
    if isinstance(exc, ssl.SSLError) or (cfg.tls_certfile and not exc.errno):
        return ERROR, f"{where}: cannot load the TLS certificate or key: {exc}"
    hints = {
        errno.EADDRINUSE: "address already in use (another syslog daemon or agent listens there?)",
        errno.EACCES: "permission denied (ports below 1024 need CAP_NET_BIND_SERVICE; use a port >= 1024)",
        errno.EADDRNOTAVAIL: "no such address on this host (check host:)",
    }
    return BIND_FAILED, f"{where}: " + hints.get(exc.errno or 0, exc.strerror or str(exc))


class SyslogListener:
    def __init__(self, cfg: SyslogInputConfig, out: Outbox, max_bytes: int, stop: threading.Event):
        self.cfg = cfg
        self.name = listener_source_name(cfg)
        self.out = out
        self.max_bytes = max_bytes
        self.stop = stop
        self.dropped = 0
        self.connections = 0
        self._threads: list[threading.Thread] = []
        family = socket.AF_INET6 if ":" in cfg.host else socket.AF_INET
        kind = socket.SOCK_DGRAM if cfg.protocol == "udp" else socket.SOCK_STREAM
        self.sock = socket.socket(family, kind)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if cfg.protocol == "udp":
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
            self.sock.bind((cfg.host, cfg.port))
            self.sock.settimeout(0.5)
            self.tls: ssl.SSLContext | None = None
            if cfg.tls_certfile:
                self.tls = server_context(cfg.tls_certfile, cfg.tls_keyfile)
            if cfg.protocol == "tcp":
                self.sock.listen(128)
        except OSError:  # ssl.SSLError is an OSError too
            self.sock.close()
            raise

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def start(self) -> None:
        target = self._udp_loop if self.cfg.protocol == "udp" else self._accept_loop
        t = threading.Thread(target=target, name=f"agent-{self.name}", daemon=True)
        t.start()
        self._threads.append(t)

    def close(self) -> None:
        self.sock.close()

    def _udp_loop(self) -> None:
        while not self.stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            msg = to_message(data, self.max_bytes, time.time())
            if msg is None:
                continue
            try:
                self.out.put_nowait(msg)
            except queue.Full:
                self.dropped += 1

    def _accept_loop(self) -> None:
        while not self.stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.connections >= self.cfg.max_connections:
                log.warning("syslog.too_many_connections listener=%s peer=%s", self.name, peer[0])
                conn.close()
                continue
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn, peer), name=f"agent-{self.name}-conn", daemon=True).start()

    def _serve(self, conn: socket.socket, peer: Any) -> None:
        framer = StreamFramer(self.max_bytes)
        try:
            conn.settimeout(0.5)
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            while not self.stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    break
                now = time.time()
                for raw, truncated in framer.feed(data):
                    msg = to_message(raw, self.max_bytes, now)
                    if msg is None:
                        continue
                    if truncated and FLAG_TRUNCATED not in msg.flags:
                        msg.flags = (FLAG_TRUNCATED,) + msg.flags
                    put_until_stopped(self.out, msg, self.stop)  # blocks the sender while the agent cannot take more
        except (OSError, ssl.SSLError) as exc:
            log.info("syslog.connection_closed listener=%s peer=%s reason=%s", self.name, peer[0], exc)
        finally:
            self.connections -= 1
            try:
                conn.close()
            except OSError:
                pass


JOURNAL_FIELDS = (
    "__REALTIME_TIMESTAMP",
    "_HOSTNAME",
    "SYSLOG_IDENTIFIER",
    "_PID",
    "_UID",
    "_COMM",
    "_EXE",
    "_SYSTEMD_UNIT",
    "_TRANSPORT",
    "PRIORITY",
    "SYSLOG_FACILITY",
    "MESSAGE",
)


def journal_entry_to_text(entry: dict[str, Any]) -> str | None:
    """Keep the fields the central parser needs, as compact JSON (pure). Binary MESSAGE arrives as a
    list of byte values: decoded with replacement."""
    msg = entry.get("MESSAGE")
    if isinstance(msg, list):
        entry = dict(
            entry, MESSAGE=bytes(v for v in msg if isinstance(v, int) and 0 <= v < 256).decode("utf-8", "replace")
        )
    if entry.get("MESSAGE") is None:
        return None
    return json.dumps({k: entry[k] for k in JOURNAL_FIELDS if k in entry}, separators=(",", ":"), ensure_ascii=False)


class JournaldInput:
    name = "journald"

    def __init__(self, cfg: JournaldInputConfig, out: Outbox, cursor: str, max_bytes: int, stop: threading.Event):
        self.cfg = cfg
        self.out = out
        self.cursor = cursor
        self.max_bytes = max_bytes
        self.stop = stop
        self.proc: subprocess.Popen[bytes] | None = None
        self.on_state: Callable[..., Any] = lambda state, detail="": None  # set by the agent: input state changes

    def command(self) -> list[str]:
        cmd = [self.cfg.journalctl, "-o", "json", "--follow", "--no-pager"]
        cmd += [f"--after-cursor={self.cursor}"] if self.cursor else ["--lines=0"]
        for unit in self.cfg.units:
            cmd += ["-u", unit]
        return cmd

    def start(self) -> None:
        threading.Thread(target=self._run, name="agent-journald", daemon=True).start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self.proc = subprocess.Popen(
                    self.command(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
                )
            except OSError as exc:
                self.on_state(ERROR, f"cannot run {self.cfg.journalctl}: {exc.strerror or exc}")
                return
            assert self.proc.stdout is not None
            self.on_state(OK)
            for raw in self.proc.stdout:
                if self.stop.is_set():
                    break
                try:
                    entry = json.loads(raw)
                except ValueError:
                    continue
                text = journal_entry_to_text(entry)
                if text is None:
                    continue
                msg = to_message(text.encode(), self.max_bytes, time.time())
                if msg is None:
                    continue
                msg.cursor = self.cursor = str(entry.get("__CURSOR", self.cursor))
                put_until_stopped(self.out, msg, self.stop)
            self.close()
            if not self.stop.is_set():
                code = self.proc.returncode
                self.on_state(
                    ERROR, f"{self.cfg.journalctl} exited with code {code} (user not in group systemd-journal?)"
                )
            self.stop.wait(5)  # journalctl exited (journal rotated, no journal): retry after a pause

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
