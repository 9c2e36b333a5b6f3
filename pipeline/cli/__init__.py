"""The one `socpipe` command. Each area keeps its commands in its own module of this package."""

from __future__ import annotations

import click

from pipeline import __version__
from pipeline.cli import agent, coverage, demo, detect, models, parse, rules, stack, triage


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="socpipe")
def main() -> None:
    """socpipe: agency logs -> Kafka -> Sigma rules and anomaly models -> alerts in Elasticsearch,
    with SOC coverage of the province's agencies in Prometheus."""


for module in (stack, demo, agent, detect, parse, rules, coverage, triage, models):
    for command in module.COMMANDS:
        main.add_command(command)
