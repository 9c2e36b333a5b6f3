"""`socpipe agent run|enroll|install-service|status`: the collector agent on an agency server."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from pipeline.config import ConfigError


@click.group()
def agent() -> None:
    """The collector agent: tail logs, listen for syslog, ship to the SOC's Kafka."""


@agent.command()
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Agent YAML config (see config/agent.yaml).",
)
@click.option("--log-level", default="INFO", show_default=True)
def run(config_path: str, log_level: str) -> None:
    """Run the agent until SIGTERM/SIGINT."""
    from collectors.config import load_agent_config
    from collectors.identity import load_identity

    try:  # fail here, with a clear message, before replacing the process
        load_identity(load_agent_config(config_path).identity_path)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    # Same pid, lean process: the agent does not carry the modules the other CLI areas import.
    os.execv(
        sys.executable, [sys.executable, "-m", "collectors", "run", "--config", config_path, "--log-level", log_level]
    )


@agent.command()
@click.option("--server", required=True, help="The SOC's enrolment URL, e.g. https://soc.example:8443")
@click.option("--token", required=True, envvar="SOCPIPE_ENROL_TOKEN", help="Per-agency enrolment token.")
@click.option("--state-dir", default="/var/lib/socpipe-agent", show_default=True)
@click.option("--host", default=None, help="Host name to register (default: this machine's).")
def enroll(server: str, token: str, state_dir: str, host: str | None) -> None:
    """Trade an enrolment token for this agent's identity (written to STATE_DIR/identity.json, 0600)."""
    from collectors.identity import EnrolmentError
    from collectors.identity import enroll as do_enroll

    try:
        identity = do_enroll(server, token, state_dir, host=host)
    except EnrolmentError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(
        f"enrolled: agency_id={identity.agency_id} agent_id={identity.agent_id} "
        f"identity written to {Path(state_dir) / 'identity.json'} (mode 0600)"
    )


@agent.command("install-service")
@click.option("--config", "config_path", default="/etc/socpipe/agent.yaml", show_default=True)
@click.option("--state-dir", default="/var/lib/socpipe-agent", show_default=True)
@click.option("--user", default="socpipe-agent", show_default=True)
@click.option("--log-group", default="adm", show_default=True, help="Group that may read the logs.")
@click.option("--dry-run", is_flag=True, help="Print the unit and the steps; change nothing.")
def install_service(config_path: str, state_dir: str, user: str, log_group: str, dry_run: bool) -> None:
    """Install a hardened systemd service (dedicated user, read-only system, logs via group)."""
    from collectors.service import ServiceError, install, unit_text

    unit = unit_text(sys.executable, config_path, state_dir, user, log_group)
    if dry_run:
        click.echo(unit)
        return
    try:
        for step in install(unit, config_path, state_dir, user, log_group):
            click.echo(step)
    except ServiceError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


@agent.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False))
def status(config_path: str) -> None:
    """What the agent's state dir says: identity, spool backlog, checkpoints (no secrets)."""
    from collectors import load_agent_config, load_identity

    try:
        config = load_agent_config(config_path)
        identity = load_identity(config.identity_path)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    state = Path(config.state_dir)
    spool = state / "spool"
    spool_bytes = sum(p.stat().st_size for p in spool.glob("*.seg")) if spool.exists() else 0
    try:
        checkpoints = json.loads((state / "checkpoints.json").read_text())
    except (OSError, ValueError):
        checkpoints = {}
    click.echo(f"agency_id={identity.agency_id} agent_id={identity.agent_id} state_dir={state}")
    click.echo(f"spool_segments_bytes={spool_bytes}")
    for source, pos in sorted(checkpoints.items()):
        files = pos.get("f", [])
        where = f" offset={files[-1][2]} line={files[-1][3]}" if files else ""
        click.echo(f"source={source} next_seq={pos.get('q')}{where}")


COMMANDS: list[click.Command] = [agent]
