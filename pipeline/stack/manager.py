"""Start, probe and stop the local servers, each by its own pid, log file and readiness check."""

from __future__ import annotations

import json
import logging
import os
import pwd
import signal
import subprocess
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from pathlib import Path

from collectors.status import pid_alive
from pipeline.stack import elasticsearch, elasticsearch_secure, kafka_secure, servers
from pipeline.stack.plan import Ports, PrerequisiteError, StackError, StackOptions
from pipeline.stack.servers import Launch

log = logging.getLogger("socpipe.stack")


@dataclass(frozen=True)
class Server:
    name: str
    endpoint: str
    command: Callable[[Path, Ports], list[str] | Launch]
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
    def __init__(
        self,
        state_dir: str | Path | None = None,
        ports: Ports | None = None,
        secure: bool | None = None,
        brokers: int | None = None,
    ):
        self.state = Path(state_dir or os.environ.get("SOCPIPE_STACK_DIR", ".socpipe/stack")).resolve()
        recorded = self._recorded()
        try:
            # A running stack keeps the ports it was started with: `status`/`down` from a new shell
            # (without the SOCPIPE_STACK_*_PORT variables) still find its servers.
            self.ports = ports or (recorded[0] if recorded else Ports.from_env())
            if recorded is None:
                # without --brokers, a stopped stack comes back with the node count of its Kafka data
                brokers = brokers or servers.formatted_brokers(self.state) or 1
                self.options = StackOptions(secure=bool(secure), brokers=brokers)
            else:
                self.options = recorded[1] if secure is None else replace(recorded[1], secure=secure)
                if brokers is not None and brokers != self.options.brokers:
                    raise StackError(
                        f"kafka: the running stack has {self.options.brokers} broker(s); stop it "
                        f"(`socpipe stack down`) before `socpipe stack up --brokers {brokers}`"
                    )
            self.ports.check(self.options)
        except PrerequisiteError as exc:
            raise StackError(str(exc)) from exc
        ports, state, opts = self.ports, self.state, self.options
        self.servers = [*(self._kafka_node(node) for node in range(1, opts.brokers + 1))]
        self.servers += [
            Server(
                "elasticsearch",
                f"{'https' if opts.secure else 'http'}://127.0.0.1:{ports.elasticsearch}",
                lambda st, p: elasticsearch.elasticsearch_launch(st, p, opts),
                lambda p: elasticsearch.elasticsearch_ready(p, state, opts),
                180,
            ),
            Server(
                "prometheus",
                f"http://127.0.0.1:{ports.prometheus}",
                servers.prometheus_command,
                servers.prometheus_ready,
                60,
            ),
        ]

    def _kafka_node(self, node: int) -> Server:
        """Kafka node `node` (1-based): `kafka`, then `kafka-2`, `kafka-3` on the plan's ports + 3 each."""
        state, opts = self.state, self.options
        own = self.ports.kafka_node(node - 1)
        return Server(
            servers.kafka_name(node),
            f"127.0.0.1:{own.kafka}" + (f", SASL_SSL 127.0.0.1:{own.kafka_secure}" if opts.secure else ""),
            lambda st, p: servers.kafka_command(st, p, opts.secure, node, opts),
            lambda p: kafka_secure.ready(state, p.kafka_node(node - 1), opts.secure, opts.brokers),
            120,
        )

    @property
    def record_file(self) -> Path:
        return self.state / "stack.json"

    def _recorded(self) -> tuple[Ports, StackOptions] | None:
        """Ports and options of the stack started in this state directory, if any of its servers runs."""
        try:
            rec = json.loads(self.record_file.read_text())
            ports, opts = Ports(**rec["ports"]), StackOptions(**rec.get("options", {}))
        except (OSError, ValueError, TypeError, KeyError, PrerequisiteError):
            return None
        names = rec.get("servers", ["kafka", "elasticsearch", "prometheus"])
        pids = [self._read_pid(self.state / f"{name}.pid") for name in names]
        return (ports, opts) if any(pid is not None and pid_alive(pid) for pid in pids) else None

    @property
    def env_file(self) -> Path:
        return self.state / "env"

    def env(self) -> dict[str, str]:
        return {
            "SOCPIPE_KAFKA_BOOTSTRAP": self.ports.kafka_bootstrap(self.options.brokers),
            "SOCPIPE_ES_URL": f"http://127.0.0.1:{self.ports.elasticsearch}",
            "SOCPIPE_PROMETHEUS_URL": f"http://127.0.0.1:{self.ports.prometheus}",
            "SOCPIPE_STACK_DIR": str(self.state),
            **{
                f"SOCPIPE_STACK_{name.upper()}_PORT": str(getattr(self.ports, name))
                for name in Ports.__dataclass_fields__
            },
            **(kafka_secure.env(self.state, self.ports.kafka_secure) if self.options.secure else {}),
            **(elasticsearch_secure.env(self.state, self.ports.elasticsearch) if self.options.secure else {}),
        } | (
            {"SOCPIPE_STACK_KAFKA_SECURE_BOOTSTRAP": self.ports.kafka_bootstrap(self.options.brokers, secure=True)}
            if self.options.secure
            else {}
        )

    def service_env(self, role: str) -> dict[str, str]:
        """SOCPIPE_* settings that run a socpipe service (`detector`, `coverage`, `agent`, `triage`,
        `setup` for `es setup`) against this stack: the plan's ports and, when secure, the service's own
        least-privilege Elasticsearch credential over HTTPS."""
        out = self.ports.service_env(role, self.options.brokers)
        if self.options.secure:
            out.update(elasticsearch_secure.service_env(self.state, self.ports.elasticsearch, role))
        return out

    def up(self, only: Collection[str] | None = None) -> list[ServerStatus]:
        """Start what is not running (idempotent), wait for every server to answer, write the env file.

        `only`: names of the servers to start (e.g. just the Kafka nodes, for a test that brings its own
        Elasticsearch); default all."""
        self.state.mkdir(parents=True, exist_ok=True)
        self.record_file.write_text(
            json.dumps(
                {
                    "ports": self.ports.__dict__,
                    "options": self.options.__dict__,
                    "servers": [s.name for s in self.servers],
                },
                indent=1,
            )
        )
        chosen = [s for s in self.servers if only is None or s.name in only]
        if self.options.secure:  # a credential file of the wrong shape stops `up` before anything starts
            kafka_secure.soc_credentials(self.state)
            elasticsearch_secure.credentials(self.state)
        for server in chosen:
            if self._pid_alive(server):
                if server.name == "kafka":
                    kafka_secure.check_mode(self.state, self.options.secure)
                elif server.name == "elasticsearch" and self.options.secure:
                    changed = elasticsearch.apply_credentials(self.state)  # (Kafka's: in its ready probe)
                    if changed:
                        log.info("stack.credentials server=elasticsearch users=%s", ",".join(changed))
                continue
            if self._probe(server) is not None:
                raise StackError(
                    f"{server.name}: something not started by socpipe already answers on "
                    f"{server.endpoint}; stop it or change the port"
                )
            try:
                launch = server.command(self.state, self.ports)
            except PrerequisiteError as exc:
                raise StackError(f"{server.name}: {exc}") from exc
            if not isinstance(launch, Launch):
                launch = Launch(launch)
            with open(self.state / f"{server.name}.log", "ab") as logfile:
                proc = subprocess.Popen(
                    launch.argv,
                    stdout=logfile,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    cwd=launch.cwd or self.state,
                    env={**os.environ, **launch.env} if launch.env else None,
                    user=launch.user,
                    group=launch.user and _primary_group(launch.user),
                    extra_groups=[] if launch.user else None,
                )
            (self.state / f"{server.name}.pid").write_text(str(proc.pid))
            log.info("stack.start server=%s pid=%d", server.name, proc.pid)
        for server in chosen:
            self._wait_ready(server)
        text = "".join(f"export {k}={v}\n" for k, v in self.env().items())
        self.env_file.unlink(missing_ok=True)  # secure: it carries the operator's API key, so owner-only
        fd = os.open(self.env_file, os.O_WRONLY | os.O_CREAT, 0o600 if self.options.secure else 0o644)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
        return self.status()

    def status(self) -> list[ServerStatus]:
        out = []
        for server in self.servers:
            pid = self._pid(server)
            running = self._pid_alive(server)
            try:
                detail, problem = (self._probe(server) if running else None), None
            except StackError as exc:  # e.g. a credential file of the wrong shape: said, not raised
                detail, problem = None, str(exc)
            out.append(
                ServerStatus(
                    server.name,
                    server.endpoint,
                    pid,
                    running,
                    detail is not None,
                    detail or problem or ("not answering" if running else "stopped"),
                )
            )
        return out

    def down(self) -> list[str]:
        """Stop only the processes this stack started, by pid (their process groups).

        All at once, then one deadline: Kafka nodes stopped one after another lose their controller
        quorum, and the last one waits out its controlled shutdown for nothing."""
        stopping = []
        for server in reversed(self.servers):
            pid = self._pid(server)
            if pid is None:
                continue
            if self._pid_alive(server):
                try:
                    os.killpg(pid, signal.SIGTERM)
                    stopping.append((server, pid))
                except ProcessLookupError:
                    pass
            else:
                (self.state / f"{server.name}.pid").unlink(missing_ok=True)
        deadline = time.monotonic() + 30
        while any(pid_alive(pid) for _, pid in stopping) and time.monotonic() < deadline:
            time.sleep(0.2)
        for server, pid in stopping:
            if pid_alive(pid):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            (self.state / f"{server.name}.pid").unlink(missing_ok=True)
        return [server.name for server, _ in stopping]

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
        except StackError:  # not a server still starting: the stack's own files are wrong (the message says which)
            raise
        except Exception:  # any other failure of a probe means "not ready yet"
            return None

    def _pid(self, server: Server) -> int | None:
        return self._read_pid(self.state / f"{server.name}.pid")

    @staticmethod
    def _read_pid(path: Path) -> int | None:
        try:
            return int(path.read_text())
        except (OSError, ValueError):
            return None

    def _pid_alive(self, server: Server) -> bool:
        pid = self._pid(server)
        return pid is not None and pid_alive(pid)


def _primary_group(user: str) -> int:
    return pwd.getpwnam(user).pw_gid
