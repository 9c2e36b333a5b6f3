"""`socpipe es setup|api-key` and `socpipe kibana install|export`: Elasticsearch and Kibana set-up."""

from __future__ import annotations

import json
import sys

import click

from pipeline.cli.triage import _es_config, config_option, prefix_option

COMMANDS: list[click.Command] = []


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
    from pipeline.elastic.setup import MappingConflict

    try:
        report = setup(connect(cfg), cfg, prefix)
    except TransportError as exc:
        from pipeline.cli.startup import redact_url

        raise click.ClickException(f"cannot reach Elasticsearch at {redact_url(cfg.url)}: {exc}") from exc
    except MappingConflict as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("cluster offers: " + (", ".join(report.capabilities) or "no ILM, no mapper-extras"))
    for name in report.templates:
        click.echo(f"template {name}: installed")
    for name in report.updated_indices:
        click.echo(f"index {name}: mapping updated")
    for name in report.ilm_policies:
        click.echo(f"ilm policy {name}: installed")
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)


@es_group.command("api-key")
@config_option
@prefix_option
@click.argument("service", type=click.Choice(["detector", "triage", "setup"]))
@click.option("--expiration", default=None, help="e.g. 90d (default: no expiry)")
@click.option("--show-role", is_flag=True, help="Print the role the key would get, create nothing.")
def es_api_key(
    config_path: str | None, prefix: str | None, service: str, expiration: str | None, show_role: bool
) -> None:
    """Create SERVICE's least-privilege API key (needs a credential with manage_api_key); prints the
    encoded key for SOCPIPE_ES_API_KEY once. detector: create/update alerts; triage: read/update alerts;
    setup: templates and ILM only."""
    import json

    from elasticsearch import ApiError, TransportError

    from pipeline.elastic import connect
    from pipeline.elastic.keys import create_key, role_descriptors

    cfg = _es_config(config_path)
    prefix = prefix or cfg.index_prefix
    if show_role:
        click.echo(json.dumps(role_descriptors(service, prefix), indent=2))
        return
    try:
        key = create_key(connect(cfg), service, prefix, expiration)
    except (ApiError, TransportError) as exc:
        raise click.ClickException(f"creating the {service} key failed: {exc}") from exc
    click.echo(f"# {key['name']} (id {key['id']}): set SOCPIPE_ES_API_KEY for the {service}")
    click.echo(key["encoded"])


COMMANDS.append(es_group)


# --- Kibana ------------------------------------------------------------------------------------


@click.group("kibana")
def kibana_group() -> None:
    """Kibana saved objects (dashboards/kibana/*.ndjson)."""


@kibana_group.command("install")
@click.option("--url", required=True, help="Kibana base URL, e.g. http://kibana:5601")
@click.option("--space", help="Kibana space id (default space if omitted).")
@click.option("--username", envvar="SOCPIPE_KIBANA_USERNAME", default="")
@click.option("--password", envvar="SOCPIPE_KIBANA_PASSWORD", default="")
@click.option("--api-key", envvar="SOCPIPE_KIBANA_API_KEY", default="")
@click.option("--prefix", default="socpipe", show_default=True, help="Index prefix the data views point at.")
@click.option("--triage-url", help="Base URL of `socpipe triage serve` for alert links.")
@click.option("--analyst", "analysts", multiple=True, help="Also install a 'My alerts: NAME' search (repeatable).")
@click.option("--dir", "directory", type=click.Path(file_okay=False, exists=True), default=None)
def kibana_install(
    url: str,
    space: str | None,
    username: str,
    password: str,
    api_key: str,
    prefix: str,
    triage_url: str | None,
    analysts: tuple[str, ...],
    directory: str | None,
) -> None:
    """Import data views, searches, visualisations and dashboards (overwrite: safe to repeat)."""
    from pathlib import Path

    from pipeline.elastic.kibana import KibanaError, install, load_objects
    from pipeline.elastic.kibana.install import DEFAULT_DIR

    try:
        objects = load_objects(Path(directory) if directory else DEFAULT_DIR, prefix, triage_url, tuple(analysts))
        result = install(url, objects, space, username, password, api_key)
    except (KibanaError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"imported {result.success_count}/{result.objects} saved objects into {url}")
    for err in result.errors:
        click.echo(f"error: {err.get('type')}/{err.get('id')}: {json.dumps(err.get('error'))}", err=True)
    if result.errors:
        sys.exit(1)


@kibana_group.command("export")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=None)
def kibana_export(directory: str | None) -> None:
    """Re-render dashboards/kibana/*.ndjson from pipeline/elastic/kibana/objects.py."""
    from pathlib import Path

    from pipeline.elastic.kibana import FILES, render
    from pipeline.elastic.kibana.install import DEFAULT_DIR

    out = Path(directory) if directory else DEFAULT_DIR
    out.mkdir(parents=True, exist_ok=True)
    for name, build in FILES.items():
        (out / name).write_text(render(build()), encoding="utf-8")
        click.echo(f"wrote {out / name}")


COMMANDS.append(kibana_group)
