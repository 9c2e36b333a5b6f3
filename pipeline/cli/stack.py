"""`socpipe stack up|down|status`: the local servers (Kafka, Elasticsearch, Prometheus)."""

from __future__ import annotations

import sys
from collections.abc import Iterable

import click

from pipeline.stack import Stack, StackError
from pipeline.stack.manager import ServerStatus


def _print_status(statuses: Iterable[ServerStatus]) -> None:
    click.echo(f"{'SERVER':<14} {'ENDPOINT':<24} {'PID':>7}  HEALTH")
    for s in statuses:
        health = "healthy" if s.healthy else "DOWN"
        click.echo(f"{s.name:<14} {s.endpoint:<24} {s.pid or '-':>7}  {health}: {s.detail}")


def _stack(state_dir: str | None, secure: bool | None = None, brokers: int | None = None) -> Stack:
    try:
        return Stack(state_dir, secure=secure, brokers=brokers)
    except StackError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


@click.group()
def stack() -> None:
    """Run the local stack: Apache Kafka (KRaft), Elasticsearch 8 and Prometheus.

    Servers bind to 127.0.0.1 on 9092 (Kafka; controller 9093), 9200 (Elasticsearch; transport 9300)
    and 9090; move one with SOCPIPE_STACK_KAFKA_PORT, SOCPIPE_STACK_KAFKA_CONTROLLER_PORT,
    SOCPIPE_STACK_ELASTICSEARCH_PORT, SOCPIPE_STACK_ELASTICSEARCH_TRANSPORT_PORT or
    SOCPIPE_STACK_PROMETHEUS_PORT. A running stack remembers its ports: `status` and `down` find it
    from any shell."""


@stack.command()
@click.option(
    "--state-dir", default=None, help="Where pids, logs and data live (default .socpipe/stack, or $SOCPIPE_STACK_DIR)."
)
@click.option(
    "--secure",
    is_flag=True,
    help="Kafka also listens with SASL_SSL (SCRAM-SHA-512, certificates from a local CA) on "
    "SOCPIPE_STACK_KAFKA_SECURE_PORT (default 9094) and authorizes every request with ACLs; agents "
    "enrolled against it get their own principal.",
)
@click.option(
    "--brokers",
    type=click.Choice(["1", "3", "5"]),
    default=None,
    help="Kafka nodes, each a broker and a KRaft controller (default 1). With 3: topics and Kafka's own "
    "topics get replication factor 3 and min.insync.replicas=2, so one broker may die without losing "
    "an acknowledged line. Node i listens on each Kafka port + 3*i (9092, 9095, 9098; controllers "
    "9093, 9096, 9099); the env file's SOCPIPE_KAFKA_BOOTSTRAP lists them all.",
)
def up(state_dir: str | None, secure: bool, brokers: str | None) -> None:
    """Start every server not yet running and wait until each answers (idempotent)."""
    # without a flag, a running stack keeps its options
    s = _stack(state_dir, secure or None, int(brokers) if brokers else None)
    try:
        statuses = s.up()
    except StackError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    _print_status(statuses)
    click.echo(f"\nendpoints written to {s.env_file} (source it: `. {s.env_file}`)")


@stack.command()
@click.option("--state-dir", default=None)
def status(state_dir: str | None) -> None:
    """Each server, its endpoint, pid and health (exit 1 if any is not healthy)."""
    statuses = _stack(state_dir).status()
    _print_status(statuses)
    sys.exit(0 if all(s.healthy for s in statuses) else 1)


@stack.command()
@click.option("--state-dir", default=None)
def down(state_dir: str | None) -> None:
    """Stop the servers this stack started (by pid); data stays for the next `up`."""
    stopped = _stack(state_dir).down()
    click.echo("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


COMMANDS: list[click.Command] = [stack]
