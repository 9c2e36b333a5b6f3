"""`socpipe es setup`, `socpipe alerts ...`, `socpipe kibana install`, `socpipe triage serve`."""

from __future__ import annotations

import json
import sys
from datetime import UTC

import click

from pipeline.config import ConfigError, ElasticsearchConfig, load_config

COMMANDS: list[click.Command] = []


def _es_config(config_path: str | None) -> ElasticsearchConfig:
    """The `es:` section of the detector's config, so analysts and workers share one file and the
    same SOCPIPE_ES_* overrides (SOCPIPE_ES_URL, SOCPIPE_ES_API_KEY, ...)."""
    from pipeline.detector_config import DetectorConfig

    try:
        return load_config(DetectorConfig, config_path).es
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="detector.yaml: its `es:` section (SOCPIPE_ES_* variables override).",
)
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


# --- alerts ------------------------------------------------------------------------------------


def _service(config_path: str | None, prefix: str | None):
    from pipeline.elastic import connect
    from pipeline.elastic.triage import TriageService

    cfg = _es_config(config_path)
    return TriageService(connect(cfg), prefix=prefix or cfg.index_prefix)


def _actor(name: str | None) -> str:
    import getpass
    import os

    return name or os.environ.get("SOCPIPE_ANALYST") or getpass.getuser()


def summary_line(rec) -> str:
    """One alert on one line, for terminals (pure; also used by notifications)."""
    s = rec.source
    wf = s.get("socpipe", {}).get("workflow", {})
    who = s.get("user", {}).get("name", "-")
    src = s.get("source", {}).get("ip", "-")
    return (
        f"{s.get('@timestamp', '?')}  {s.get('kibana', {}).get('alert', {}).get('severity', '?'):8}  "
        f"{wf.get('status', '?'):12}  {s.get('organization', {}).get('id', '-'):10}  {src:15}  {who:10}  "
        f"{s.get('rule', {}).get('name', '?')[:50]:50}  {rec.id}  v{rec.version[0]}:{rec.version[1]}"
        f"{'  @' + wf['assignee'] if wf.get('assignee') else ''}"
    )


@click.group("alerts")
def alerts_group() -> None:
    """List, inspect and triage alerts (ack, close, reopen, assign, note)."""


@alerts_group.command("list")
@config_option
@prefix_option
@click.option("--status", multiple=True, type=click.Choice(["open", "acknowledged", "closed"]))
@click.option("--severity", multiple=True, type=click.Choice(["low", "medium", "high", "critical"]))
@click.option("--agency", multiple=True, help="organization.id (repeatable)")
@click.option("--rule", help="Rule id or words of its name.")
@click.option("--assignee")
@click.option("--since", help="ISO time or relative: 30m, 24h, 7d")
@click.option("--until")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON alert per line.")
def alerts_list(config_path, prefix, status, severity, agency, rule, assignee, since, until, limit, as_json):
    """Newest first."""
    from pipeline.elastic.triage import AlertFilter

    try:
        flt = AlertFilter(list(status), list(severity), list(agency), rule, assignee, since, until)
        flt.query()
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    for rec in _call(lambda: _service(config_path, prefix).list(flt, limit)):
        click.echo(
            json.dumps(
                {"_id": rec.id, "_version": f"{rec.version[0]}:{rec.version[1]}", **rec.source}, ensure_ascii=False
            )
            if as_json
            else summary_line(rec)
        )


@alerts_group.command("show")
@config_option
@prefix_option
@click.argument("alert_id")
def alerts_show(config_path, prefix, alert_id):
    """The whole alert (JSON), with its version for --if-version."""
    rec = _call(lambda: _service(config_path, prefix).get(alert_id))
    click.echo(
        json.dumps(
            {"_id": rec.id, "_index": rec.index, "_version": f"{rec.version[0]}:{rec.version[1]}", **rec.source},
            ensure_ascii=False,
            indent=2,
        )
    )


def _change_command(action: str, help_text: str, extra: list):
    @click.command(action, help=help_text)
    @config_option
    @prefix_option
    @click.argument("alert_id")
    @click.option("--as", "actor", help="Analyst name recorded in history (default: $SOCPIPE_ANALYST or $USER).")
    @click.option("--if-version", help="Only if the alert is still at this version (SEQ:TERM from show/list).")
    def command(config_path, prefix, alert_id, actor, if_version, **kw):
        from datetime import datetime

        from detectors.alerts import iso_ms
        from pipeline.elastic.triage import parse_version
        from pipeline.elastic.workflow import Change

        try:
            expected = parse_version(if_version)
        except ValueError as exc:
            raise click.BadParameter(f"--if-version: {exc}") from exc
        change = Change(
            action,
            _actor(actor),
            iso_ms(datetime.now(UTC)),
            reason=kw.get("reason"),
            assignee=kw.get("assignee"),
            text=kw.get("text") or kw.get("note"),
        )
        rec = _call(lambda: _service(config_path, prefix).change(alert_id, change, expected))
        click.echo(summary_line(rec))

    for option in reversed(extra):
        command = option(command)
    return command


def _call(fn):
    """Run a triage call; turn its failures into messages and distinct exit codes."""
    from elasticsearch import TransportError

    from pipeline.elastic.triage import AlertConflict, AlertNotFound
    from pipeline.elastic.workflow import TransitionError

    try:
        return fn()
    except AlertConflict as exc:
        click.echo(f"conflict: {exc}", err=True)
        sys.exit(3)
    except AlertNotFound as exc:
        click.echo(f"no such alert: {exc}", err=True)
        sys.exit(4)
    except TransitionError as exc:
        click.echo(f"not allowed: {exc}", err=True)
        sys.exit(2)
    except TransportError as exc:
        raise click.ClickException(f"Elasticsearch unavailable: {exc}") from exc


_note_opt = click.option("--note", help="Comment stored in the alert's notes.")
for _action, _help, _extra in (
    ("ack", "Acknowledge an open alert (you become its assignee unless it has one).", [_note_opt]),
    (
        "close",
        "Close an alert with a reason.",
        [
            click.option(
                "--reason",
                required=True,
                type=click.Choice(["true_positive", "false_positive", "benign", "duplicate", "other"]),
            ),
            _note_opt,
        ],
    ),
    ("reopen", "Reopen an acknowledged or closed alert.", [_note_opt]),
    ("assign", "Assign an alert (no ASSIGNEE: unassign).", [click.argument("assignee", required=False)]),
    ("note", "Add a note.", [click.argument("text")]),
):
    alerts_group.add_command(_change_command(_action, _help, _extra))

COMMANDS.append(alerts_group)


# --- triage HTTP API ---------------------------------------------------------------------------


@click.group("triage")
def triage_group() -> None:
    """HTTP triage API (per-analyst tokens; roles analyst, lead, read-only)."""


tokens_option = click.option(
    "--tokens",
    "tokens_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Tokens file (YAML; SHA-256 digests only).",
)


@triage_group.command("token")
@tokens_option
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["analyst", "lead", "read-only"]))
def triage_token(tokens_path, name, role):
    """Create or replace NAME's token; prints it once."""
    from pipeline.triage.auth import add_analyst

    try:
        click.echo(add_analyst(tokens_path, name, role))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@triage_group.command("serve")
@config_option
@prefix_option
@tokens_option
@click.option("--listen", default="127.0.0.1:8088", show_default=True, help="HOST:PORT")
def triage_serve(config_path, prefix, tokens_path, listen):
    """Serve /api/alerts (JSON) and /alerts/<id> (pages for Kibana links) until interrupted."""
    import logging

    from pipeline.triage.app import TriageApi
    from pipeline.triage.auth import TokenStore
    from pipeline.triage.server import make_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        tokens = TokenStore.load(tokens_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if not len(tokens):
        raise click.ClickException(
            f"{tokens_path}: no analysts (add one: socpipe triage token --tokens ... NAME --role analyst)"
        )
    host, _, port = listen.rpartition(":")
    server = make_server(TriageApi(_service(config_path, prefix), tokens), host or "127.0.0.1", int(port))
    click.echo(f"triage API on http://{server.server_address[0]}:{server.server_address[1]} ({len(tokens)} analysts)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


COMMANDS.append(triage_group)


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
def kibana_install(url, space, username, password, api_key, prefix, triage_url, analysts, directory):
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
def kibana_export(directory):
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
