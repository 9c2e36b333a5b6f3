"""`socpipe alerts ...`, `socpipe triage serve|token|revoke`; the `es:` config helpers that
`pipeline.cli.elastic` and `pipeline.cli.incidents` share."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC
from typing import TYPE_CHECKING, Any, TypeVar

import click

from detectors.common.severity import KIBANA_LEVELS
from pipeline.config import ConfigError, ElasticsearchConfig, load_config
from pipeline.triage.workflow import CLOSING_REASONS, STATUSES

if TYPE_CHECKING:  # for annotations only: the commands import these when they run
    from pipeline.elastic.triage import AlertRecord, TriageService, Version
    from pipeline.triage.config import TriageConfig
    from pipeline.triage.workflow import Change

T = TypeVar("T")

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


# --- alerts ------------------------------------------------------------------------------------


def _service(config_path: str | None, prefix: str | None) -> TriageService:
    from pipeline.elastic import connect
    from pipeline.elastic.triage import TriageService

    cfg = _es_config(config_path)
    return TriageService(connect(cfg), prefix=prefix or cfg.index_prefix)


def _actor(name: str | None) -> str:
    import getpass
    import os

    return name or os.environ.get("SOCPIPE_ANALYST") or getpass.getuser()


def workflow_change(action: str, actor: str | None, options: dict[str, Any]) -> Change:
    """The workflow Change a command asks for, from its options (reason, assignee, text or --note)."""
    from datetime import datetime

    from detectors.common import iso_ms
    from pipeline.triage.workflow import Change

    return Change(
        action,
        _actor(actor),
        iso_ms(datetime.now(UTC)),
        reason=options.get("reason"),
        assignee=options.get("assignee"),
        text=options.get("text") or options.get("note"),
    )


def add_change_commands(
    group: click.Group, make: Callable[[str, str], click.Command], helps: dict[str, str], note_help: str
) -> None:
    """One command per workflow action (`helps`: action -> help text), made by `make(action, help)`
    and given that action's options: close needs --reason, assign takes ASSIGNEE, note takes TEXT."""
    note = click.option("--note", help=note_help)
    extra = {
        "ack": [note],
        "close": [click.option("--reason", required=True, type=click.Choice(CLOSING_REASONS)), note],
        "reopen": [note],
        "assign": [click.argument("assignee", required=False)],
        "note": [click.argument("text")],
    }
    for action, help_text in helps.items():
        command = make(action, help_text)
        for option in reversed(extra[action]):
            command = option(command)
        group.add_command(command)


SHORT_ID = 12  # id prefix shown in tables; any unique prefix of at least 6 is accepted back
COLUMNS = (
    ("TIME (UTC)", 24),
    ("SEVERITY", 8),
    ("STATUS", 12),
    ("AGENCY", 14),
    ("SOURCE", 15),
    ("USER", 12),
    ("RULE", 44),
    ("ID", SHORT_ID),
    ("VERSION", 9),
    ("ASSIGNEE", 0),
)


def _row(values: list[str]) -> str:
    from pipeline.cli.output import table_row

    return table_row(COLUMNS, values)


def table_header() -> str:
    return _row([name for name, _ in COLUMNS])


def summary_line(rec: AlertRecord) -> str:
    """One alert as a table row (pure; log-derived text made terminal-safe)."""
    s = rec.source
    wf = s.get("socpipe", {}).get("workflow", {})
    return _row(
        [
            str(s.get("@timestamp", "?")),
            str(s.get("kibana", {}).get("alert", {}).get("severity", "?")),
            str(wf.get("status", "?")),
            str(s.get("organization", {}).get("id", "-")),
            str(s.get("source", {}).get("ip", "-")),
            str(s.get("user", {}).get("name", "-")),
            str(s.get("rule", {}).get("name", "?")),
            rec.id[:SHORT_ID],
            format_version(rec.version),
            str(wf.get("assignee") or "-"),
        ]
    )


def format_version(version: Version) -> str:
    from pipeline.elastic.triage import format_version as fmt

    return fmt(version)


@click.group("alerts")
def alerts_group() -> None:
    """List, inspect and triage alerts (ack, close, reopen, assign, note)."""


@alerts_group.command("list")
@config_option
@prefix_option
@click.option("--status", multiple=True, type=click.Choice(STATUSES))
@click.option("--severity", multiple=True, type=click.Choice(KIBANA_LEVELS))
@click.option("--agency", multiple=True, help="organization.id (repeatable)")
@click.option("--rule", help="Rule id or words of its name.")
@click.option("--assignee")
@click.option("--since", help="ISO time or relative: 30m, 24h, 7d")
@click.option("--until")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="One JSON alert per line.")
def alerts_list(
    config_path: str | None,
    prefix: str | None,
    status: tuple[str, ...],
    severity: tuple[str, ...],
    agency: tuple[str, ...],
    rule: str | None,
    assignee: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Newest first."""
    from pipeline.elastic.triage import AlertFilter

    try:
        flt = AlertFilter(list(status), list(severity), list(agency), rule, assignee, since, until)
        flt.query()
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    from pipeline.cli.output import clean_json

    records = call_triage(lambda: _service(config_path, prefix).list(flt, limit))
    if as_json:
        for rec in records:
            doc = {"_id": rec.id, "_version": format_version(rec.version), **rec.source}
            click.echo(clean_json(json.dumps(doc, ensure_ascii=False)))
        return
    if not records:
        from pipeline.cli.output import clean

        given = [f"--{k} {','.join(v) if isinstance(v, list) else v}" for k, v in vars(flt).items() if v]
        click.echo(clean(" ".join(["no alerts match", *given])), err=True)
        return
    click.echo(table_header())
    for rec in records:
        click.echo(summary_line(rec))
    if len(records) == limit:
        click.echo(f"(first {limit}; --limit for more)", err=True)


@alerts_group.command("show")
@config_option
@prefix_option
@click.argument("alert_id")
def alerts_show(config_path: str | None, prefix: str | None, alert_id: str) -> None:
    """The whole alert (JSON), with its version for --if-version."""
    from pipeline.cli.output import clean_json

    rec = call_triage(lambda: _service(config_path, prefix).get(alert_id))
    doc = {"_id": rec.id, "_index": rec.index, "_version": format_version(rec.version), **rec.source}
    click.echo(clean_json(json.dumps(doc, ensure_ascii=False, indent=2)))


def _change_command(action: str, help_text: str) -> click.Command:
    @click.command(action, help=help_text)
    @config_option
    @prefix_option
    @click.argument("alert_id")  # the id or a unique prefix of it (at least 6 characters)
    @click.option("--as", "actor", help="Analyst name recorded in history (default: $SOCPIPE_ANALYST or $USER).")
    @click.option(
        "--if-version", help="Only if the alert is still at this version (the VERSION column of list, e.g. 12:1)."
    )
    def command(
        config_path: str | None,
        prefix: str | None,
        alert_id: str,
        actor: str | None,
        if_version: str | None,
        **kw: Any,
    ) -> None:
        from pipeline.elastic.triage import parse_version

        try:
            expected = parse_version(if_version)
        except ValueError as exc:
            raise click.BadParameter(f"--if-version: {exc}") from exc
        change = workflow_change(action, actor, kw)
        rec = call_triage(lambda: _service(config_path, prefix).change(alert_id, change, expected))
        click.echo(table_header())
        click.echo(summary_line(rec))

    return command


def call_triage(fn: Callable[[], T]) -> T:
    """Run a triage call (alerts or incidents); its failures become a message and an exit code:
    2 not allowed, 3 conflict (changed meanwhile), 4 no such or ambiguous id."""
    from elasticsearch import TransportError

    from pipeline.elastic.incidents import IncidentNotFound
    from pipeline.elastic.triage import AlertConflict, AlertNotFound, AmbiguousAlertId
    from pipeline.triage.workflow import PermissionDenied, TransitionError

    try:
        return fn()
    except AmbiguousAlertId as exc:
        click.echo(f"ambiguous id: {exc}", err=True)
        sys.exit(4)
    except AlertConflict as exc:
        click.echo(f"conflict: {exc}", err=True)
        sys.exit(3)
    except AlertNotFound as exc:
        click.echo(f"no such alert: {exc}", err=True)
        sys.exit(4)
    except IncidentNotFound as exc:
        click.echo(f"no such incident: {exc}", err=True)
        sys.exit(4)
    except (TransitionError, PermissionDenied) as exc:
        click.echo(f"not allowed: {exc}", err=True)
        sys.exit(2)
    except TransportError as exc:
        raise click.ClickException(f"Elasticsearch unavailable: {exc}") from exc


add_change_commands(
    alerts_group,
    _change_command,
    {
        "ack": "Acknowledge an open alert (you become its assignee unless it has one).",
        "close": "Close an alert with a reason.",
        "reopen": "Reopen an acknowledged or closed alert.",
        "assign": "Assign an alert (no ASSIGNEE: unassign).",
        "note": "Add a note.",
    },
    "Comment stored in the alert's notes.",
)

COMMANDS.append(alerts_group)


# --- triage HTTP API ---------------------------------------------------------------------------


@click.group("triage")
def triage_group() -> None:
    """HTTP triage API (per-analyst tokens; roles analyst, lead, read-only)."""


tokens_option = click.option(
    "--tokens",
    "tokens_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Tokens file (YAML; SHA-256 digests only). Default: `tokens` of config/triage.yaml.",
)
triage_config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="triage.yaml (SOCPIPE_* variables override).",
)


def _triage_config(config_path: str | None) -> TriageConfig:
    from pipeline.triage.config import load_triage_config

    try:
        return load_triage_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _tokens_path(config_path: str | None, tokens_path: str | None) -> str:
    if tokens_path:
        return tokens_path
    path = _triage_config(config_path).tokens
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return path


@triage_group.command("token")
@triage_config_option
@tokens_option
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["analyst", "lead", "read-only"]))
def triage_token(config_path: str | None, tokens_path: str | None, name: str, role: str) -> None:
    """Create or replace NAME's token; prints it once. A running server picks it up (no restart)."""
    from pipeline.triage.auth import add_analyst

    try:
        click.echo(add_analyst(_tokens_path(config_path, tokens_path), name, role))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@triage_group.command("revoke")
@triage_config_option
@tokens_option
@click.argument("name")
def triage_revoke(config_path: str | None, tokens_path: str | None, name: str) -> None:
    """Revoke NAME's token; a running server refuses it within token_reload_s."""
    from pipeline.triage.auth import revoke_analyst

    path = _tokens_path(config_path, tokens_path)
    try:
        if not revoke_analyst(path, name):
            raise click.ClickException(f"{path}: no analyst named {name!r}")
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"revoked {name}")


@triage_group.command("serve")
@triage_config_option
@prefix_option
@tokens_option
@click.option("--listen", default=None, help="HOST:PORT (default: server.host/port of the config).")
def triage_serve(config_path: str | None, prefix: str | None, tokens_path: str | None, listen: str | None) -> None:
    """Serve /api/alerts (JSON) and the browser pages until interrupted. HTTPS when
    server.tls_certfile/tls_keyfile are set; tokens are re-read when their file changes."""
    import logging
    import signal

    from pipeline.elastic import connect
    from pipeline.elastic.triage import TriageService
    from pipeline.triage.app import TriageApi
    from pipeline.triage.auth import ReloadingTokenStore
    from pipeline.triage.server import make_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    cfg = _triage_config(config_path)
    if listen:
        host, _, port = listen.rpartition(":")
        cfg.server.host, cfg.server.port = host or "127.0.0.1", int(port)
        try:
            cfg.validate()
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
    path = tokens_path or cfg.tokens
    try:
        tokens = ReloadingTokenStore(path, cfg.token_reload_s)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if not len(tokens):
        raise click.ClickException(f"{path}: no analysts (add one: socpipe triage token NAME --role analyst)")
    from pipeline.elastic.incidents import IncidentStore

    es = connect(cfg.es)
    service = TriageService(es, prefix=prefix or cfg.es.index_prefix)
    incidents = IncidentStore(es, prefix or cfg.es.index_prefix)
    api = TriageApi(service, tokens, incidents=incidents, secure_cookies=bool(cfg.server.tls_certfile))
    try:
        server = make_server(api, settings=cfg.server)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot serve on {cfg.server.host}:{cfg.server.port}: {exc}") from exc
    signal.signal(signal.SIGHUP, lambda *_: tokens.reload_if_changed(force=True))
    bound_host, bound_port = server.server_address[:2]
    click.echo(f"triage API on {server.scheme}://{bound_host!s}:{bound_port} ({len(tokens)} analysts)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


COMMANDS.append(triage_group)
