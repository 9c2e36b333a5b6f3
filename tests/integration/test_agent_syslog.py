"""The real `logger` (util-linux) over UDP and TCP to the agent's listeners, through real Kafka: the
lines arrive parsed-ready (the pipeline's own parser finds their host and program)."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading

import pytest

from collectors import Agent, Identity
from collectors.config import AgentConfig, load_agent_config
from collectors.wire import LineBatch
from detectors.normalise.core import parse_line
from tests.integration.conftest import free_port, wait_for
from tests.integration.test_agent_kafka import TopicReader

pytestmark = pytest.mark.integration


def make_config(tmp_path, kafka_bootstrap: str, topic: str, syslog: list[dict]) -> AgentConfig:
    import yaml

    path = tmp_path / "agent.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "state_dir": str(tmp_path / "state"),
                "topic": topic,
                "heartbeat_topic": topic + ".hb",
                "kafka": {"bootstrap": kafka_bootstrap},
                "syslog": syslog,
            }
        )
    )
    return load_agent_config(path, env={})


def run_agent(config: AgentConfig) -> tuple[Agent, threading.Event, threading.Thread]:
    agent = Agent(config, Identity("agency-sys", "agent-sys", "secret"))
    stop = threading.Event()
    t = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    t.start()
    assert agent.ready.wait(20)
    return agent, stop, t


def logger(*args: str) -> None:
    subprocess.run(["logger", *args], check=True, timeout=10)


@pytest.mark.skipif(shutil.which("logger") is None, reason="util-linux logger not installed")
def test_logger_udp_and_tcp_arrive_parsed_ready(tmp_path, kafka_bootstrap, unique):
    topic = f"test.agent.syslog.{unique}"
    udp, tcp = free_port(), free_port()
    config = make_config(
        tmp_path,
        kafka_bootstrap,
        topic,
        [{"protocol": "udp", "port": udp}, {"protocol": "tcp", "port": tcp, "dataset": "system.syslog"}],
    )
    agent, stop, thread = run_agent(config)
    reader = TopicReader(kafka_bootstrap, topic)
    try:
        logger(
            "--udp",
            "--server",
            "127.0.0.1",
            "--port",
            str(udp),
            "-t",
            "udpprog",
            "--rfc5424",
            f"hello over udp {unique}",
        )
        logger(
            "--udp", "--server", "127.0.0.1", "--port", str(udp), "-t", "udp3164", "--rfc3164", f"bsd style {unique}"
        )
        logger(
            "--tcp",
            "--server",
            "127.0.0.1",
            "--port",
            str(tcp),
            "-t",
            "tcpprog",
            "--octet-count",
            f"octet counted {unique}",
        )
        logger("--tcp", "--server", "127.0.0.1", "--port", str(tcp), "-t", "tcpnl", f"newline framed {unique}")
        # several messages in one TCP stream with newline framing (what rsyslog's omfwd sends)
        subprocess.run(
            ["logger", "--tcp", "--server", "127.0.0.1", "--port", str(tcp), "-t", "tcpmulti"],
            input="first of many\nsecond of many\n",
            text=True,
            check=True,
            timeout=10,
        )
        wait_for(
            lambda: sum(len(b.lines) for b in map(lambda m: LineBatch.from_bytes(m.value), reader.poll())) >= 6,
            30,
            what="6 syslog messages on Kafka",
        )
    finally:
        stop.set()
        thread.join(30)
        reader.close()
    events = {}
    for m in reader.messages:
        b = LineBatch.from_bytes(m.value)
        assert b.host and b.agency_id == "agency-sys"
        for ln in b.lines:
            ev = parse_line(ln.text, b.dataset, b.timezone, read_at=ln.read_at)
            events[ev.get("process.name")] = (b.source, ln, ev)
    hostname = socket.gethostname()
    expected = {
        "udpprog": f"syslog-udp:{udp}",
        "udp3164": f"syslog-udp:{udp}",
        "tcpprog": f"syslog-tcp:{tcp}",
        "tcpnl": f"syslog-tcp:{tcp}",
        "tcpmulti": f"syslog-tcp:{tcp}",
    }
    for program, source in expected.items():
        assert program in events, sorted(k for k in events if k)
        src, ln, ev = events[program]
        assert src == source
        assert ev["host.hostname"] == hostname
        assert ev["log.syslog.priority"] == 13  # user.notice: logger's default
        assert ln.offset == 0 and ln.line_no == 0 and ln.seq >= 1 and not ln.flags
    assert events["udpprog"][2]["message"] == f"hello over udp {unique}"
    assert events["tcpprog"][2]["message"] == f"octet counted {unique}"
    multi = sorted(
        parse_line(ln.text)["message"]
        for m in reader.messages
        for ln in LineBatch.from_bytes(m.value).lines
        if "tcpmulti" in ln.text
    )
    assert multi == ["first of many", "second of many"]
    seqs = sorted(
        ln.seq
        for m in reader.messages
        for ln in LineBatch.from_bytes(m.value).lines
        if LineBatch.from_bytes(m.value).source == f"syslog-tcp:{tcp}"
    )
    assert seqs == list(range(1, len(seqs) + 1))  # per-listener sequence, no gap


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_tls_listener_accepts_octet_counted_messages(tmp_path, kafka_bootstrap, unique):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    topic = f"test.agent.tls.{unique}"
    port = free_port()
    config = make_config(
        tmp_path,
        kafka_bootstrap,
        topic,
        [{"protocol": "tcp", "port": port, "tls_certfile": str(cert), "tls_keyfile": str(key)}],
    )
    agent, stop, thread = run_agent(config)
    reader = TopicReader(kafka_bootstrap, topic)
    try:
        ctx = ssl.create_default_context(cafile=str(cert))
        ctx.check_hostname = False
        msgs = [f"<34>1 2026-11-28T01:00:00Z fw01 sshd 42 - - Failed password {i} {unique}" for i in range(3)]
        with socket.create_connection(("127.0.0.1", port)) as raw, ctx.wrap_socket(raw) as s:
            s.sendall(b"".join(f"{len(m.encode())} {m}".encode() for m in msgs))
        wait_for(
            lambda: sum(len(LineBatch.from_bytes(m.value).lines) for m in reader.poll()) >= 3,
            30,
            what="TLS messages on Kafka",
        )
    finally:
        stop.set()
        thread.join(30)
        reader.close()
    lines = [ln for m in reader.messages for ln in LineBatch.from_bytes(m.value).lines]
    assert [ln.text for ln in lines] == msgs
    assert {LineBatch.from_bytes(m.value).source for m in reader.messages} == {f"syslog-tls:{port}"}


def test_self_metrics_on_localhost_count_lines_and_acks(
    tmp_path, kafka_bootstrap, unique, prometheus_url, scrape_target
):
    import urllib.request

    from tests.integration.conftest import promql

    topic = f"test.agent.metrics.{unique}"
    udp, metrics_port = free_port(), free_port()
    config = make_config(tmp_path, kafka_bootstrap, topic, [{"protocol": "udp", "port": udp}])
    config.metrics.enabled, config.metrics.port = True, metrics_port
    agent, stop, thread = run_agent(config)
    scrape_target(metrics_port, "agent-test", {"test_run": unique})
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(5):
                s.sendto(f"<13>Nov 28 01:02:03 h prog: m{i}".encode(), ("127.0.0.1", udp))

        def scraped():
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2) as r:
                text = r.read().decode()
            return text if f'socpipe_agent_lines_shipped_total{{source="syslog-udp:{udp}"}} 5.0' in text else None

        text = wait_for(scraped, 30, what="5 lines shipped in the agent's metrics")
        assert f'socpipe_agent_lines_read_total{{source="syslog-udp:{udp}"}} 5.0' in text
        assert "socpipe_agent_last_ack_timestamp_seconds" in text
        result = wait_for(
            lambda: promql(prometheus_url, f'socpipe_agent_lines_shipped_total{{test_run="{unique}"}}'),
            30,
            what="Prometheus scraping the agent",
        )
        assert float(result[0]["value"][1]) == 5.0
    finally:
        stop.set()
        thread.join(30)
