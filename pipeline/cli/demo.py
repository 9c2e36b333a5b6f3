"""`socpipe demo`: the whole job on the local stack (see pipeline/demo.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command()
def demo() -> None:
    """Enrol 3 of 4 agencies, brute-force one, show the alerts in Elasticsearch and coverage in Prometheus."""
    from pipeline.demo import Demo, DemoError

    try:
        sys.exit(Demo(Path.cwd()).run())
    except DemoError as exc:
        click.echo(f"demo failed: {exc}", err=True)
        sys.exit(1)


COMMANDS: list[click.Command] = [demo]
