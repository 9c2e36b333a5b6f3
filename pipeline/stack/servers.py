"""How each local server is prepared, launched and probed. No process management here (see manager)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.stack import kafka_secure

KAFKA_VERSION = "4.4.0"
POM = Path(__file__).with_name("kafka-pom.xml")
REPO_ROOT = Path(__file__).resolve().parents[2]


class PrerequisiteError(RuntimeError):
    """A program the stack needs is missing; the message says how to install it."""


@dataclass(frozen=True)
class Launch:
    """How to start a server: its command, extra environment, the user it runs as (root only), cwd."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    cwd: Path | None = None


@dataclass(frozen=True)
class StackOptions:
    """Variants of the stack chosen at `up` (recorded in the state directory for later commands)."""

    secure: bool = False


@dataclass(frozen=True)
class Ports:
    """The local stack's address plan, in one place: its servers and socpipe's own services.

    The stack starts the first six (kafka_secure only with --secure); the others are where the demo (and an operator using the local
    stack) runs socpipe's services, and where the local Prometheus scrapes their metrics.
    """

    kafka: int = 9092
    kafka_controller: int = 9093
    kafka_secure: int = 9094  # the SASL_SSL listener of `stack up --secure`
    elasticsearch: int = 9200
    elasticsearch_transport: int = 9300
    prometheus: int = 9090
    detector_metrics: int = 9464
    coverage_metrics: int = 9465
    agent_metrics: int = 9466
    enrolment: int = 8765
    triage: int = 8088

    def scrape_targets(self) -> dict[str, list[str]]:
        """Prometheus job -> targets of socpipe's metrics endpoints."""
        return {
            "socpipe-detector": [f"127.0.0.1:{self.detector_metrics}"],
            "socpipe-coverage": [f"127.0.0.1:{self.coverage_metrics}"],
            "socpipe-agent": [f"127.0.0.1:{self.agent_metrics}"],
        }

    def service_env(self, role: str) -> dict[str, str]:
        """SOCPIPE_* overrides that put a socpipe service on this plan's ports (its config keys, by role).

        Per process, because the services share key names (`metrics_port` is the detector's and the
        coverage service's): `detector`, `coverage` (also `enrol serve`: same file), `agent`, `triage`.
        """
        kafka = {"SOCPIPE_KAFKA_BOOTSTRAP": f"127.0.0.1:{self.kafka}"}
        es = {"SOCPIPE_ES_URL": f"http://127.0.0.1:{self.elasticsearch}"}
        if role == "detector":
            return {**kafka, **es, "SOCPIPE_METRICS_PORT": str(self.detector_metrics)}
        if role == "coverage":
            return {
                **kafka,
                "SOCPIPE_METRICS_PORT": str(self.coverage_metrics),
                "SOCPIPE_ENROLMENT_LISTEN_PORT": str(self.enrolment),
            }
        if role == "agent":
            return {**kafka, "SOCPIPE_METRICS_PORT": str(self.agent_metrics)}
        if role == "triage":
            return {**es, "SOCPIPE_SERVER_PORT": str(self.triage)}
        raise ValueError(f"unknown role {role!r} (detector, coverage, agent, triage)")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Ports:
        """SOCPIPE_STACK_<NAME>_PORT moves a server off its default port (e.g. when 9092 is taken)."""
        env = os.environ if env is None else env
        values = {}
        for name in cls.__dataclass_fields__:
            var = f"SOCPIPE_STACK_{name.upper()}_PORT"
            if var in env:
                if not env[var].isdigit() or not 0 < int(env[var]) < 65536:
                    raise PrerequisiteError(f"{var}: expected a TCP port, got {env[var]!r}")
                values[name] = int(env[var])
        return cls(**values)


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


def kafka_command(state: Path, ports: Ports, secure: bool = False) -> list[str]:
    """Write the KRaft config, format storage if new, and return the broker's command line.

    `secure` adds the SASL_SSL listener, SCRAM and the ACL authorizer (see `kafka_secure`)."""
    java = require("java", "apt-get install -y openjdk-17-jre-headless")
    libs = kafka_libs()
    kdir = state / "kafka"
    data = kdir / "data"
    kdir.mkdir(parents=True, exist_ok=True)
    props = kdir / "server.properties"
    props.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.bootstrap.servers=127.0.0.1:{ports.kafka_controller}",
                *(
                    kafka_secure.listener_properties(state, ports.kafka, ports.kafka_secure, ports.kafka_controller)
                    if secure
                    else [
                        f"listeners=PLAINTEXT://127.0.0.1:{ports.kafka},CONTROLLER://127.0.0.1:{ports.kafka_controller}",
                        f"advertised.listeners=PLAINTEXT://127.0.0.1:{ports.kafka}",
                        "controller.listener.names=CONTROLLER",
                        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                        "inter.broker.listener.name=PLAINTEXT",
                    ]
                ),
                f"log.dirs={data}",
                "num.partitions=4",
                "offsets.topic.replication.factor=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=true",
                "log.retention.hours=168",
                "",
            ]
        )
    )
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
        cluster_id = (
            subprocess.run(jvm + ["kafka.tools.StorageTool", "random-uuid"], capture_output=True, text=True, check=True)
            .stdout.strip()
            .splitlines()[-1]
        )
        proc = subprocess.run(
            jvm
            + [
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "-t",
                cluster_id,
                "-c",
                str(props),
                "--ignore-formatted",
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"formatting Kafka storage failed: {proc.stdout}{proc.stderr}")
    return jvm + ["kafka.Kafka", str(props)]


def kafka_ready(ports: Ports) -> str | None:
    """A metadata request through kafka-python; returns the broker's description when it answers."""
    from kafka import KafkaAdminClient

    socket.create_connection(("127.0.0.1", ports.kafka), timeout=1).close()  # cheap check before a client
    admin = KafkaAdminClient(
        bootstrap_servers=f"127.0.0.1:{ports.kafka}", request_timeout_ms=3000, client_id="socpipe-stack-probe"
    )
    try:
        cluster = admin.describe_cluster()
        return f"Apache Kafka {KAFKA_VERSION} (KRaft, cluster {cluster.get('cluster_id')})"
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
