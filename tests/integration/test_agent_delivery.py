"""Done-when: 200,000 lines across 3 files, rotation by rename and by copytruncate, the agent killed
with SIGKILL twice, the broker stopped for 30 s. Every line reaches Kafka (no seq gap per source,
offsets contiguous per file), and after duplicate removal (pipeline.dedup.SeenSequences, what the
detector worker runs) no line is seen twice.

Uses a PRIVATE Kafka broker on free ports (the shared dev broker must never be stopped).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from collectors.wire import LineBatch, LogLine
from pipeline.dedup import SeenSequences
from pipeline.stack.plan import Ports
from pipeline.stack.servers import kafka_command, kafka_ready
from tests.integration.conftest import free_port, wait_for
from tests.integration.test_agent_kafka import start_agent, stop_agent, write_agent_config

pytestmark = pytest.mark.integration

TOTAL = 200_000
FILES = 3
BROKER_DOWN_S = 30


class PrivateBroker:
    def __init__(self, state: Path):
        self.state = state
        self.ports = Ports(kafka=free_port(), kafka_controller=free_port())
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.ports.kafka}"

    def start(self) -> None:
        cmd = kafka_command(self.state, self.ports)
        self.proc = proc = subprocess.Popen(
            cmd,
            stdout=open(self.state / "kafka.log", "ab"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.state,
        )

        def ready():
            assert proc.poll() is None, (self.state / "kafka.log").read_text()[-2000:]
            try:
                return kafka_ready(self.ports)
            except Exception:
                return None

        wait_for(ready, 90, what="private Kafka broker")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def line_text(file_no: int, n: int) -> str:
    return f"f{file_no} n={n:07d} " + "payload-" * 8


class Writer(threading.Thread):
    """Appends numbered lines round-robin to 3 files; rotates file 0 by rename, file 1 by copytruncate
    (coordinated with its own writes, as logrotate's copytruncate races otherwise), file 2 never."""

    def __init__(self, logs: Path, rate_per_s: float):
        super().__init__(daemon=True)
        self.logs = logs
        self.rate = rate_per_s
        self.written = 0
        self.rotations = {"rename": 0, "copytruncate": 0}
        self.error: BaseException | None = None

    def path(self, i: int) -> Path:
        return self.logs / f"app{i}.log"

    def _shift(self, i: int) -> None:
        for k in range(8, 0, -1):
            src = Path(f"{self.path(i)}.{k}")
            if src.exists():
                src.rename(f"{self.path(i)}.{k + 1}")

    def run(self) -> None:
        try:
            handles = [open(self.path(i), "a") for i in range(FILES)]
            rotate_at = {
                int(TOTAL * f): kind
                for f, kind in (
                    (0.2, "rename"),
                    (0.35, "copytruncate"),
                    (0.55, "rename"),
                    (0.7, "copytruncate"),
                    (0.85, "rename"),
                )
            }
            start = time.monotonic()
            for n in range(TOTAL):
                i = n % FILES
                handles[i].write(line_text(i, n) + "\n")
                self.written = n + 1
                kind = rotate_at.get(n)
                if kind == "rename":
                    handles[0].close()
                    self._shift(0)
                    self.path(0).rename(f"{self.path(0)}.1")
                    handles[0] = open(self.path(0), "a")
                    self.rotations[kind] += 1
                elif kind == "copytruncate":
                    handles[1].flush()
                    self._shift(1)
                    Path(f"{self.path(1)}.1").write_bytes(self.path(1).read_bytes())
                    handles[1].truncate(0)
                    handles[1].seek(0)
                    self.rotations[kind] += 1
                if n % 500 == 0:
                    for h in handles:
                        h.flush()
                    ahead = n / self.rate - (time.monotonic() - start)
                    if ahead > 0:
                        time.sleep(ahead)
            for h in handles:
                h.close()
        except BaseException as exc:  # surfaced by the test
            self.error = exc


@pytest.mark.timeout(280)
def test_no_line_lost_or_duplicated_through_rotation_kills_and_broker_outage(tmp_path, unique):
    broker_dir = tmp_path / "broker"
    broker_dir.mkdir()
    broker = PrivateBroker(broker_dir)
    broker.start()
    logs = tmp_path / "logs"
    logs.mkdir()
    topic = f"test.agent.delivery.{unique}"
    config = write_agent_config(
        tmp_path,
        broker.bootstrap,
        topic,
        poll_interval_s=0.1,
        close_inactive_s=2,
        files=[{"paths": [str(logs / "app*.log")]}],
        spool={"segment_bytes": 1024 * 1024, "max_bytes": 256 * 1024 * 1024},
    )
    agent_log = tmp_path / "agent.log"
    writer = Writer(logs, rate_per_s=3500)
    for i in range(FILES):
        writer.path(i).touch()
    agent = start_agent(config, agent_log)
    kills = 0

    def written() -> int:  # progress: a slow (loaded) machine gets time while lines are still written
        return writer.written

    try:
        writer.start()
        wait_for(lambda: writer.written >= TOTAL * 0.28, 60, 0.05, "writer at 28%", written)
        agent.kill()  # SIGKILL #1
        agent.wait()
        kills += 1
        time.sleep(1.0)
        agent = start_agent(config, agent_log)
        wait_for(lambda: writer.written >= TOTAL * 0.40, 60, 0.05, "writer at 40%", written)
        broker.stop()
        down_at = time.monotonic()
        wait_for(lambda: writer.written >= TOTAL * 0.62, 60, 0.05, "writer at 62%", written)
        agent.kill()  # SIGKILL #2, while the broker is down and the spool holds a backlog
        agent.wait()
        kills += 1
        time.sleep(0.5)
        agent = start_agent(config, agent_log)
        time.sleep(max(0.0, BROKER_DOWN_S - (time.monotonic() - down_at)))
        broker.start()
        wait_for(lambda: not writer.is_alive(), 120, 0.2, "the writer done", written)
        assert writer.error is None, writer.error
        assert writer.written == TOTAL

        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=broker.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
        )
        seen = SeenSequences()
        raw_by_key: dict[tuple[str, int], str] = {}
        kept: list[tuple[str, LogLine]] = []
        numbers: set[int] = set()
        raw_lines = 0

        def consume():
            nonlocal raw_lines
            for recs in consumer.poll(timeout_ms=1000, max_records=2000).values():
                for m in recs:
                    b = LineBatch.from_bytes(m.value)
                    for ln in b.lines:
                        raw_lines += 1
                        prior = raw_by_key.setdefault((b.source, ln.seq), ln.text)
                        assert prior == ln.text, f"seq {ln.seq} of {b.source} carried two different lines"
                        if seen.add(b.agent_id, b.source, ln.seq):
                            kept.append((b.source, ln))
                            numbers.add(int(ln.text.split("n=")[1][:7]))
            return len(numbers) >= TOTAL

        wait_for(consume, 120, 0, "all 200,000 lines on Kafka", lambda: len(numbers))
        time.sleep(2)
        while consumer.poll(timeout_ms=1000):
            pass  # anything late would be a duplicate; SeenSequences would drop it
        consumer.close()
    finally:
        stop_agent(agent)
        broker.stop()
        writer.join(5)

    assert kills == 2 and writer.rotations == {"rename": 3, "copytruncate": 2}
    # duplicates after the pipeline's duplicate removal: 0
    texts = [ln.text for _, ln in kept]
    assert len(texts) == len(set(texts)) == TOTAL
    assert numbers == set(range(TOTAL))
    # gaps: per source, seqs are 1..N with none missing, and offsets are contiguous within each file
    by_source: dict[str, list[LogLine]] = {}
    for source, ln in kept:
        by_source.setdefault(source, []).append(ln)
    assert sorted(by_source) == sorted(str(writer.path(i)) for i in range(FILES))
    gaps = 0
    for source, lines in by_source.items():
        lines.sort(key=lambda ln: ln.seq)
        gaps += sum(1 for a, b in zip(lines, lines[1:]) if b.seq != a.seq + 1)
        assert lines[0].seq == 1
        for a, b in zip(lines, lines[1:]):
            assert b.offset in (a.offset + len(a.text.encode()) + 1, 0), (source, a, b)
            assert b.line_no in (a.line_no + 1, 1)
        # per file, lines are in writer order
        nums = [int(ln.text.split("n=")[1][:7]) for ln in lines]
        assert nums == sorted(nums), f"{source}: lines out of order"
    assert gaps == 0
    print(f"raw lines on Kafka {raw_lines}, duplicates removed {seen.duplicates}, gaps {gaps}")
