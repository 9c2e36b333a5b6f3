"""`socpipe agent ...`: the agent's own command (`socpipe-agent`, collectors.cli) inside the SOC CLI.

The agent distribution has its own argparse CLI (no click, no SOC code); this passes the arguments
through so both spellings behave the same. `run` re-executes into `python -m collectors` so the
long-running agent does not carry the modules the other CLI areas import.
"""

from __future__ import annotations

import os
import sys

import click


@click.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def agent(args: tuple[str, ...]) -> None:
    """The collector agent: run | enroll | status | install-service (see `socpipe agent --help`)."""
    from collectors.cli import main

    if args and args[0] == "run":
        code = main([*args, "--check-only"], prog="socpipe agent")  # fail here, clearly, before exec
        if code:
            sys.exit(code)
        os.execv(sys.executable, [sys.executable, "-m", "collectors", *args])
    sys.exit(main(list(args), prog="socpipe agent"))


COMMANDS: list[click.Command] = [agent]
