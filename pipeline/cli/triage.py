"""`socpipe triage serve|token|revoke`; and what the terminal triage commands share (`socpipe alerts`
in pipeline.cli.alerts, `socpipe incidents` in pipeline.cli.incidents): the `es:` config helpers
(pipeline.cli.elastic uses them too), workflow changes, and call_triage's error-to-exit-code mapping."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC
from typing import TYPE_CHECKING, Any, TypeVar

import click

from pipeline.config import ConfigError, ElasticsearchConfig, load_config
from pipeline.triage.workflow import CLOSING_REASONS

if TYPE_CHECKING:  # for annotations only: the commands import these when they run
    from pipeline.elastic.triage import TriageService
    from pipeline.triage.config import TriageConfig
    from pipeline.triage.workflow import Change

T = TypeVar("T")

COMMANDS: list[click.Command] = []


def _es_config(config_path: str | None) -> ElasticsearchConfig:
    """The `es:` section of the detector's config, so analysts and workers share one file and the
    same SOCPIPE_ES_* overrides (SOCPIPE_ES_URL, SOCPIPE_ES_API_KEY, ...)."""
    from pipeline.detector_config import DetectorConfig

    try:
        es = load_config(DetectorConfig, config_path).es
        es.check()
        return es
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
    _check_elasticsearch(service, cfg.es.url)
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


def _check_elasticsearch(service: TriageService, url: str) -> None:
    """One request before serving: credentials Elasticsearch refuses, or that may not read the alerts,
    end the start (`cannot start: ...`, exit 1: no request could be answered); Elasticsearch away is
    said on stderr and the API serves anyway (503 until it is back)."""
    from elasticsearch import ApiError, AuthenticationException, AuthorizationException, TransportError

    from pipeline.cli.startup import es_problem, fail

    try:
        service.es.count(index=service.pattern, allow_no_indices=True, ignore_unavailable=True)
    except (AuthenticationException, AuthorizationException) as exc:
        fail(es_problem(exc, url))
    except (ApiError, TransportError) as exc:
        click.echo(f"warning: {es_problem(exc, url)}: serving anyway, requests answer 503 until it is back", err=True)


COMMANDS.append(triage_group)
