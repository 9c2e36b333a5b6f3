"""`socpipe coverage run|status|report`, `socpipe agency token create|revoke|list`, `socpipe enrol serve`."""

from __future__ import annotations

import json
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from collectors.wire import DEFAULT_TIMEZONE
from pipeline import logs
from pipeline.config import ConfigError, load_config
from pipeline.coverage.config import CoverageConfig

if TYPE_CHECKING:  # for annotations only: the commands import these when they run
    from pipeline.enrolment.kafka_access import KafkaAccess
    from pipeline.enrolment.registry import Registry

_CONFIG = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="coverage.yaml (every key has a default; SOCPIPE_* variables override).",
)


def _load(config_path: str | None, validate: bool = False) -> CoverageConfig:
    try:
        cfg = load_config(CoverageConfig, config_path)
        return cfg.validate() if validate else cfg
    except ConfigError as exc:
        click.echo(f"config error: {exc}", err=True)
        sys.exit(2)


@click.group()
def coverage() -> None:
    """How many of the province's agencies are under SOC monitoring (metrics on Prometheus)."""


@coverage.command("run")
@_CONFIG
@click.option("--log-level", default="INFO", show_default=True)
def run(config_path: str | None, log_level: str) -> None:
    """Run the coverage service until SIGTERM/SIGINT."""
    logs.setup(log_level)
    cfg = _load(config_path, validate=True)
    from pipeline.cli.startup import fail, start_guard
    from pipeline.coverage.service import CoverageService

    try:
        service = CoverageService(cfg)
    except (OSError, sqlite3.Error) as exc:  # state_dir or the registry cannot be opened
        fail(f"coverage state: {exc}")
    with start_guard(kafka=cfg.kafka.bootstrap):
        try:
            service.start()
        except OSError as exc:
            fail(f"metrics endpoint {cfg.metrics_host}:{cfg.metrics_port}: {exc}")
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: service.stop())
    service.run()


@coverage.command("status")
@_CONFIG
@click.option("--json", "as_json", is_flag=True, help="The raw status document instead of the table.")
def status(config_path: str | None, as_json: bool) -> None:
    """Every agency with its state, last seen and silent sources, worst first (from the running service)."""
    from pipeline.coverage.status import render_status

    cfg = _load(config_path)
    path = Path(cfg.state_dir) / "status.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        click.echo(f"no status at {path} ({exc}): is `socpipe coverage run` running with this config?", err=True)
        sys.exit(1)
    click.echo(json.dumps(data, ensure_ascii=False, indent=2) if as_json else render_status(data, time.time()))


@coverage.command("report")
@_CONFIG
@click.option("--since", default="7d", show_default=True, help="Window: 24h, 7d, 30d...")
@click.option("--period", type=click.Choice(["day", "week"]), default="day", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--tz", default=DEFAULT_TIMEZONE, show_default=True, help="Time zone that defines days.")
def report(config_path: str | None, since: str, period: str, fmt: str, tz: str) -> None:
    """Coverage over time: ratio per day (or week) and the agencies that dropped out."""
    from detectors.common.durations import parse_duration
    from pipeline.coverage.history import HistoryStore, build_report
    from pipeline.coverage.status import render_report

    cfg = _load(config_path)
    try:
        window = parse_duration(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    db = Path(cfg.state_dir) / "history.db"
    if not db.exists():
        click.echo(f"no history at {db}: run `socpipe coverage run` first", err=True)
        sys.exit(1)
    store = HistoryStore(db)
    until = time.time()
    rows = build_report(store, until - window, until, period=period, tz=tz)
    click.echo(render_report(rows, fmt, until - window, until))


@coverage.command("simulate")
@_CONFIG
@click.option("--inventory", "inventory_path", default=None, help="Inventory to simulate (default: the config's).")
@click.option("--count", type=int, default=None, help="Agencies with a simulated agent (default: all).")
@click.option(
    "--silent", "silent_count", type=int, default=0, help="Of those, how many keep their first source silent."
)
@click.option("--interval", type=float, default=None, help="Heartbeat interval (default: heartbeat_interval_s).")
def simulate(
    config_path: str | None, inventory_path: str | None, count: int | None, silent_count: int, interval: float | None
) -> None:
    """Simulated agents (signed heartbeats and raw batches on the real topics) for demos, until Ctrl-C."""
    from pipeline import kafka_io
    from pipeline.coverage.inventory import load_inventory

    try:
        from pipeline.devtools.simulate import agents_for_inventory, run_agents
    except ModuleNotFoundError as exc:
        from pipeline.cli import dev_only_message

        raise click.ClickException(dev_only_message("coverage simulate")) from exc

    cfg = _load(config_path)
    inv = load_inventory(inventory_path or cfg.inventory)
    agents = agents_for_inventory(inv, _registry(cfg), len(inv.agencies) if count is None else count)
    for a in agents[-silent_count:] if silent_count else []:
        a.silent.add(a.sources[0])
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    producer = kafka_io.producer(cfg.kafka, linger_ms=5)
    click.echo(f"simulating {len(agents)} agents for {len({a.agency_id for a in agents})} agencies", err=True)
    try:
        run_agents(producer, agents, interval or cfg.heartbeat_interval_s, stop, cfg.heartbeat_topic, cfg.raw_topic)
    finally:
        producer.close(timeout=5)


@click.group()
def agency() -> None:
    """Agencies' enrolment tokens (the SOC side of `socpipe agent enroll`)."""


@agency.group("token")
def token() -> None:
    """Create, list and revoke an agency's enrolment tokens."""


def _registry(cfg: CoverageConfig) -> Registry:
    from pipeline.enrolment.registry import Registry

    return Registry(cfg.registry)


def _kafka_access(cfg: CoverageConfig) -> KafkaAccess | None:
    """Who creates and removes agents' Kafka principals: the SOC's own `kafka` credentials (None when
    the handout is not SASL: then agents need no credentials of their own)."""
    from pipeline.enrolment.kafka_access import KafkaAccess

    if not cfg.enrolment.kafka.per_agent_credentials:
        return None
    return KafkaAccess(cfg.kafka, [cfg.raw_topic, cfg.heartbeat_topic])


@token.command("create")
@click.argument("agency_id")
@click.option("--uses", type=int, default=1, show_default=True, help="How many agents may enrol with this token.")
@click.option(
    "--expires-in", "expires_in", default="24h", show_default=True, help="Lifetime of the token: 90m, 24h, 7d ..."
)
@_CONFIG
def token_create(agency_id: str, uses: int, expires_in: str, config_path: str | None) -> None:
    """Issue a token for AGENCY_ID, an agency of the inventory (printed once; only its hash is kept)."""
    from detectors.common.durations import parse_duration
    from pipeline.coverage.inventory import load_inventory

    cfg = _load(config_path)
    try:
        agency_entry = load_inventory(cfg.inventory).by_id().get(agency_id)
    except ValueError as exc:
        click.echo(
            f"error: inventory {cfg.inventory} cannot be read, so {agency_id} cannot be checked: {exc}", err=True
        )
        sys.exit(2)
    if agency_entry is None or agency_entry.decommissioned:
        state = "decommissioned in" if agency_entry else "not in"
        click.echo(f"error: {agency_id} is {state} the inventory {cfg.inventory}: no token issued", err=True)
        sys.exit(2)
    try:
        ttl_s = parse_duration(expires_in)
        token_id, value = _registry(cfg).create_token(agency_id, uses=uses, ttl_s=ttl_s)
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    expires = time.strftime("%Y-%m-%d %H:%M", time.gmtime(time.time() + ttl_s))
    click.echo(
        f"token id: {token_id}\nagency:   {agency_id}\nuses:     {uses}\nexpires:  {expires}Z\ntoken:    {value}\n"
        f"enrol with: socpipe-agent enroll --server https://<soc-host>:{cfg.enrolment.listen_port} --token {value}"
    )


@token.command("revoke")
@click.argument("agency_id")
@click.option("--token-id", default=None, help="Revoke only this token (default: every active token of the agency).")
@_CONFIG
def token_revoke(agency_id: str, token_id: str | None, config_path: str | None) -> None:
    """Revoke AGENCY_ID's tokens: no new agent can enrol with them (enrolled agents keep working)."""
    n = _registry(_load(config_path)).revoke_tokens(agency_id, token_id)
    click.echo(f"revoked {n} token(s) of {agency_id}")
    if n == 0:
        sys.exit(1)


@token.command("list")
@click.argument("agency_id", required=False)
@_CONFIG
def token_list(agency_id: str | None, config_path: str | None) -> None:
    """Tokens (ids and state only; token values are not stored)."""
    now = time.time()
    for t in _registry(_load(config_path)).tokens(agency_id):
        created = time.strftime("%Y-%m-%d %H:%M", time.gmtime(t.created_at))
        expires = time.strftime("%Y-%m-%d %H:%M", time.gmtime(t.expires_at))
        click.echo(
            f"{t.token_id}  {t.agency_id:<24} created {created}Z  expires {expires}Z  "
            f"uses left {t.uses_left}/{t.max_uses}  {t.state(now)}"
        )


@agency.command("agents")
@click.argument("agency_id", required=False)
@_CONFIG
def agents_list(agency_id: str | None, config_path: str | None) -> None:
    """Enrolled agents (secrets are not shown)."""
    for a in _registry(_load(config_path)).agents():
        if agency_id is None or a.agency_id == agency_id:
            click.echo(
                f"{a.agent_id}  {a.agency_id:<24} {a.host:<24} {a.agent_version or '-':<10} "
                f"{'revoked' if a.revoked else 'active'}"
            )


@agency.command("revoke-agent")
@click.argument("agent_id")
@_CONFIG
def revoke_agent(agent_id: str, config_path: str | None) -> None:
    """Revoke one agent: its heartbeats and batches are rejected from now on (coverage counts it down)
    and, with per-agent Kafka credentials, its SCRAM user and ACLs are deleted at the broker. Running
    it again for a revoked agent retries the broker part."""
    from pipeline.enrolment.kafka_access import KafkaAccessError

    cfg = _load(config_path)
    registry = _registry(cfg)
    rec = registry.agent(agent_id)
    if rec is None:
        click.echo(f"no agent {agent_id}", err=True)
        sys.exit(1)
    registry.revoke_agent(agent_id)
    click.echo(f"revoked {agent_id} in the registry")
    access = _kafka_access(cfg)
    if access is not None:
        try:
            removed = access.revoke(agent_id)
        except KafkaAccessError as exc:
            click.echo(f"error: Kafka access of {agent_id} NOT removed ({exc}); run this command again", err=True)
            sys.exit(1)
        click.echo(f"removed its Kafka credential and {removed['acls']} ACL(s)")


@click.group()
def enrol() -> None:
    """The SOC's enrolment endpoint for agents (`POST /v1/enroll`)."""


@enrol.command("serve")
@_CONFIG
@click.option("--log-level", default="INFO", show_default=True)
def enrol_serve(config_path: str | None, log_level: str) -> None:
    """Serve enrolment on enrolment.listen_host:listen_port (HTTPS when tls_certfile/tls_keyfile are set)."""
    from pipeline.enrolment.server import serve_in_thread

    logs.setup(log_level)
    cfg = _load(config_path)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        server, _ = serve_in_thread(
            _registry(cfg), cfg.enrolment, _inventory_agencies(cfg.inventory), access=_kafka_access(cfg)
        )
    except ConfigError as exc:
        click.echo(f"config error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:
        raise click.ClickException(f"enrolment: cannot start: {exc}") from None
    click.echo(f"enrolment listening on {cfg.enrolment.listen_host}:{server.server_address[1]}", err=True)
    while not stop.wait(0.5):
        pass
    server.shutdown()


def _inventory_agencies(path: str) -> Callable[[str], bool]:
    """Whether an agency may enrol agents: in the inventory (re-read when it changes), not decommissioned."""
    from pipeline.coverage.inventory import InventoryFile

    inventory = InventoryFile(path)

    def allowed(agency_id: str) -> bool:
        inventory.refresh(time.time())
        entry = inventory.current.by_id().get(agency_id)
        return entry is not None and not entry.decommissioned

    return allowed


COMMANDS: list[click.Command] = [coverage, agency, enrol]
