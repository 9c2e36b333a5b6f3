"""How each local server is prepared, launched and probed. No process management here (see manager)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.stack import kafka_secure
from pipeline.stack.plan import Ports, PrerequisiteError, StackOptions

KAFKA_VERSION = "4.4.0"
POM = Path(__file__).with_name("kafka-pom.xml")
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Launch:
    """How to start a server: its command, extra environment, the user it runs as (root only), cwd."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    cwd: Path | None = None


def require(program: str, install_hint: str) -> str:
    path = shutil.which(program)
    if not path:
        raise PrerequisiteError(f"`{program}` not found on PATH. Install it: {install_hint}")
    return path


def cache_dir() -> Path:
    return Path(os.environ.get("SOCPIPE_CACHE_DIR", Path.home() / ".cache" / "socpipe"))


def kafka_libs() -> Path:
    """Resolve the broker's jars from Maven Central once, into the user's cache (outside the repo)."""
    libs = cache_dir() / f"kafka-{KAFKA_VERSION}" / "libs"
    marker = libs / ".complete"
    if marker.exists():
        return libs
    mvn = require("mvn", "apt-get install -y maven")
    require("java", "apt-get install -y openjdk-17-jre-headless")
    libs.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={libs}",
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise PrerequisiteError(
            f"resolving Kafka {KAFKA_VERSION} jars with Maven failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    marker.write_text(KAFKA_VERSION)
    return libs


def kafka_name(node: int) -> str:
    """Server name (pid, log and data directory under the state dir) of Kafka node `node` (1-based)."""
    return "kafka" if node == 1 else f"kafka-{node}"


def kafka_listener_lines(state: Path, own: Ports, secure: bool) -> list[str]:
    """One node's listeners on its own ports (`own` = `Ports.kafka_node(i)`)."""
    if secure:
        return kafka_secure.listener_properties(state, own.kafka, own.kafka_secure, own.kafka_controller)
    return [
        f"listeners=PLAINTEXT://127.0.0.1:{own.kafka},CONTROLLER://127.0.0.1:{own.kafka_controller}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{own.kafka}",
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "inter.broker.listener.name=PLAINTEXT",
    ]


def kafka_properties(ports: Ports, node: int, opts: StackOptions, data: Path, listeners: list[str]) -> str:
    """server.properties of Kafka node `node` (1-based) of a stack with `opts.brokers` nodes."""
    if opts.brokers == 1:
        quorum = f"controller.quorum.bootstrap.servers=127.0.0.1:{ports.kafka_controller}"
    else:
        voters = ",".join(f"{i + 1}@127.0.0.1:{ports.kafka_node(i).kafka_controller}" for i in range(opts.brokers))
        quorum = f"controller.quorum.voters={voters}"
    rf, isr = opts.replication, opts.min_insync
    return "\n".join(
        [
            "process.roles=broker,controller",
            f"node.id={node}",
            quorum,
            *listeners,
            f"log.dirs={data}",
            "num.partitions=4",
            f"default.replication.factor={rf}",
            f"min.insync.replicas={isr}",
            f"offsets.topic.replication.factor={rf}",
            f"transaction.state.log.replication.factor={rf}",
            f"transaction.state.log.min.isr={isr}",
            f"share.coordinator.state.topic.replication.factor={rf}",
            f"share.coordinator.state.topic.min.isr={isr}",
            "unclean.leader.election.enable=false",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=true",
            "log.retention.hours=168",
            "",
        ]
    )


def kafka_command(
    state: Path, ports: Ports, secure: bool = False, node: int = 1, options: StackOptions | None = None
) -> list[str]:
    """Write node `node`'s KRaft config, format its storage if new, and return its command line.

    One node: broker and controller in one process, a standalone (dynamic) quorum, every replication
    factor 1. `options.brokers` = 3 (or 5): as many processes, each a broker and a voter of a static
    controller quorum (`controller.quorum.voters`), so losing any one keeps both the quorum (2 of 3)
    and every partition writable: replication factor 3 for internal and default-created topics,
    `min.insync.replicas=2`. Combined roles rather than 3 dedicated controllers + 3 brokers: half the
    JVMs on a SOC host or a 2-core CI box; production sizes are in the README ("Scaling").
    `secure` adds the SASL_SSL listener, SCRAM and the ACL authorizer (see `kafka_secure`)."""
    opts = options or StackOptions(secure=secure)
    java = require("java", "apt-get install -y openjdk-17-jre-headless")
    libs = kafka_libs()
    kdir = state / kafka_name(node)
    data = kdir / "data"
    kdir.mkdir(parents=True, exist_ok=True)
    cluster_id = _kafka_cluster_id(state, opts.brokers)
    props = kdir / "server.properties"
    listeners = kafka_listener_lines(state, ports.kafka_node(node - 1), secure)
    props.write_text(kafka_properties(ports, node, opts, data, listeners))
    (kdir / "mode").write_text("secure" if secure else "plain")
    log4j = kdir / "log4j2.properties"
    log4j.write_text(
        "\n".join(
            [
                "status = warn",
                "appender.out.type = Console",
                "appender.out.name = OUT",
                "appender.out.layout.type = PatternLayout",
                "appender.out.layout.pattern = [%d] %p %m (%c)%n",
                "rootLogger.level = INFO",
                "rootLogger.appenderRef.out.ref = OUT",
                "logger.kafka.name = kafka",
                "logger.kafka.level = WARN",
                "logger.server.name = org.apache.kafka",
                "logger.server.level = WARN",
                "",
            ]
        )
    )
    classpath = f"{libs}/*"
    jvm = [java, "-Xms256m", "-Xmx1g", f"-Dlog4j2.configurationFile={log4j}", "-cp", classpath]
    if not (data / "meta.properties").exists():
        standalone = ["--standalone"] if opts.brokers == 1 else []
        fmt = ["kafka.tools.StorageTool", "format", *standalone, "-t", cluster_id, "-c", str(props)]
        proc = subprocess.run(jvm + fmt + ["--ignore-formatted"], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"formatting Kafka storage failed: {proc.stdout}{proc.stderr}")
    return jvm + ["kafka.Kafka", str(props)]


def _cluster_record(state: Path) -> dict[str, Any] | None:
    try:
        record: dict[str, Any] = json.loads((state / "kafka-cluster.json").read_text())
        return record
    except (OSError, ValueError):
        if any(state.glob("kafka*/data/meta.properties")):
            return {"brokers": 1, "cluster_id": ""}  # formatted before this record existed: one node
        return None


def formatted_brokers(state: Path) -> int | None:
    """The node count the Kafka data under `state` was formatted for (None: no data yet)."""
    rec = _cluster_record(state)
    return int(rec["brokers"]) if rec and any(state.glob("kafka*/data/meta.properties")) else None


def _kafka_cluster_id(state: Path, brokers: int) -> str:
    """The cluster id every node is formatted with, made once per state directory with its node count.

    Data formatted for another node count cannot join (a standalone quorum is not a 3-voter one)."""
    rec = _cluster_record(state)
    formatted = formatted_brokers(state)
    if formatted is not None and formatted != brokers:
        raise PrerequisiteError(
            f"the Kafka data under {state} belongs to a {formatted}-broker cluster; start it with "
            f"`--brokers {formatted}`, or stop the stack and remove {state}/kafka* for a new cluster"
        )
    if rec is None or rec.get("brokers") != brokers or not rec.get("cluster_id"):
        rec = {"cluster_id": _random_kafka_uuid(), "brokers": brokers}
        (state / "kafka-cluster.json").write_text(json.dumps(rec))
    return str(rec["cluster_id"])


def _random_kafka_uuid() -> str:
    """Kafka's Uuid text form (16 random bytes, URL-safe base64 without padding), never starting with
    '-' (it would read as an option on the StorageTool's command line; Kafka's own random-uuid skips those)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


def kafka_ready(ports: Ports, brokers: int = 1) -> str | None:
    """A metadata request through kafka-python; returns the broker's description when it answers
    (with `brokers` > 1: how many of the cluster's brokers are registered and alive)."""
    from kafka import KafkaAdminClient

    socket.create_connection(("127.0.0.1", ports.kafka), timeout=1).close()  # cheap check before a client
    admin = KafkaAdminClient(
        bootstrap_servers=f"127.0.0.1:{ports.kafka}", request_timeout_ms=3000, client_id="socpipe-stack-probe"
    )
    try:
        cluster = admin.describe_cluster()
        # fenced = registered but not heartbeating (killed, or still catching up): not counted
        unfenced = [b for b in cluster.get("brokers", []) if not b.get("is_fenced")]
        alive = f", {len(unfenced)}/{brokers} brokers" if brokers > 1 else ""
        return f"Apache Kafka {KAFKA_VERSION} (KRaft, cluster {cluster.get('cluster_id')}{alive})"
    finally:
        admin.close()


# socpipe's own metrics endpoints (Ports.scrape_targets), scraped by the local Prometheus. Components
# started elsewhere (tests, extra workers) add file_sd target files under <state>/prometheus/targets/.


def prometheus_command(
    state: Path, ports: Ports, rules_dir: Path = REPO_ROOT / "dashboards" / "prometheus"
) -> list[str]:
    binary = require("prometheus", "apt-get install -y prometheus")
    pdir = state / "prometheus"
    targets = pdir / "targets"
    targets.mkdir(parents=True, exist_ok=True)
    for job, addrs in ports.scrape_targets().items():
        (targets / f"{job}.json").write_text(json.dumps([{"targets": addrs, "labels": {"job": job}}]))
    rule_files = f"  - {rules_dir}/*.rules.yml\n" if rules_dir.is_dir() else ""
    (pdir / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 5s\n  evaluation_interval: 5s\n"
        + (f"rule_files:\n{rule_files}" if rule_files else "")
        + "scrape_configs:\n  - job_name: socpipe\n    file_sd_configs:\n"
        f"      - files: ['{targets}/*.json']\n        refresh_interval: 5s\n"
    )
    return [
        binary,
        f"--config.file={pdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={pdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{ports.prometheus}",
        "--storage.tsdb.retention.time=15d",
    ]


def prometheus_ready(ports: Ports) -> str | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{ports.prometheus}/-/ready", timeout=2) as resp:
        if resp.status != 200:
            return None
    with urllib.request.urlopen(f"http://127.0.0.1:{ports.prometheus}/api/v1/status/buildinfo", timeout=2) as resp:
        version = json.load(resp)["data"]["version"]
    return f"Prometheus {version}"
