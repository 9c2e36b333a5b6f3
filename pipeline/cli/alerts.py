"""`socpipe alerts list|show|ack|close|reopen|assign|note`: triage alerts from a terminal, with the
same workflow (and the same version guard, --if-version) as the triage API. What alerts and incidents
share (the `es:` config, workflow changes, the error-to-exit-code mapping) is in pipeline.cli.triage."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from detectors.common.severity import KIBANA_LEVELS
from pipeline.cli.triage import (
    _service,
    add_change_commands,
    call_triage,
    config_option,
    prefix_option,
    workflow_change,
)
from pipeline.triage.workflow import STATUSES

if TYPE_CHECKING:  # for annotations only: the commands import these when they run
    from pipeline.elastic.triage import AlertRecord, Version

COMMANDS: list[click.Command] = []

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
