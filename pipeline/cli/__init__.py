"""The one `socpipe` command. Each area keeps its commands in its own module of this package.

Subcommands are imported only when run (`socpipe rules lint` never imports the agent, Kafka or
Elasticsearch clients): start-up is part of what users wait for. COMMAND_MODULES names the module
of every command; tests/unit/test_cli_lazy.py checks it against each module's COMMANDS.
"""

from __future__ import annotations

import importlib

import click

from pipeline import __version__

COMMAND_MODULES = {
    "stack": "stack",
    "demo": "demo",
    "agent": "agent",
    "detect": "detect",
    "parse": "parse",
    "fields": "parse",
    "rules": "rules",
    "scan": "rules",
    "coverage": "coverage",
    "agency": "coverage",
    "enrol": "coverage",
    "es": "elastic",
    "alerts": "alerts",
    "triage": "triage",
    "kibana": "elastic",
    "model": "models",
    "incidents": "incidents",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if module is None:
            return None
        try:
            commands = importlib.import_module(f"pipeline.cli.{module}").COMMANDS
        except ModuleNotFoundError as exc:
            if not (exc.name or "").startswith(DEV_PACKAGES):
                raise
            return _dev_only(cmd_name)
        return next((c for c in commands if c.name == cmd_name), None)


# Development-only packages (not in the installed distribution; see pyproject.toml).
DEV_PACKAGES = ("pipeline.stack", "pipeline.devtools")


def dev_only_message(what: str) -> str:
    return (
        f"`socpipe {what}` is a development tool: it runs from a socpipe repository checkout "
        "(`pip install -e .`, `make demo`), not from an installed socpipe-soc."
    )


def _dev_only(cmd_name: str) -> click.Command:
    def fail() -> None:
        raise click.ClickException(dev_only_message(cmd_name))

    return click.Command(
        cmd_name,
        callback=fail,
        help="(development checkout only)",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
    )


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="socpipe")
def main() -> None:
    """socpipe: agency logs -> Kafka -> Sigma rules and anomaly models -> alerts in Elasticsearch,
    with SOC coverage of the province's agencies in Prometheus."""
