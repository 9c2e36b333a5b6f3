"""`socpipe incidents list|show|ack|close|assign|note|reopen`: the workflow at incident level.

An incident groups the alerts of one agency that share an address, user or host; closing (or
acknowledging, assigning, reopening) an incident does the same to each of its alerts, and both
keep the history.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from pipeline.cli.output import clean_json, table_row
from pipeline.cli.triage import (
    _es_config,
    _service,
    add_change_commands,
    call_triage,
    config_option,
    prefix_option,
    workflow_change,
)
from pipeline.triage.workflow import STATUSES

if TYPE_CHECKING:  # for annotations only: the commands import it when they run
    from pipeline.elastic.incidents import IncidentRecord, IncidentStore

COMMANDS: list[click.Command] = []
COLUMNS = (("ID", 12), ("SEVERITY", 8), ("STATUS", 12), ("AGENCY", 16), ("ALERTS", 6), ("END (UTC)", 24), ("TITLE", 0))


def _store(config_path: str | None, prefix: str | None) -> IncidentStore:
    from pipeline.elastic import connect
    from pipeline.elastic.incidents import IncidentStore

    cfg = _es_config(config_path)
    return IncidentStore(connect(cfg), prefix=prefix or cfg.index_prefix)


def _row(values: list[str]) -> str:
    return table_row(COLUMNS, values)


def _line(rec: IncidentRecord) -> str:
    inc = rec.source["socpipe"]["incident"]
    return _row(
        [
            rec.id[:12],
            inc.get("severity", "?"),
            rec.status,
            str(rec.source.get("organization", {}).get("id", "-")),
            str(inc.get("alert_count", 0)),
            str(rec.source.get("event", {}).get("end", "?")),
            str(inc.get("title", "")),
        ]
    )


@click.group("incidents")
def incidents_group() -> None:
    """Incidents: an agency's alerts that share an address, user or host, worked as one."""


@incidents_group.command("list")
@config_option
@prefix_option
@click.option("--status", multiple=True, type=click.Choice(STATUSES))
@click.option("--agency", multiple=True, help="organization.id (repeatable)")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500))
@click.option("--json", "as_json", is_flag=True)
def incidents_list(
    config_path: str | None,
    prefix: str | None,
    status: tuple[str, ...],
    agency: tuple[str, ...],
    limit: int,
    as_json: bool,
) -> None:
    """Worst first, then newest."""
    records = call_triage(lambda: _store(config_path, prefix).list(list(status), list(agency), limit))
    if as_json:
        for r in records:
            click.echo(clean_json(json.dumps({"_id": r.id, **r.source}, ensure_ascii=False)))
        return
    if not records:
        click.echo("no incidents match", err=True)
        return
    click.echo(_row([name for name, _ in COLUMNS]))
    for r in records:
        click.echo(_line(r))


@incidents_group.command("show")
@config_option
@prefix_option
@click.argument("incident_id")
def incidents_show(config_path: str | None, prefix: str | None, incident_id: str) -> None:
    """The incident with its timeline (JSON)."""
    rec = call_triage(lambda: _store(config_path, prefix).get(incident_id))
    doc = {"_id": rec.id, "_version": f"{rec.version[0]}:{rec.version[1]}", **rec.source}
    click.echo(clean_json(json.dumps(doc, ensure_ascii=False, indent=2)))


def _change_command(action: str, help_text: str) -> click.Command:
    @click.command(action, help=help_text)
    @config_option
    @prefix_option
    @click.argument("incident_id")
    @click.option("--as", "actor", help="Analyst name recorded in history (default: $SOCPIPE_ANALYST or $USER).")
    def command(config_path: str | None, prefix: str | None, incident_id: str, actor: str | None, **kw: Any) -> None:
        change = workflow_change(action, actor, kw)
        store = _store(config_path, prefix)
        alerts = _service(config_path, prefix)
        rec = call_triage(lambda: store.change(incident_id, change, alerts_service=alerts))
        click.echo(_row([name for name, _ in COLUMNS]))
        click.echo(_line(rec))
        n = len(rec.source["socpipe"]["incident"].get("alerts") or [])
        if action in ("close", "ack", "assign", "reopen"):
            click.echo(f"{action} applied to the incident and its {n} alerts", err=True)

    return command


add_change_commands(
    incidents_group,
    _change_command,
    {
        "ack": "Acknowledge an incident and its alerts.",
        "close": "Close an incident and its alerts with a reason.",
        "reopen": "Reopen an incident and its alerts.",
        "assign": "Assign an incident and its alerts (no ASSIGNEE: unassign).",
        "note": "Add a note to the incident.",
    },
    "Comment stored in the history.",
)

COMMANDS.append(incidents_group)
