"""PAM messages, whatever program logs them: `pam_unix(sshd:auth): authentication failure; ...
rhost=1.2.3.4 user=root`, session open/close, password changes.

Shared by the sshd and auth parsers, which is why the `mark_login` helper lives here.
"""

from __future__ import annotations

import re
from typing import Any

from detectors.normalise.ecs import set_source

AUTH = ["authentication"]
SSH_LOGIN = "ssh_login"

KV_PAIRS = re.compile(r"(?<!\w)(\w+)=(\S*)")  # the look-behind skips mid-word starts that cannot match
_PAM_PREFIX = re.compile(r"\(?(pam_\w+)(?:\(([\w.\-]+?)(?::(\w+))?\))?\)?:? (.*)", re.S)
_RHOST_TAIL = re.compile(r"rhost=(\S*)(?:\s+user=(.*?))?\s*\Z", re.S)
_PAM_MORE = re.compile(r"PAM (\d+) more authentication failures?; (.*)", re.S)
_SESSION = re.compile(
    r"session (opened|closed) for user (\S+?)(?:\(uid=(\d+)\))?(?: by (\S*?)(?:\(uid=(\d+)\))?)?\s*\Z"
)
QUOTED = re.compile(r"'([^']*)'")
_BRACKETED = re.compile(r"\[(.*)\]")


def mark_login(ev: dict[str, Any], outcome: str | None, action: str = SSH_LOGIN) -> None:
    """An authentication event: category authentication, the action, and the outcome when known."""
    ev["event.category"] = AUTH
    ev["event.type"] = ["info"]
    ev["event.action"] = action
    if outcome:
        ev["event.outcome"] = outcome


def parse_pam(ev: dict[str, Any], msg: str, program: str, module: str | None = None) -> bool:
    """pam_unix(service:type): ... and the older 'prog(pam_unix)[pid]: ...' form (module given)."""
    service = program
    kind = None
    body = msg
    if module is None:
        m = _PAM_PREFIX.match(msg)
        if m is not None:
            module, svc, kind, body = m.groups()
            service = svc or program
        else:
            m = _PAM_MORE.match(msg)
            if m is None:
                return False
            mark_login(ev, "failure", "pam_authentication_failure")
            _pam_kv(ev, m.group(2))
            ev["event.reason"] = f"{m.group(1)} more authentication failures"
            ev["system.auth.pam.service"] = service
            return True
    ev["system.auth.pam.module"] = module
    ev["system.auth.pam.service"] = service
    if kind:
        ev["system.auth.pam.type"] = kind
    if body.startswith("authentication failure"):
        mark_login(ev, "failure", "pam_authentication_failure")
        _pam_kv(ev, body)
    elif body.startswith("session "):
        m = _SESSION.match(body)
        if m is None:
            return True
        opened, user, uid, by, by_uid = m.groups()
        ev["event.category"] = ["session"]
        ev["event.type"] = ["start"] if opened == "opened" else ["end"]
        ev["event.action"] = "session_" + opened
        ev["event.outcome"] = "success"
        ev["user.name"] = user
        if uid:
            ev["user.id"] = uid
        if by:
            ev["system.auth.pam.by"] = by
        if by_uid:
            ev["system.auth.pam.by_uid"] = by_uid
    elif body.startswith(("check pass; user unknown", "auth could not identify password")):
        mark_login(ev, "failure", "pam_authentication_failure")
        ev["event.reason"] = body.strip()
        m = _BRACKETED.search(body)
        if m is not None:
            ev["user.name"] = m.group(1)
    elif body.startswith(("password changed for", "password for")):
        ev["event.category"] = ["iam"]
        ev["event.type"] = ["user", "change"]
        ev["event.action"] = "password_changed"
        ev["event.outcome"] = "success"
        name = body.split()[-1] if body.startswith("password changed") else (QUOTED.findall(body) or [""])[0]
        if name:  # the account changed (ECS user.target); the actor is not in the line
            ev["user.target.name"] = name.strip("'")
    elif "more authentication failure" in body:
        mark_login(ev, "failure", "pam_authentication_failure")
        _pam_kv(ev, body)
    else:
        ev.setdefault("event.category", AUTH)
        ev.setdefault("event.type", ["info"])
        _pam_kv(ev, body)
    return True


def _pam_kv(ev: dict[str, Any], body: str) -> None:
    kv = dict(KV_PAIRS.findall(body))
    tail = _RHOST_TAIL.search(body)  # the real rhost is the one only 'user=' follows (injection-safe)
    user = tail.group(2) if tail is not None and tail.group(2) else None
    if user or kv.get("user"):
        ev["user.name"] = user or kv["user"]
    elif kv.get("ruser"):
        ev["user.name"] = kv["ruser"]
    if kv.get("ruser"):
        ev["system.auth.pam.ruser"] = kv["ruser"]
    rhost = tail.group(1) if tail is not None else kv.get("rhost")
    if rhost:
        set_source(ev, rhost)
    if kv.get("tty"):
        ev["system.auth.pam.tty"] = kv["tty"]
    if kv.get("uid"):
        ev["user.id"] = kv["uid"]
