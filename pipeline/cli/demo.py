"""`socpipe demo`: the whole job on the local stack (see pipeline/devtools/demo.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command()
def demo() -> None:
    """Enrol 3 of 4 agencies, brute-force one, show the alerts in Elasticsearch and coverage in Prometheus."""
    try:
        from pipeline.devtools.demo import Demo, DemoError
    except ModuleNotFoundError as exc:
        from pipeline.cli import dev_only_message

        raise click.ClickException(dev_only_message("demo")) from exc

    try:
        sys.exit(Demo(Path.cwd()).run())
    except DemoError as exc:
        click.echo(f"demo failed: {exc}", err=True)
        sys.exit(1)


COMMANDS: list[click.Command] = [demo]
