"""Loud failures: every input's state (tailer, listeners, agent), logged once per change, in status.json
and in heartbeats; the SOC's coverage shows the reason; Kafka client noise is one rate-limited line.
Also the agent-side trust rules: symlinks refused unless allowed, the agent's own state never read."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from collectors.agent import Agent
from collectors.config import AgentConfig, FileInputConfig, SyslogInputConfig, load_agent_config
from collectors.configfile import ConfigError, KafkaConfig
from collectors.file_input import FileInput
from collectors.health import Health, RateLimitFilter
from collectors.identity import Identity
from collectors.stats import AgentStats, build_heartbeat
from collectors.status import assess, render_status
from collectors.tailer import FileSource
from collectors.wire import Heartbeat


def source(path: Path, **cfg) -> FileSource:
    c = FileInputConfig(paths=[str(path)], **cfg)
    return FileSource(str(path), c, 1024, 65536, 5.0, 300.0, None, False, (str(path.parent / "state"),))


def read(src: FileSource, now: float = 0.0) -> list[str]:
    src.refresh(now)
    out = []
    while lines := src.read(now, 1.0, 1 << 20):
        out += [json.loads(x)["text"] for x in lines]
    return out


def test_missing_then_created_then_rotated_away(tmp_path):
    log = tmp_path / "app.log"
    src = source(log)
    read(src)
    assert (src.state, src.detail) == ("missing", "no such file")
    log.write_text("a\nb\n")
    assert read(src) == ["a", "b"] and src.state == "ok"
    with open(log, "a") as f:
        f.write("unread\n")
    log.rename(tmp_path / "app.log.1")
    os.unlink(tmp_path / "app.log.1")  # rotated and deleted while the agent was down: simulate with a fresh source
    pos = src.position()
    src.close()
    log.write_text("new\n")
    src2 = FileSource(str(log), FileInputConfig(paths=[str(log)]), 1024, 65536, 5.0, 300.0, pos, False)
    src2.files[0].size = 9  # what the checkpoint said the file held
    assert read(src2) == ["new"]
    assert src2.state == "rotated_away" and "bytes of" in src2.detail


def test_symlinks_refused_unless_allowed(tmp_path):
    target = tmp_path / "secret.txt"
    target.write_text("shadow-like\n")
    link = tmp_path / "app.log"
    link.symlink_to(target)
    src = source(link)
    assert read(src) == [] and src.state == "refused" and "allow_symlinks" in src.detail
    allowed = source(link, allow_symlinks=True)
    assert read(allowed) == ["shadow-like"] and allowed.state == "ok"


def test_symlinked_rotated_copy_is_not_followed(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("a\n")
    src = source(log)
    assert read(src) == ["a"]
    pos = src.position()
    src.close()
    secret = tmp_path / "other.txt"
    secret.write_text("a\nsecret\n")  # same fingerprint as the followed file's first bytes
    log.unlink()
    (tmp_path / "app.log.1").symlink_to(secret)
    src2 = FileSource(str(log), FileInputConfig(paths=[str(log)]), 1024, 65536, 5.0, 300.0, pos, False)
    assert read(src2) == []


def test_the_agents_own_state_is_never_read(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "identity.json").write_text('{"secret": "s"}\n')
    with pytest.raises(ConfigError, match=r"files\[0\].paths\[0\]: .* inside the agent's state"):
        cfg = tmp_path / "a.yaml"
        cfg.write_text(f"state_dir: {state}\nfiles: [{{paths: [{state}/identity.json]}}]\n")
        load_agent_config(cfg, env={})
    fi = FileInput(FileInputConfig(paths=[str(tmp_path / "*" / "*.json")]), {}, 1024, 65536, 5.0, 300.0, (str(state),))
    srcs = fi.discover()
    assert [s.name for s in srcs] == [str(state / "identity.json")]
    assert read(srcs[0]) == [] and srcs[0].state == "refused" and "own secret" in srcs[0].detail


def test_glob_matching_nothing_says_why(tmp_path):
    fi = FileInput(FileInputConfig(paths=[str(tmp_path / "nginx" / "*.log")]), {}, 1024, 65536, 5.0, 300.0)
    assert fi.discover() == []
    assert fi.unmatched[str(tmp_path / "nginx" / "*.log")] == (
        "missing",
        f"directory {tmp_path / 'nginx'} does not exist",
    )
    (tmp_path / "nginx").mkdir()
    fi.discover()
    assert fi.unmatched[str(tmp_path / "nginx" / "*.log")] == ("missing", "no file matches")
    (tmp_path / "nginx" / "a.log").write_text("x\n")
    assert len(fi.discover()) == 1 and not fi.unmatched


def _as_nobody(fn):
    """Run fn() in a child with uid/gid nobody (root bypasses file permissions); return its result."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            os.write(w, json.dumps(fn()).encode())
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    with os.fdopen(r) as f:
        return json.loads(f.read())


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the check as another user")
def test_permission_denied_is_reported_with_the_fix(tmp_path):
    d = Path(f"/tmp/socpipe-perm-{os.getpid()}")
    d.mkdir(mode=0o755)
    try:
        log = d / "auth.log"
        log.write_text("a\n")
        log.chmod(0o600)

        def check():
            src = source(log)
            got = read(src)
            return got, src.state, src.detail

        got, state, detail = _as_nobody(check)
        assert got == [] and state == "permission_denied"
        assert "user nobody may not read it (root:" in detail and "mode 0600)" in detail and "adm" in detail

        # Opened while readable, then chmod 0600: still read through the open descriptor, but reported.
        log.chmod(0o644)
        go, done = os.pipe(), os.pipe()
        pid = os.fork()
        if pid == 0:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            src = source(log)
            first = read(src)
            os.write(done[1], b"1")
            os.read(go[0], 1)
            read(src, 1.0)
            os.write(done[1], json.dumps([first, src.state, src.detail]).encode())
            os._exit(0)
        os.read(done[0], 1)
        log.chmod(0o600)
        os.write(go[1], b"1")
        os.waitpid(pid, 0)
        first, state, detail = json.loads(os.read(done[0], 65536))
        assert first == ["a"] and state == "permission_denied" and "next rotation or restart loses it" in detail
    finally:
        for p in d.iterdir():
            p.unlink()
        d.rmdir()


def test_health_logs_once_per_change(caplog):
    h = Health()
    caplog.set_level(logging.INFO, logger="socpipe.agent.health")
    for _ in range(50):
        h.set_input("/var/log/auth.log", "permission_denied", "user x may not read it")
    h.set_input("/var/log/auth.log", "ok")
    h.set_input("/var/log/auth.log", "ok")
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs == [
        "input.permission_denied source=/var/log/auth.log user x may not read it",
        "input.ok source=/var/log/auth.log (was permission_denied)",
    ]


def test_kafka_client_noise_is_one_rate_limited_line():
    t = [0.0]
    flt = RateLimitFilter(60.0, clock=lambda: t[0])
    passed = []
    for i in range(120):  # ~116 lines in 40 s were reported
        t[0] = i / 3
        rec = logging.LogRecord("kafka.conn", logging.WARNING, "", 0, "Connect attempt %d failed", (i,), None)
        if flt.filter(rec):
            passed.append(rec.getMessage())
    assert passed == ["kafka.client Connect attempt 0 failed"]
    t[0] = 61
    rec = logging.LogRecord("kafka.client", logging.ERROR, "", 0, "still down", (), None)
    assert flt.filter(rec) and "119 similar kafka client messages suppressed" in rec.getMessage()
    other = logging.LogRecord("socpipe.agent", logging.WARNING, "", 0, "ours", (), None)
    assert flt.filter(other) and other.getMessage() == "ours"


def test_heartbeat_carries_input_states_and_is_signed():
    stats = AgentStats()
    stats.source("/var/log/syslog").lines_shipped = 5
    stats.health.set_input("/var/log/syslog", "ok")
    stats.health.set_input("/var/log/auth.log", "permission_denied", "user socpipe-agent may not read it")
    stats.health.set_input("syslog-udp:514", "bind_failed", "udp 0.0.0.0:514: address already in use")
    from collectors.wire import verify_heartbeat

    hb = build_heartbeat(stats, "ag", "a1", "h", "1", "cfg", "sec", 1.0, 1)
    back = Heartbeat.from_bytes(hb.to_bytes())
    assert verify_heartbeat(back, "sec")
    assert back.sources["/var/log/syslog"].state == "ok" and back.sources["/var/log/syslog"].lines_shipped == 5
    assert back.sources["/var/log/auth.log"].reason == "permission denied: user socpipe-agent may not read it"
    assert back.sources["syslog-udp:514"].state == "bind_failed"


def test_coverage_shows_degraded_with_the_reason():
    from pipeline.coverage.inventory import Agency, Inventory
    from pipeline.coverage.state import CoverageTracker

    tr = CoverageTracker()
    inv = Inventory(agencies=(Agency(id="so-yte", name="Sở Y tế", tier="province"),))
    tr.observe_heartbeat(
        agency_id="so-yte", agent_id="a1", host="h", version="1", spool_bytes=0, shipped={"/var/log/syslog": 1}, now=1
    )
    tr.observe_events(agency_id="so-yte", agent_id="a1", source="/var/log/syslog", now=2)
    assert tr.evaluate(inv, 3).agencies[0].state == "monitored"
    tr.observe_heartbeat(
        agency_id="so-yte",
        agent_id="a1",
        host="h",
        version="1",
        spool_bytes=0,
        shipped={"/var/log/syslog": 1},
        now=4,
        input_problems={"/var/log/auth.log": "permission denied"},
    )
    view = tr.evaluate(inv, 5).agencies[0]
    assert view.state == "degraded" and view.reasons == ["/var/log/auth.log permission denied"]
    assert view.inputs_failing == 1
    from prometheus_client import CollectorRegistry, generate_latest

    from pipeline.coverage.metrics import CoverageCollector, TrafficCounters

    snap = tr.evaluate(inv, 5)
    reg = CollectorRegistry()
    reg.register(CoverageCollector(lambda: snap, TrafficCounters(), lambda: (0, 0.0)))
    assert 'socpipe_agency_inputs_failing{agency="so-yte"} 1.0' in generate_latest(reg).decode()


def test_agent_reports_every_failure_in_status_and_logs_little(tmp_path, caplog):
    """A real agent: a missing file, an unreadable glob dir, a listener whose port is taken, Kafka
    unreachable. It keeps running, status.json says all of it, the log says each thing once."""
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", 0))
    port = busy.getsockname()[1]
    ok_log = tmp_path / "ok.log"
    ok_log.write_text("hello\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_kafka = f"127.0.0.1:{s.getsockname()[1]}"
    cfg = AgentConfig(
        state_dir=str(tmp_path / "state"),
        heartbeat_interval_s=1,
        kafka=KafkaConfig(bootstrap=dead_kafka),
        files=[
            FileInputConfig(paths=[str(tmp_path / "auth.log")]),
            FileInputConfig(paths=[str(ok_log)]),
        ],
        syslog=[SyslogInputConfig(protocol="udp", host="127.0.0.1", port=port)],
    )
    from collectors.health import quiet_kafka_client

    caplog.set_level(logging.INFO)
    flt = quiet_kafka_client()
    for h in logging.getLogger().handlers:
        h.addFilter(flt)
    agent = Agent(cfg, Identity("ag", "a1", "s"), env={})
    stop = threading.Event()
    t = threading.Thread(target=agent.run, args=(stop,))
    t.start()
    try:
        deadline = time.time() + 20
        doc = {}
        while time.time() < deadline:
            try:
                doc = json.loads((tmp_path / "state" / "status.json").read_text())
            except (OSError, ValueError):
                doc = {}
            if doc.get("kafka", {}).get("state") == "unreachable" and len(doc.get("sources", {})) == 3:
                break
            time.sleep(0.3)
        time.sleep(4)  # several more connect attempts: must not add log lines
    finally:
        stop.set()
        t.join(30)
        busy.close()
    src = doc["sources"]
    assert src[str(tmp_path / "auth.log")]["state"] == "missing"
    assert src[str(ok_log)]["state"] == "ok" and src[str(ok_log)]["lines_read"] == 1
    assert src[f"syslog-udp:{port}"]["state"] == "bind_failed"
    assert "address already in use" in src[f"syslog-udp:{port}"]["reason"]
    assert doc["kafka"]["state"] == "unreachable" and doc["spool"]["pending_bytes"] > 0
    code, verdict = assess(doc, doc["written_at"], lambda pid: True)
    assert code == 1 and "kafka unreachable" in verdict and "2 input(s) not ok" in verdict
    text = "\n".join(render_status(doc, doc["written_at"], verdict))
    assert "-> listener bind failed: udp 127.0.0.1" in text and "-> missing: no such file" in text
    msgs = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum("kafka.unreachable" in m for m in msgs) == 1, msgs
    assert sum(m.startswith("kafka.client") for m in msgs) <= 1, msgs
    assert len(msgs) <= 5, msgs


@pytest.mark.skipif(os.geteuid() != 0, reason="changing ownership needs root")
def test_install_service_chown_never_follows_a_planted_symlink(tmp_path):
    from collectors.service import ServiceError, chown_tree

    victim = tmp_path / "shadow"
    victim.write_text("root only\n")
    state = tmp_path / "state"
    (state / "spool").mkdir(parents=True)
    (state / "spool" / "link").symlink_to(victim)
    (state / "dirlink").symlink_to(tmp_path)
    chown_tree(state, "nobody")
    nobody = 65534
    assert state.stat().st_uid == nobody and (state / "spool").stat().st_uid == nobody
    assert os.lstat(state / "spool" / "link").st_uid == nobody  # the link itself
    assert victim.stat().st_uid == 0 and tmp_path.stat().st_uid == 0  # never its target
    with pytest.raises(ServiceError, match="is a symlink"):
        chown_tree(state / "dirlink", "nobody")


def test_pid_alive_reads_the_state_after_the_program_name(tmp_path):
    """/proc/PID/stat is 'pid (comm) S ...' and comm is the program's file name, which may hold ') Z':
    a running program named so is alive; a reaped one is not."""
    import subprocess
    import sys

    from collectors.status import pid_alive

    if not Path("/proc/self/stat").exists():
        pytest.skip("no /proc")
    odd = tmp_path / "x) Z y"
    odd.symlink_to(Path(sys.executable).resolve())
    proc = subprocess.Popen([str(odd), "-c", "import time; time.sleep(30)"])
    try:
        assert "x) Z y" in Path(f"/proc/{proc.pid}/stat").read_text()
        assert pid_alive(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    assert not pid_alive(proc.pid)
