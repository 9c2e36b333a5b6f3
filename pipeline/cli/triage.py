"""`socpipe es setup`, `socpipe alerts ...`, `socpipe kibana install`, `socpipe triage serve`."""

from __future__ import annotations

import json
import sys

import click

from pipeline.config import ConfigError, ElasticsearchConfig, load_config

COMMANDS: list[click.Command] = []


def _es_config(config_path: str | None) -> ElasticsearchConfig:
    try:
        return load_config(ElasticsearchConfig, config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


config_option = click.option("--config", "config_path", type=click.Path(dir_okay=False),
                             help="YAML with Elasticsearch settings (keys of ElasticsearchConfig); env SOCPIPE_* overrides.")
prefix_option = click.option("--prefix", default=None, help="Index prefix (default: index_prefix from config).")


@click.group("es")
def es_group() -> None:
    """Elasticsearch: templates, policies."""


@es_group.command("setup")
@config_option
@prefix_option
def es_setup(config_path: str | None, prefix: str | None) -> None:
    """Install index templates (alerts, events) and ILM delete policies. Safe to run again."""
    from elasticsearch import TransportError

    from pipeline.elastic import connect, setup

    cfg = _es_config(config_path)
    try:
        report = setup(connect(cfg), cfg, prefix)
    except TransportError as exc:
        raise click.ClickException(f"cannot reach Elasticsearch at {cfg.url}: {exc}") from exc
    for name in report.templates:
        click.echo(f"template {name}: installed")
    for name in report.ilm_policies:
        click.echo(f"ilm policy {name}: installed")
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)


COMMANDS.append(es_group)
