"""Simulated agents speaking the real wire contract (signed heartbeats, raw batches) to real Kafka.

For `make demo` (most of a province's agencies simulated) and for tests that need agent processes
to `kill -9`. Each simulated agent must be enrolled (it needs its SOC-issued id and secret).

    python -m pipeline.devtools.simulate --bootstrap HOST:PORT --registry REG.db \
        --agency so-tttt [--agency ...] [--all-enrolled] [--interval 15] [--silent auth.log] ...
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from collectors.wire import (
    HEARTBEAT_TOPIC,
    RAW_TOPIC,
    Heartbeat,
    LineBatch,
    LogLine,
    MessageCounter,
    SourceStatus,
    sign_heartbeat,
    signed_record,
)

if TYPE_CHECKING:
    from kafka import KafkaProducer

    from pipeline.coverage.inventory import Inventory
    from pipeline.enrolment.registry import Registry

VERSION = "0.1.0-sim"


@dataclass
class SimulatedAgent:
    agency_id: str
    agent_id: str
    secret: str
    host: str
    sources: list[str] = field(default_factory=lambda: ["/var/log/auth.log"])
    silent: set[str] = field(default_factory=set)  # sources that never produce lines
    started_at: float = field(default_factory=time.time)
    shipped: dict[str, int] = field(default_factory=dict)
    spool_bytes: int = 0
    counter: MessageCounter = field(default_factory=MessageCounter)

    def heartbeat(self, now: float | None = None) -> Heartbeat:
        now = time.time() if now is None else now
        hb = Heartbeat(
            agency_id=self.agency_id,
            agent_id=self.agent_id,
            host=self.host,
            version=VERSION,
            sent_at=now,
            started_at=self.started_at,
            sources={
                s: SourceStatus(
                    last_read_at=now, lines_read=self.shipped.get(s, 0), lines_shipped=self.shipped.get(s, 0)
                )
                for s in self.sources
            },
            spool_bytes=self.spool_bytes,
            config_hash="sim",
            counter=self.counter.next(),
        )
        hb.signature = sign_heartbeat(hb, self.secret)
        return hb

    def batch(self, source: str, n: int, now: float | None = None) -> LineBatch:
        now = time.time() if now is None else now
        start = self.shipped.get(source, 0)
        lines = [
            LogLine(
                text=f"<86>Nov 28 01:02:03 {self.host} sshd[1{i % 1000}]: Accepted publickey for admin from "
                f"10.0.0.{i % 250 + 1} port 5{i % 9999:04d} ssh2",
                line_no=start + i + 1,
                seq=start + i + 1,
                read_at=now,
            )
            for i in range(n)
        ]
        self.shipped[source] = start + n
        return LineBatch(self.agency_id, self.agent_id, self.host, source, lines, dataset="system.auth")


def send_batch(producer: KafkaProducer, topic: str, batch: LineBatch, secret: str, counter: int) -> None:
    """Send a batch as an agent does: keyed by its stream, signed with the agent's secret."""
    key, headers, value = signed_record(batch, secret, counter)
    producer.send(topic, key=key, value=value, headers=headers)


def run_agents(
    producer: KafkaProducer,
    agents: list[SimulatedAgent],
    interval_s: float,
    stop: threading.Event,
    heartbeat_topic: str = HEARTBEAT_TOPIC,
    raw_topic: str = RAW_TOPIC,
    lines_per_tick: int = 5,
) -> None:
    """Every interval: a batch per non-silent source, then a heartbeat, for every agent."""
    while not stop.is_set():
        now = time.time()
        for a in agents:
            for s in a.sources:
                if s not in a.silent:
                    send_batch(producer, raw_topic, a.batch(s, lines_per_tick, now), a.secret, a.counter.next())
            producer.send(heartbeat_topic, key=a.agent_id.encode(), value=a.heartbeat(now).to_bytes())
        producer.flush()
        stop.wait(interval_s)


def concrete_path(pattern: str) -> str:
    """A path an agent would report for an inventory pattern: '*auth.log' -> '/var/log/auth.log'."""
    if pattern.startswith("*"):
        pattern = "/var/log/" + pattern.lstrip("*")
    return pattern.replace("*", "x").replace("?", "x")


def agents_for_inventory(inventory: Inventory, registry: Registry, count: int) -> list[SimulatedAgent]:
    """One simulated agent per (agency, host) for the first `count` agencies, enrolled directly if new."""
    existing = {(a.agency_id, a.host): a for a in registry.agents() if not a.revoked}
    out: list[SimulatedAgent] = []
    for agency in [a for a in inventory.agencies if not a.decommissioned][:count]:
        by_host: dict[str, list[str]] = {}
        for src in agency.sources or ():
            by_host.setdefault(src.host or f"srv-{agency.id}", []).append(concrete_path(src.path))
        if not by_host:
            by_host[f"srv-{agency.id}"] = ["/var/log/syslog"]
        for host, paths in by_host.items():
            rec = existing.get((agency.id, host))
            if rec is None:
                agent_id, secret = registry.enroll_direct(agency.id, host, VERSION)
            else:
                agent_id, secret = rec.agent_id, rec.secret
            out.append(SimulatedAgent(agency.id, agent_id, secret, host, sources=paths))
    return out


def main(argv: list[str] | None = None) -> None:
    from pipeline import kafka_io
    from pipeline.config import KafkaConfig
    from pipeline.enrolment.registry import Registry

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--registry", required=True)
    p.add_argument("--agent", action="append", default=[], help="agent id to simulate (repeatable)")
    p.add_argument("--all-enrolled", action="store_true", help="simulate every active enrolled agent")
    p.add_argument("--source", action="append", default=[], help="source path (default /var/log/auth.log)")
    p.add_argument("--silent", action="append", default=[], help="AGENT_ID=SOURCE that never delivers")
    p.add_argument("--interval", type=float, default=15.0)
    p.add_argument("--heartbeat-topic", default=HEARTBEAT_TOPIC)
    p.add_argument("--raw-topic", default=RAW_TOPIC)
    args = p.parse_args(argv)
    reg = Registry(args.registry)
    records = [a for a in reg.agents() if not a.revoked and (args.all_enrolled or a.agent_id in args.agent)]
    silent: dict[str, set[str]] = {}
    for item in args.silent:
        agent_id, _, source = item.partition("=")
        silent.setdefault(agent_id, set()).add(source)
    agents = [
        SimulatedAgent(
            r.agency_id,
            r.agent_id,
            r.secret,
            r.host,
            sources=args.source or ["/var/log/auth.log"],
            silent=silent.get(r.agent_id, set()),
        )
        for r in records
    ]
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    producer = kafka_io.producer(KafkaConfig(bootstrap=args.bootstrap), linger_ms=5)
    print(f"simulating {len(agents)} agents every {args.interval}s", flush=True)
    try:
        run_agents(producer, agents, args.interval, stop, args.heartbeat_topic, args.raw_topic)
    finally:
        producer.close(timeout=5)


if __name__ == "__main__":
    main()
