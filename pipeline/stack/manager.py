"""Start, probe and stop the local servers, each by its own pid, log file and readiness check."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.stack import servers
from pipeline.stack.servers import Ports, PrerequisiteError

log = logging.getLogger("socpipe.stack")


class StackError(RuntimeError):
    pass


@dataclass(frozen=True)
class Server:
    name: str
    endpoint: str
    command: Callable[[Path, Ports], list[str]]
    ready: Callable[[Ports], str | None]
    start_timeout_s: float


@dataclass
class ServerStatus:
    name: str
    endpoint: str
    pid: int | None
    running: bool
    healthy: bool
    detail: str


class Stack:
    def __init__(self, state_dir: str | Path | None = None, ports: Ports | None = None):
        self.state = Path(state_dir or os.environ.get("SOCPIPE_STACK_DIR", ".socpipe/stack")).resolve()
        try:
            self.ports = ports or Ports.from_env()
        except PrerequisiteError as exc:
            raise StackError(str(exc)) from exc
        ports = self.ports
        self.servers = [
            Server("kafka", f"127.0.0.1:{ports.kafka}", servers.kafka_command, servers.kafka_ready, 120),
            Server(
                "elasticsearch",
                f"http://127.0.0.1:{ports.elasticsearch}",
                servers.elasticsearch_command,
                servers.elasticsearch_ready,
                60,
            ),
            Server(
                "prometheus",
                f"http://127.0.0.1:{ports.prometheus}",
                servers.prometheus_command,
                servers.prometheus_ready,
                60,
            ),
        ]

    @property
    def env_file(self) -> Path:
        return self.state / "env"

    def env(self) -> dict[str, str]:
        return {
            "SOCPIPE_KAFKA_BOOTSTRAP": f"127.0.0.1:{self.ports.kafka}",
            "SOCPIPE_ES_URL": f"http://127.0.0.1:{self.ports.elasticsearch}",
            "SOCPIPE_PROMETHEUS_URL": f"http://127.0.0.1:{self.ports.prometheus}",
            "SOCPIPE_STACK_DIR": str(self.state),
        }

    def up(self) -> list[ServerStatus]:
        """Start what is not running (idempotent), wait for every server to answer, write the env file."""
        self.state.mkdir(parents=True, exist_ok=True)
        for server in self.servers:
            if self._pid_alive(server):
                continue
            if self._probe(server) is not None:
                raise StackError(
                    f"{server.name}: something not started by socpipe already answers on "
                    f"{server.endpoint}; stop it or change the port"
                )
            try:
                command = server.command(self.state, self.ports)
            except PrerequisiteError as exc:
                raise StackError(f"{server.name}: {exc}") from exc
            logfile = open(self.state / f"{server.name}.log", "ab")
            proc = subprocess.Popen(
                command,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.state,
            )
            (self.state / f"{server.name}.pid").write_text(str(proc.pid))
            log.info("stack.start server=%s pid=%d", server.name, proc.pid)
        for server in self.servers:
            self._wait_ready(server)
        self.env_file.write_text("".join(f"export {k}={v}\n" for k, v in self.env().items()))
        return self.status()

    def status(self) -> list[ServerStatus]:
        out = []
        for server in self.servers:
            pid = self._pid(server)
            running = self._pid_alive(server)
            detail = self._probe(server) if running else None
            out.append(
                ServerStatus(
                    server.name,
                    server.endpoint,
                    pid,
                    running,
                    detail is not None,
                    detail or ("not answering" if running else "stopped"),
                )
            )
        return out

    def down(self) -> list[str]:
        """Stop only the processes this stack started, by pid (their process groups)."""
        stopped = []
        for server in reversed(self.servers):
            pid = self._pid(server)
            if pid is None:
                continue
            if self._pid_alive(server):
                try:
                    os.killpg(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                deadline = time.monotonic() + 30
                while self._alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.2)
                if self._alive(pid):
                    os.killpg(pid, signal.SIGKILL)
                stopped.append(server.name)
            (self.state / f"{server.name}.pid").unlink(missing_ok=True)
        return stopped

    def _wait_ready(self, server: Server) -> None:
        deadline = time.monotonic() + server.start_timeout_s
        while time.monotonic() < deadline:
            if not self._pid_alive(server):
                tail = (self.state / f"{server.name}.log").read_text(errors="replace")[-3000:]
                raise StackError(f"{server.name} exited during start; end of its log:\n{tail}")
            if self._probe(server) is not None:
                return
            time.sleep(0.5)
        raise StackError(
            f"{server.name} did not answer on {server.endpoint} within {server.start_timeout_s:.0f}s; "
            f"see {self.state / (server.name + '.log')}"
        )

    def _probe(self, server: Server) -> str | None:
        try:
            return server.ready(self.ports)
        except Exception:  # any failure of a probe means "not ready yet"
            return None

    def _pid(self, server: Server) -> int | None:
        try:
            return int((self.state / f"{server.name}.pid").read_text())
        except (OSError, ValueError):
            return None

    def _pid_alive(self, server: Server) -> bool:
        pid = self._pid(server)
        return pid is not None and self._alive(pid)

    @staticmethod
    def _alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        # A zombie (exited, not yet reaped) is not alive.
        try:
            return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
        except (OSError, IndexError):
            return True
