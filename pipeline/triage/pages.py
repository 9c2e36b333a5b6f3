"""Minimal HTML for the triage links Kibana opens (every value escaped; no scripts)."""

from __future__ import annotations

import html
import json

from pipeline.elastic.triage import format_version
from pipeline.elastic.workflow import CLOSING_REASONS

_STYLE = (
    "body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
    "td{border:1px solid #ccc;padding:.2em .5em;vertical-align:top}form{display:inline-block;margin:.3em}"
)


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def message(status: int, text: str) -> str:
    return _page(f"{status}", f"<h1>{status}</h1><p>{html.escape(text)}</p>")


def login(alert_id: str) -> str:
    a = html.escape(alert_id, quote=True)
    return _page(
        f"Alert {alert_id}",
        f"<h1>Alert {a}</h1><form method='post' action='/alerts/{a}'>"
        "<label>API token <input type='password' name='token' autocomplete='off'></label> "
        "<button>Open</button></form>",
    )


def alert(rec, analyst, token: str, done: str = "") -> str:
    s = rec.source
    wf = s.get("socpipe", {}).get("workflow", {})
    e = html.escape
    a = e(rec.id, quote=True)
    rows = [
        ("time", s.get("@timestamp")),
        ("rule", s.get("rule", {}).get("name")),
        ("severity", s.get("kibana", {}).get("alert", {}).get("severity")),
        ("agency", s.get("organization", {}).get("id")),
        ("source.ip", s.get("source", {}).get("ip")),
        ("user.name", s.get("user", {}).get("name")),
        ("host.name", s.get("host", {}).get("name")),
        ("status", wf.get("status")),
        ("assignee", wf.get("assignee")),
        ("closing reason", wf.get("closing_reason")),
    ]
    table = "".join(f"<tr><td>{e(k)}</td><td>{e(str(v))}</td></tr>" for k, v in rows if v is not None)
    hidden = (
        f"<input type='hidden' name='token' value='{e(token, quote=True)}'>"
        f"<input type='hidden' name='version' value='{e(format_version(rec.version), quote=True)}'>"
    )

    def form(action: str, extra: str = "") -> str:
        return f"<form method='post' action='/alerts/{a}/{action}'>{hidden}{extra}<button>{action}</button></form>"

    reasons = "".join(f"<option>{r}</option>" for r in CLOSING_REASONS)
    actions = [
        form("ack"),
        form("close", f"<select name='reason'>{reasons}</select>"),
        form("reopen"),
        form("assign", f"<input name='assignee' value='{e(analyst.name, quote=True)}'>"),
        form("note", "<input name='text' size='40'>"),
    ]
    notes = "".join(
        f"<li>{e(n.get('at', ''))} {e(n.get('author', ''))}: {e(n.get('text', ''))}</li>" for n in wf.get("notes", [])
    )
    history = "".join(
        f"<li>{e(h.get('at', ''))} {e(h.get('actor', ''))} {e(h.get('action', ''))} "
        f"{e(h.get('outcome', ''))} {e(h.get('detail', ''))}</li>"
        for h in wf.get("history", [])
    )
    evidence = e(json.dumps(s.get("socpipe", {}).get("evidence", [])[:5], ensure_ascii=False, indent=1))
    return _page(
        f"Alert {rec.id}",
        (
            f"<h1>{e(s.get('rule', {}).get('name', ''))}</h1>"
            + (f"<p><b>{e(done)}</b></p>" if done else "")
            + f"<p>signed in as {e(analyst.name)} ({e(analyst.role)}) · version {e(format_version(rec.version))}</p>"
            + f"<table>{table}</table><div>{''.join(actions)}</div>"
            + f"<h2>Notes</h2><ul>{notes}</ul><h2>History</h2><ul>{history}</ul>"
            + f"<h2>Evidence (first 5)</h2><pre>{evidence}</pre>"
        ),
    )
