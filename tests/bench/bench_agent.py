"""Agent vs rsyslog+omkafka, same file, same broker, same run, each pinned to one core.

Prints lines/s (file -> acknowledged by Kafka) and resident memory at idle and under load, side by
side. Needs the stack's Kafka ($SOCPIPE_KAFKA_BOOTSTRAP, `socpipe stack up`) and, for the comparison,
rsyslogd with omkafka (Debian: rsyslog, rsyslog-kafka). rsyslogd runs with its own config, pid file and
work dir in a temp dir; the system rsyslog is never touched.

    python tests/bench/bench_agent.py            # BENCH_AGENT_LINES=500000 by default
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

LINES = int(os.environ.get("BENCH_AGENT_LINES", "500000"))
BOOTSTRAP = os.environ.get("SOCPIPE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
CORE = os.environ.get("BENCH_AGENT_CORE", "0")
IDLE_S = 4.0


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_log(path: Path, n: int) -> None:
    """Realistic auth/syslog lines (~110 bytes), all different."""
    with open(path, "w") as f:
        for i in range(n):
            f.write(
                f"Nov 28 01:{i // 60 % 60:02d}:{i % 60:02d} web01 sshd[{1000 + i % 5000}]: Failed password "
                f"for invalid user u{i % 977} from 10.{i % 256}.{i // 256 % 256}.7 port {1024 + i % 60000} ssh2\n"
            )


def topic_end(topic: str) -> int:
    c = KafkaConsumer(bootstrap_servers=BOOTSTRAP)
    try:
        parts = c.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        return sum(c.end_offsets(tps).values()) if tps else 0
    finally:
        c.close()


def create_topic(topic: str) -> None:
    """Both shippers get an existing topic: omkafka suspends its action (and retries only after
    action.resumeInterval) when its first produce hits a topic that auto-creation has not made yet."""
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
    finally:
        admin.close()


def measure(proc: subprocess.Popen, live: Path, staged: Path, done, label: str) -> dict:
    time.sleep(IDLE_S)
    idle = rss_mb(proc.pid)
    cpu0 = cpu_s(proc.pid)
    t0 = time.monotonic()
    with open(staged, "rb") as src, open(live, "ab") as dst:  # the whole content lands at once
        shutil.copyfileobj(src, dst, 8 * 1024 * 1024)
    peak = idle
    while not done():
        if proc.poll() is not None:
            raise RuntimeError(f"{label} exited with {proc.returncode}")
        peak = max(peak, rss_mb(proc.pid))
        if time.monotonic() - t0 > 180:
            raise RuntimeError(f"{label} did not finish in 180 s")
        time.sleep(0.05)
    elapsed = time.monotonic() - t0
    cpu = cpu_s(proc.pid) - cpu0
    return {"lines_per_s": LINES / elapsed, "seconds": elapsed, "cpu_s": cpu, "rss_idle_mb": idle, "rss_load_mb": peak}


def bench_agent(tmp: Path, staged: Path) -> dict:
    import yaml

    from collectors.identity import Identity, save_identity

    topic = f"bench.agent.{uuid.uuid4().hex[:8]}"
    save_identity(tmp / "identity.json", Identity("bench", "bench-agent", "secret"))
    live = tmp / "agent-input.log"
    cfg = {
        "state_dir": str(tmp / "agent-state"),
        "identity_file": str(tmp / "identity.json"),
        "topic": topic,
        "heartbeat_topic": topic + ".hb",
        "kafka": {"bootstrap": BOOTSTRAP},
        "files": [{"paths": [str(live)]}],
    }  # metrics off, as on agency hosts
    (tmp / "agent.yaml").write_text(yaml.safe_dump(cfg))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOCPIPE_")}
    create_topic(topic)
    live.touch()  # present and empty at start, as a log file would be
    proc = subprocess.Popen(
        [
            "taskset",
            "-c",
            CORE,
            sys.executable,
            "-m",
            "pipeline.cli",
            "agent",
            "run",
            "--config",
            str(tmp / "agent.yaml"),
            "--log-level",
            "WARNING",
        ],
        env=env,
        stdout=open(tmp / "agent.log", "wb"),
        stderr=subprocess.STDOUT,
    )

    from collectors.wire import HEADER_LINES

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=BOOTSTRAP,
        auto_offset_reset="earliest",
        metadata_max_age_ms=500,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    seen = [0]

    def shipped() -> bool:  # lines on Kafka, from the record headers (values are not decoded)
        for recs in consumer.poll(timeout_ms=20).values():
            seen[0] += sum(int(dict(m.headers)[HEADER_LINES]) for m in recs)
        return seen[0] >= LINES

    try:
        return measure(proc, live, staged, shipped, "agent")
    finally:
        consumer.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


RSYSLOG_CONF = """
global(workDirectory="{work}")
module(load="imfile")
module(load="omkafka")
template(name="raw" type="string" string="%rawmsg%")
input(type="imfile" File="{live}" Tag="bench" ruleset="tokafka")
ruleset(name="tokafka" queue.type="LinkedList" queue.size="200000") {{
  action(type="omkafka" broker=["{bootstrap}"] topic="{topic}" template="raw" partitions.auto="on"
         confParam=["compression.codec=zstd", "request.required.acks=-1", "enable.idempotence=true",
                    "queue.buffering.max.ms=20", "batch.num.messages=10000"])
}}
"""


def bench_rsyslog(tmp: Path, staged: Path) -> dict | str:
    rsyslogd = shutil.which("rsyslogd") or ("/usr/sbin/rsyslogd" if Path("/usr/sbin/rsyslogd").exists() else None)
    if not rsyslogd:
        return "rsyslogd not installed (apt-get install rsyslog rsyslog-kafka)"
    if (
        not any(
            Path(p).exists() for p in ("/usr/lib/x86_64-linux-gnu/rsyslog/omkafka.so", "/usr/lib/rsyslog/omkafka.so")
        )
        and subprocess.run(["dpkg", "-s", "rsyslog-kafka"], capture_output=True).returncode != 0
    ):
        return "omkafka not installed (apt-get install rsyslog-kafka)"
    topic = f"bench.rsyslog.{uuid.uuid4().hex[:8]}"
    work = tmp / "rsyslog-work"
    work.mkdir()
    live = tmp / "rsyslog-input.log"
    conf = tmp / "rsyslog.conf"
    conf.write_text(RSYSLOG_CONF.format(work=work, live=live, bootstrap=BOOTSTRAP, topic=topic))
    check = subprocess.run([rsyslogd, "-N1", "-f", str(conf)], capture_output=True, text=True)
    if check.returncode != 0:
        return "rsyslog config rejected: " + (check.stderr or check.stdout)[-500:]
    create_topic(topic)
    live.touch()
    proc = subprocess.Popen(
        ["taskset", "-c", CORE, rsyslogd, "-n", "-f", str(conf), "-i", str(tmp / "rsyslog.pid")],
        stdout=open(tmp / "rsyslog.log", "wb"),
        stderr=subprocess.STDOUT,
    )
    checked_at, ok = 0.0, False

    def shipped() -> bool:
        nonlocal checked_at, ok
        if time.monotonic() - checked_at >= 0.5:
            checked_at = time.monotonic()
            try:
                ok = topic_end(topic) >= LINES
            except Exception:
                ok = False
        return ok

    try:
        return measure(proc, live, staged, shipped, "rsyslog")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as d:
        tmp = Path(d)
        make_log(tmp / "staged-agent.log", LINES)
        shutil.copy(tmp / "staged-agent.log", tmp / "staged-rsyslog.log")
        size_mb = (tmp / "staged-agent.log").stat().st_size / 1e6
        print(f"bench_agent: {LINES} lines ({size_mb:.0f} MB) file -> Kafka {BOOTSTRAP}, each pinned to core {CORE}")
        try:
            agent = bench_agent(tmp, tmp / "staged-agent.log")
        except Exception as exc:
            log = (tmp / "agent.log").read_text(errors="replace")[-2000:] if (tmp / "agent.log").exists() else ""
            print(f"socpipe agent: FAILED: {exc}\n{log}")
            raise SystemExit(1) from exc
        try:
            rsys = bench_rsyslog(tmp, tmp / "staged-rsyslog.log")
        except Exception as exc:
            rsys = f"failed: {exc}"
    rows = [("socpipe agent", agent)]
    if isinstance(rsys, dict):
        rows.append(("rsyslog+omkafka", rsys))
    print(f"{'':18} {'lines/s':>10} {'seconds':>8} {'cpu s':>7} {'RSS idle MB':>12} {'RSS load MB':>12}")
    for name, r in rows:
        print(
            f"{name:18} {r['lines_per_s']:>10,.0f} {r['seconds']:>8.2f} {r['cpu_s']:>7.2f} "
            f"{r['rss_idle_mb']:>12.1f} {r['rss_load_mb']:>12.1f}"
        )
    if isinstance(rsys, dict):
        print(
            f"agent/rsyslog throughput ratio: {agent['lines_per_s'] / rsys['lines_per_s']:.2f}x "
            f"(target >= 0.5x); agent >= 100,000 lines/s: {agent['lines_per_s'] >= 100_000}; "
            f"agent idle RSS <= 40 MB: {agent['rss_idle_mb'] <= 40}"
        )
    else:
        print(f"rsyslog+omkafka: skipped: {rsys}")
    print(json.dumps({"agent": agent, "rsyslog": rsys}))


if __name__ == "__main__":
    main()
