"""What the local stack is: its variants (`StackOptions`) and its address plan (`Ports`: the servers'
ports and those of socpipe's own services, each movable with SOCPIPE_STACK_<NAME>_PORT)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace


class PrerequisiteError(RuntimeError):
    """A program the stack needs is missing; the message says how to install it."""


class StackError(RuntimeError):
    """A stack command cannot go on; the message says why (and what to do)."""


@dataclass(frozen=True)
class StackOptions:
    """Variants of the stack chosen at `up` (recorded in the state directory for later commands)."""

    secure: bool = False
    brokers: int = 1  # Kafka nodes (1, 3 or 5), each a broker and a KRaft controller (see kafka_command)

    def __post_init__(self) -> None:
        if self.brokers not in BROKER_COUNTS:
            raise PrerequisiteError(
                f"brokers: expected one of {BROKER_COUNTS} (an odd controller quorum), got {self.brokers}"
            )

    @property
    def replication(self) -> int:
        """Replication factor of every topic of the stack (internal ones too): 3 once there are 3 brokers."""
        return min(self.brokers, 3)

    @property
    def min_insync(self) -> int:
        """Replicas that must hold a write before acks=all returns: 2 of 3, so one broker may die."""
        return 2 if self.replication == 3 else 1


BROKER_COUNTS = (1, 3, 5)
# Kafka node i (0-based) of a multi-broker stack listens on each of the plan's three Kafka ports + 3*i:
# the defaults give node 1 9092/9093/9094 (plain, controller, SASL_SSL), node 2 9095/9096/9097, node 3
# 9098/9099/9100. A moved plan moves them all (SOCPIPE_STACK_KAFKA_PORT=26092 -> 26092, 26095, 26098).
BROKER_PORT_STEP = 3


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

    def kafka_node(self, i: int) -> Ports:
        """The plan as Kafka node i (0-based) sees it: its own plain, controller and SASL_SSL ports."""
        step = BROKER_PORT_STEP * i
        return replace(
            self,
            kafka=self.kafka + step,
            kafka_controller=self.kafka_controller + step,
            kafka_secure=self.kafka_secure + step,
        )

    def kafka_bootstrap(self, brokers: int = 1, secure: bool = False) -> str:
        """Every node's plain (or SASL_SSL) listener, comma-separated."""
        nodes = (self.kafka_node(i) for i in range(brokers))
        return ",".join(f"127.0.0.1:{n.kafka_secure if secure else n.kafka}" for n in nodes)

    def check(self, options: StackOptions) -> None:
        """Every port the stack and its services will use is a TCP port and used once."""
        kafka_names = ("kafka", "kafka_controller") + (("kafka_secure",) if options.secure else ())
        used: dict[int, str] = {}
        for name in self.__dataclass_fields__:
            if name.startswith("kafka") and name not in kafka_names:
                continue
            nodes = range(options.brokers) if name in kafka_names else range(1)
            for i in nodes:
                port = getattr(self.kafka_node(i), name)
                what = f"{name}" + (f" of Kafka node {i + 1}" if i else "")
                if not 0 < port < 65536:
                    raise PrerequisiteError(f"{what}: port {port} is out of range (SOCPIPE_STACK_{name.upper()}_PORT)")
                if port in used:
                    raise PrerequisiteError(
                        f"port {port} is planned twice ({used[port]} and {what}); move one with "
                        f"SOCPIPE_STACK_{name.upper()}_PORT (Kafka node i uses each Kafka port + {BROKER_PORT_STEP}*i)"
                    )
                used[port] = what

    def scrape_targets(self) -> dict[str, list[str]]:
        """Prometheus job -> targets of socpipe's metrics endpoints."""
        return {
            "socpipe-detector": [f"127.0.0.1:{self.detector_metrics}"],
            "socpipe-coverage": [f"127.0.0.1:{self.coverage_metrics}"],
            "socpipe-agent": [f"127.0.0.1:{self.agent_metrics}"],
        }

    def service_env(self, role: str, brokers: int = 1) -> dict[str, str]:
        """SOCPIPE_* overrides that put a socpipe service on this plan's ports (its config keys, by role).

        Per process, because the services share key names (`metrics_port` is the detector's and the
        coverage service's): `detector`, `coverage` (also `enrol serve`: same file), `agent`, `triage`.
        Kafka clients get every node of a `brokers`-node cluster, so they bootstrap with any one down.
        """
        kafka = {"SOCPIPE_KAFKA_BOOTSTRAP": self.kafka_bootstrap(brokers)}
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
        if role == "setup":  # `socpipe es setup`
            return es
        raise ValueError(f"unknown role {role!r} (detector, coverage, agent, triage, setup)")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Ports:
        """SOCPIPE_STACK_<NAME>_PORT moves a server off its default port (e.g. when 9092 is taken)."""
        if env is None:
            env = os.environ
        values = {}
        for name in cls.__dataclass_fields__:
            var = f"SOCPIPE_STACK_{name.upper()}_PORT"
            if var in env:
                if not env[var].isdigit() or not 0 < int(env[var]) < 65536:
                    raise PrerequisiteError(f"{var}: expected a TCP port, got {env[var]!r}")
                values[name] = int(env[var])
        return cls(**values)
