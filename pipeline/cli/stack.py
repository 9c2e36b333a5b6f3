"""`socpipe` commands of this area (see pipeline/cli/__init__.py)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
