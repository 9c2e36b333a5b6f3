"""Start socpipe's own commands as real processes for integration tests, and stop them surely."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOCPIPE = [sys.executable, "-m", "pipeline.cli"]


class Proc:
    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            SOCPIPE + args,
            env={**os.environ, **env},
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def check_alive(self) -> bool:
        """True while running; fails the test with the end of the process's log if it died."""
        if not self.alive():
            import pytest

            pytest.fail(f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}")
        return True

    def kill9(self) -> None:
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def stop(self, timeout: float = 15) -> None:
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        self._log.close()

    def log_tail(self, n: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-n:]


class Procs:
    """A set of processes stopped together at the end of a test (fixture `procs`)."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.items: list[Proc] = []

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Proc:
        p = Proc(name, args, env or {}, self.log_dir)
        self.items.append(p)
        return p

    def stop_all(self) -> None:
        for p in reversed(self.items):
            p.stop()
