"""Alert workflow rules (pure): which change is allowed from which status, what it writes, who may do it.

Every applied change appends a history entry; so does an attempt that lost a race (see pipeline/elastic/triage.py),
so the audit trail shows both analysts, not only the winner.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

STATUSES = ("open", "acknowledged", "closed")
ACTIONS = ("ack", "close", "reopen", "assign", "note")
CLOSING_REASONS = ("true_positive", "false_positive", "benign", "duplicate", "other")
ROLES = ("read-only", "analyst", "lead")
NOTE_MAX_CHARS = 10_000


class TransitionError(ValueError):
    """The change makes no sense for the alert's current state (e.g. ack a closed alert)."""


class PermissionDenied(PermissionError):
    """The caller's role does not allow this change."""


@dataclass(frozen=True, slots=True)
class Change:
    action: str
    actor: str
    at: str  # ISO-8601 UTC
    reason: str | None = None  # close: one of CLOSING_REASONS
    assignee: str | None = None  # assign: name, or None/"" to unassign
    text: str | None = None  # note; optional comment on ack/close/reopen


def check_permission(role: str, change: Change) -> None:
    """read-only: nothing; analyst: ack, close, note, assign to self; lead: everything."""
    if role == "lead":
        return
    if role == "analyst":
        if change.action in ("ack", "close", "note"):
            return
        if change.action == "assign" and change.assignee in (change.actor, None, ""):
            return
        raise PermissionDenied(
            f"role analyst may not {change.action}"
            + (" to someone else" if change.action == "assign" else "")
            + " (lead only)"
        )
    raise PermissionDenied(f"role {role} may not change alerts")


def apply_change(workflow: dict[str, Any], change: Change, based_on_seq_no: int | None = None) -> dict[str, Any]:
    """The new workflow object after `change`, history entry included; raises TransitionError."""
    if change.action not in ACTIONS:
        raise TransitionError(f"unknown action {change.action!r} (known: {', '.join(ACTIONS)})")
    if not change.actor:
        raise TransitionError("a change needs an actor")
    wf: dict[str, Any] = copy.deepcopy(workflow) if workflow else {"status": "open", "notes": [], "history": []}
    before = wf.get("status", "open")
    after = before
    text = (change.text or "").strip()
    if len(text) > NOTE_MAX_CHARS:
        raise TransitionError(f"note longer than {NOTE_MAX_CHARS} characters")
    if change.action == "ack":
        if before != "open":
            raise TransitionError(f"cannot acknowledge an alert that is {before}")
        after = "acknowledged"
        wf["acknowledged_at"], wf["acknowledged_by"] = change.at, change.actor
        if not wf.get("assignee"):
            wf["assignee"] = change.actor  # whoever acknowledges owns it unless a lead assigned it
    elif change.action == "close":
        if before == "closed":
            raise TransitionError("alert is already closed")
        if change.reason not in CLOSING_REASONS:
            raise TransitionError(f"closing needs a reason, one of: {', '.join(CLOSING_REASONS)}")
        after = "closed"
        wf["closed_at"], wf["closed_by"], wf["closing_reason"] = change.at, change.actor, change.reason
    elif change.action == "reopen":
        if before == "open":
            raise TransitionError("alert is already open")
        after = "open"
        for key in ("closed_at", "closed_by", "closing_reason"):
            wf.pop(key, None)
    elif change.action == "assign":
        if before == "closed":
            raise TransitionError("cannot assign a closed alert (reopen it first)")
        if change.assignee:
            wf["assignee"] = change.assignee
        else:
            wf.pop("assignee", None)
    elif change.action == "note" and not text:
        raise TransitionError("a note needs text")
    if text:
        wf.setdefault("notes", []).append({"at": change.at, "author": change.actor, "text": text})
    wf["status"] = after
    wf["updated_at"], wf["updated_by"] = change.at, change.actor
    wf.setdefault("history", []).append(history_entry(change, "applied", before, after, based_on_seq_no))
    return wf


def history_entry(
    change: Change,
    outcome: str,
    before: str | None,
    after: str | None,
    based_on_seq_no: int | None = None,
    detail: str = "",
) -> dict[str, Any]:
    entry: dict[str, Any] = {"at": change.at, "actor": change.actor, "action": change.action, "outcome": outcome}
    if before:
        entry["from_status"] = before
    if after:
        entry["to_status"] = after
    parts = [detail] if detail else []
    if change.action == "close" and change.reason:
        parts.append(f"reason={change.reason}")
    if change.action == "assign":
        parts.append(f"assignee={change.assignee or '-'}")
    if parts:
        entry["detail"] = "; ".join(parts)
    if based_on_seq_no is not None:
        entry["seq_no"] = based_on_seq_no
    return entry
