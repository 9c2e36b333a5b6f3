"""The distributed engine, proven: `socpipe stack up --brokers 3`, real agents, two detector workers.

A private three-node KRaft cluster (the stack's own code, in a temporary state directory, on free
ports picked at the start: two runs, or another stack, cannot collide) with replication factor 3 and
min.insync.replicas=2; three enrolled agents (the real `socpipe agent run`, one agency each, two log
files each) ship SSH traffic with brute-force attacks of exactly five failures (the rule's threshold:
one lost line is one missing alert) into it; two `socpipe detect run` workers share the group and
write alerts to the stack's Elasticsearch.
While the agents ship: the broker leading raw partition 0 is killed with SIGKILL, a third worker
joins and one of the first two leaves. Then every line is on Kafka once per (source, seq) and in
order, every attacker has exactly one alert, and the leader failover and rebalance times are printed.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import ConfigResource, ConfigResourceType

from collectors.identity import Identity, save_identity
from collectors.wire import LineBatch
from pipeline.stack import Stack
from pipeline.stack.plan import BROKER_PORT_STEP, Ports
from pipeline.stack.servers import kafka_name
from tests.integration.conftest import es_client, free_ports, wait_for
from tests.integration.signing import TEST_AGENTS
from tests.integration.test_agent_kafka import start_agent, stop_agent
from tests.integration.test_detector_e2e import BRUTE_FORCE_RULE, brute_force_alerts, detector_env

pytestmark = pytest.mark.integration

BROKERS = 3
AGENCIES = ("commune-an-phu", "district-tan-chau", "city-long-xuyen")
FILES_PER_AGENT = 2
TZ = ZoneInfo("Asia/Ho_Chi_Minh")  # config/detector.yaml's timezone for syslog lines without one


class Traffic(threading.Thread):
    """Appends SSH log lines to every agent's files until stopped: quiet logins, and every `attack_every_s`
    one new address failing exactly five times (in one file, one second). Remembers every line per file."""

    def __init__(self, files: list[Path], lines_per_s: float = 300, attack_every_s: float = 0.4):
        super().__init__(daemon=True)
        self.files, self.rate, self.attack_every = files, lines_per_s, attack_every_s
        self.written: dict[Path, list[str]] = {f: [] for f in files}
        self.attackers: list[str] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            tick, n, next_attack = 0.1, 0, time.monotonic()
            handles = {f: open(f, "a") for f in self.files}
            while not self.stop.is_set():
                started = time.monotonic()
                stamp = datetime.now(TZ).strftime("%b %e %H:%M:%S")
                for _ in range(max(1, int(self.rate * tick))):
                    f = self.files[n % len(self.files)]
                    n += 1
                    self._write(
                        handles[f],
                        f,
                        f"{stamp} web01 sshd[{2000 + n % 5000}]: Accepted publickey for deploy from "
                        f"10.20.{n % 250}.{n % 200 + 1} port {30000 + n % 30000} ssh2: ED25519 SHA256:k{n}",
                    )
                if started >= next_attack:
                    next_attack += self.attack_every
                    a = len(self.attackers)
                    ip = f"198.18.{a // 250}.{a % 250 + 1}"
                    self.attackers.append(ip)
                    f = self.files[a % len(self.files)]
                    for t in range(5):
                        self._write(
                            handles[f],
                            f,
                            f"{stamp} web01 sshd[{9000 + a}]: Failed password for root from {ip} port {41000 + t} ssh2",
                        )
                for h in handles.values():
                    h.flush()
                time.sleep(max(0.0, tick - (time.monotonic() - started)))
            for h in handles.values():
                h.close()
        except BaseException as exc:  # surfaced by the test
            self.error = exc

    def _write(self, handle, f: Path, text: str) -> None:
        handle.write(text + "\n")
        self.written[f].append(text)

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.written.values())


class GroupWatch(threading.Thread):
    """Samples the detector groups' state every 0.2 s: (monotonic time, {group: (state, members, partitions)})."""

    def __init__(self, bootstrap: str, groups: list[str]):
        super().__init__(daemon=True)
        self.bootstrap = bootstrap
        self.groups = groups
        self.samples: list[tuple[float, dict[str, tuple[str, int, int]]]] = []
        self.errors: list[str] = []
        self.stop = threading.Event()

    def _admin(self) -> KafkaAdminClient:
        return KafkaAdminClient(bootstrap_servers=self.bootstrap.split(","), request_timeout_ms=3000)

    def run(self) -> None:
        admin = None
        while not self.stop.is_set():
            try:
                admin = admin or self._admin()
                described = admin.describe_groups(self.groups)
                now = time.monotonic()
                self.samples.append((now, {g: _group_view(described.get(g, {})) for g in self.groups}))
            except Exception as exc:  # the coordinator's broker killed: a new client finds the new one
                self.errors.append(repr(exc))
                if admin is not None:
                    try:
                        admin.close()
                    except Exception:
                        pass
                admin = None
            time.sleep(0.2)
        if admin is not None:
            admin.close()

    def settled(self, members: int, partitions: int, since: float) -> float | None:
        """The first time after `since` at which every group was Stable with `members` members holding
        all `partitions` partitions."""
        for t, view in self.samples:
            if t >= since and all(v == ("Stable", members, partitions) for v in view.values()):
                return t
        return None

    def unsettled(self, since: float) -> float | None:
        """The first time after `since` at which a group was not Stable (a rebalance in progress)."""
        for t, view in self.samples:
            if t >= since and any(v[0] != "Stable" for v in view.values()):
                return t
        return None


def _group_view(desc: dict) -> tuple[str, int, int]:
    members = desc.get("members") or []
    partitions = 0
    for m in members:
        for topic_parts in (m.get("member_assignment") or {}).get("assigned_partitions") or []:
            partitions += len(topic_parts["partitions"])
    return str(desc.get("group_state", "")), len(members), partitions


def write_agent(tmp: Path, agency: str, bootstrap: str, topic: str) -> tuple[Path, list[Path]]:
    agent_id = f"agent-1.{agency}"
    secret = TEST_AGENTS.secret(agency, agent_id)  # enrolled in the registry the detectors read
    home = tmp / agency
    logs = home / "logs"
    logs.mkdir(parents=True)
    files = [logs / f"auth{i}.log" for i in range(FILES_PER_AGENT)]
    for f in files:
        f.touch()
    identity = home / "identity.json"
    save_identity(identity, Identity(agency, agent_id, secret))
    cfg = {
        "state_dir": str(home / "state"),
        "identity_file": str(identity),
        "host": f"web01.{agency}",
        "topic": topic,
        "heartbeat_topic": topic + ".hb",
        "heartbeat_interval_s": 5,
        "poll_interval_s": 0.1,
        "kafka": {"bootstrap": bootstrap},
        "files": [{"paths": [str(logs / "auth*.log")], "dataset": "system.auth"}],
    }
    path = home / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, files


def read_topic(bootstrap: str, topic: str, expected_lines: int, timeout_s: float) -> dict[str, dict[int, str]]:
    """Every line on the topic: {source: {seq: text}}; two records of one (source, seq) must agree."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap.split(","), auto_offset_reset="earliest", group_id=None)
    lines: dict[str, dict[int, str]] = {}

    def drained():
        for recs in consumer.poll(timeout_ms=1000, max_records=5000).values():
            for m in recs:
                b = LineBatch.from_bytes(m.value)
                for ln in b.lines:
                    prior = lines.setdefault(b.source, {}).setdefault(ln.seq, ln.text)
                    assert prior == ln.text, f"seq {ln.seq} of {b.source} carried two different lines"
        return sum(len(v) for v in lines.values()) >= expected_lines

    try:
        wait_for(drained, timeout_s, 0, f"{expected_lines} lines on {topic}")
        while consumer.poll(timeout_ms=500):
            pass
    finally:
        consumer.close()
    return lines


def leaders(admin: KafkaAdminClient, topic: str) -> dict[int, tuple[int, list[int], list[int]]]:
    [desc] = admin.describe_topics([topic])
    return {p["partition_index"]: (p["leader_id"], p["replica_nodes"], p["isr_nodes"]) for p in desc["partitions"]}


@pytest.mark.timeout(300)
def test_three_brokers_leader_killed_and_workers_rescaled_lose_and_double_nothing(
    tmp_path, es_url, unique, procs, capsys
):
    # Node i on base + 3*i (plain), + 1 (controller), + 2 (SASL_SSL, unused here); then the stack's
    # Elasticsearch and Prometheus ports (not started here, but kept off the defaults): one free block.
    base = free_ports(BROKER_PORT_STEP * BROKERS + 2)
    es_port = base + BROKER_PORT_STEP * BROKERS
    ports = Ports(
        kafka=base, kafka_controller=base + 1, kafka_secure=base + 2, elasticsearch=es_port, prometheus=es_port + 1
    )
    stack = Stack(tmp_path / "stack", ports, brokers=BROKERS)
    kafka_nodes = [kafka_name(n) for n in range(1, BROKERS + 1)]
    t0 = time.monotonic()
    stack.up(only=kafka_nodes)
    started_s = time.monotonic() - t0
    bootstrap = stack.env()["SOCPIPE_KAFKA_BOOTSTRAP"]
    agents: list = []
    watch: GroupWatch | None = None
    traffic: Traffic | None = None
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), request_timeout_ms=5000)
    try:
        # config/detector.yaml's batch sizes (the e2e tests' tiny ones would make stage 2 the bottleneck)
        env = {**detector_env(bootstrap, es_url, unique), "SOCPIPE_PROGRESS_LOG_S": "5"}
        del env["SOCPIPE_MAX_BATCH_RECORDS"]
        raw, group = env["SOCPIPE_RAW_TOPIC"], env["SOCPIPE_GROUP_ID"]
        files: list[Path] = []
        agent_configs = []
        for agency in AGENCIES:  # enrolled before the workers start (they read the registry)
            config, agency_files = write_agent(tmp_path, agency, bootstrap, raw)
            files += agency_files
            agent_configs.append((agency, config))
        prefix = env["SOCPIPE_ES_INDEX_PREFIX"]
        detect = ["detect", "run", "--config", "config/detector.yaml"]
        workers = [procs.start(f"worker-{i}", detect, env) for i in (1, 2)]
        watch = GroupWatch(bootstrap, [group, group + ".correlation"])
        watch.start()
        wait_for(
            lambda: all(w.check_alive() for w in workers) and watch.settled(2, 4, t0),
            90,
            what="two workers sharing the raw and correlation partitions",
        )

        # Every topic of the pipeline, and Kafka's offsets topic, on three replicas; two must hold a write.
        for topic in (raw, env["SOCPIPE_CORRELATION_TOPIC"], env["SOCPIPE_STATE_TOPIC"], "__consumer_offsets"):
            assert {len(replicas) for _, replicas, _ in leaders(admin, topic).values()} == {3}, topic
        topic_configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, raw, configs={"min.insync.replicas": None})],
            config_filter="all",
        )
        assert topic_configs["topic"][raw]["min.insync.replicas"]["value"] == "2"

        for agency, config in agent_configs:
            agents.append(start_agent(config, tmp_path / f"agent-{agency}.log"))
        traffic = Traffic(files)
        traffic.start()
        es = es_client(es_url)
        wait_for(lambda: brute_force_alerts(es, prefix), 60, what="the first alerts")

        # 1. SIGKILL the broker leading raw partition 0 while the agents ship.
        victim = leaders(admin, raw)[0][0]
        os.killpg(int((stack.state / f"{kafka_name(victim)}.pid").read_text()), signal.SIGKILL)
        killed_at = time.monotonic()

        def moved():
            try:
                leader, _, isr = leaders(admin, raw)[0]
            except Exception:
                return None
            return leader not in (victim, -1) and victim not in isr and (leader, isr)

        new_leader, isr = wait_for(moved, 60, 0.1, "a new leader of raw partition 0")
        failover_s = time.monotonic() - killed_at
        assert len(isr) == 2

        # 2. A third worker joins ...
        added_at = time.monotonic()
        workers.append(procs.start("worker-3", detect, env))
        wait_for(
            lambda: workers[2].check_alive() and watch.settled(3, 4, added_at),
            90,
            what=f"worker-3 in both groups (watch errors: {watch.errors[-3:]})",
        )
        joined = watch.settled(3, 4, added_at)
        assert joined is not None  # the wait above saw it
        began = watch.unsettled(added_at) or joined
        # 3. ... and one of the first two leaves (SIGTERM: it closes its consumers and leaves the group).
        removed_at = time.monotonic()
        workers[0].stop()
        wait_for(lambda: watch.settled(2, 4, removed_at), 60, what="two workers again")
        left = watch.settled(2, 4, removed_at)
        assert left is not None
        time.sleep(3)  # traffic also flows after the last rebalance
        traffic.stop.set()
        traffic.join(10)
        assert traffic.error is None, traffic.error
        attackers = len(traffic.attackers)

        def all_alerts():
            for w in workers[1:]:
                w.check_alive()
            return len(brute_force_alerts(es, prefix)) >= attackers

        wait_for(all_alerts, 90, 1, f"{attackers} brute-force alerts")
        time.sleep(3)  # anything still in flight would show up as an extra alert now
        alerts = brute_force_alerts(es, prefix)
        lines = read_topic(bootstrap, raw, traffic.total, 60)
        statuses = {s.name: s for s in stack.status()}
    finally:
        if traffic is not None:
            traffic.stop.set()
        for agent in agents:
            stop_agent(agent)
        procs.stop_all()
        if watch is not None:
            watch.stop.set()
        admin.close()
        stack.down()

    # No line lost: each file's lines are on Kafka, in order, under seqs 1..N (duplicates collapse on seq).
    assert len(lines) == len(files)
    for f in files:
        on_kafka = lines[str(f)]
        assert sorted(on_kafka) == list(range(1, len(traffic.written[f]) + 1)), f"{f}: seq gaps"
        assert [on_kafka[s] for s in sorted(on_kafka)] == traffic.written[f], f"{f}: lines differ"
    # No alert lost, none doubled: each attacker failed exactly five times (the threshold) -> one alert.
    per_ip: dict[str, int] = {}
    for a in alerts:
        assert a["rule"]["id"] == BRUTE_FORCE_RULE
        per_ip[a["source"]["ip"]] = per_ip.get(a["source"]["ip"], 0) + 1
    assert set(per_ip) == set(traffic.attackers), f"missing alerts: {sorted(set(traffic.attackers) - set(per_ip))}"
    assert max(per_ip.values()) == 1, {ip: n for ip, n in per_ip.items() if n > 1}
    # `stack status` names the killed node as stopped and the others as healthy members of a 2/3 cluster.
    dead = kafka_name(victim)
    assert not statuses[dead].running
    alive = [statuses[n] for n in kafka_nodes if n != dead]
    assert all(s.healthy and "2/3 brokers" in s.detail for s in alive), alive
    with capsys.disabled():
        print(
            f"\n[3-broker cluster] up in {started_s:.1f}s; {traffic.total} lines from {len(AGENCIES)} agents, "
            f"{attackers} attackers -> {len(alerts)} alerts, 0 lost, 0 doubled; node {victim} (leader of raw/0) "
            f"SIGKILLed -> node {new_leader} leads within {failover_s:.1f}s (ISR {isr}); rebalance on join "
            f"{joined - began:.1f}s (worker start to settled {joined - added_at:.1f}s), on leave "
            f"{left - removed_at:.1f}s"
        )
