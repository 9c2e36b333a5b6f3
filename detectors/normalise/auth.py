"""Linux authentication messages (the body after the syslog header): the program router
`parse_auth`, and sudo, su, user/group management, systemd-logind, cron. sshd lives in `sshd.py` and
PAM in `pam.py`.

Each parser fills a flat ECS event in place. Non-ECS detail goes under `system.auth.*`, as
Filebeat's system module does.
"""

from __future__ import annotations

import re
from typing import Any

from detectors.normalise.pam import AUTH, KV_PAIRS, QUOTED, mark_login, parse_pam
from detectors.normalise.sshd import parse_dropbear, parse_sshd, peer_fallback

_SU_OLD = re.compile(r"(Successful|FAILED) su for (\S+) by (\S+)")
_SU_DEBIAN = re.compile(r"(?:\(to (\S+)\) (\S+) on (\S+)|([+-]) (\S+) (\S+?):(\S+))\s*\Z")
_LOGIND_NEW = re.compile(r"New session (\S+) of user (\S+?)\.?\s*\Z")
_LOGIND_END = re.compile(r"(?:Removed session (\S+?)\.|Session (\S+) logged out\.)")
_GPASSWD_ADD = re.compile(r"user (\S+) added by (\S+) to group (\S+)\s*\Z")
_CRON_CMD = re.compile(r"\((\S+)\) CMD \((.*)\)\s*\Z", re.S)


def set_command(ev: dict[str, Any], command: str) -> None:
    """The command a sudo/cron line runs, in ECS process fields. sudo logs argv joined by blanks
    (no quoting), so blanks split the arguments. `process.name`/`pid` stay those of the logging
    program (the syslog tag: sudo, CRON), so rules can still tell who ran it."""
    command = command.strip()
    ev["process.command_line"] = command
    args = command.split()
    if args:
        ev["process.args"] = args
        ev["process.args_count"] = len(args)
        if args[0].startswith("/"):
            ev["process.executable"] = args[0]


def parse_sudo(ev: dict[str, Any], msg: str) -> None:
    """'alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/ls' and its failure forms."""
    body = msg.strip()
    if body.startswith(("pam_", "PAM ")):
        parse_pam(ev, body, "sudo")
        return
    user, sep, rest = body.partition(" : ")
    if not sep or " " in user:
        ev["event.category"] = ["process"]
        ev["event.type"] = ["info"]
        return
    ev["user.name"] = user
    command = None
    at = rest.find("COMMAND=")
    if at >= 0:
        command = rest[at + 8 :]
        rest = rest[:at]
    reason = None
    for part in rest.split(" ; "):
        key, eq, value = part.strip().partition("=")
        if not eq:
            if key:
                reason = key
            continue
        if key == "USER":
            ev["user.effective.name"] = value
        elif key == "TTY":
            ev["system.auth.sudo.tty"] = value
        elif key == "PWD":
            ev["process.working_directory"] = value
        elif key == "GROUP":
            ev["user.effective.group.name"] = value
    if command is not None:
        set_command(ev, command)
    if reason:
        ev["event.category"] = AUTH
        ev["event.type"] = ["info"]
        ev["event.outcome"] = "failure"
        ev["event.reason"] = reason
        ev["event.action"] = "sudo_auth_failure" if "password" in reason else "sudo_denied"
    else:
        ev["event.category"] = ["process"]
        ev["event.type"] = ["start"]
        ev["event.action"] = "sudo_command"
        ev["event.outcome"] = "success"


def parse_su(ev: dict[str, Any], msg: str) -> None:
    if msg.startswith(("pam_", "PAM ")):
        parse_pam(ev, msg, "su")
        return
    m = _SU_OLD.match(msg)
    if m is not None:
        verdict, target, by = m.groups()
        mark_login(ev, "success" if verdict == "Successful" else "failure", "su")
        ev["user.name"] = by
        ev["user.effective.name"] = target
        return
    m = _SU_DEBIAN.match(msg)
    if m is not None:
        to, by, tty, sign, tty2, by2, target2 = m.groups()
        mark_login(ev, "failure" if sign == "-" else "success", "su")
        ev["user.name"] = by or by2
        ev["user.effective.name"] = to or target2
        ev["system.auth.su.tty"] = tty or tty2
        return
    ev["event.category"] = AUTH
    ev["event.type"] = ["info"]


_USER_ACTIONS = (
    # (substring, ECS type, action)
    ("new user", ["user", "creation"], "user_created"),
    ("new group", ["group", "creation"], "group_created"),
    ("group added", ["group", "creation"], "group_created"),
    ("delete user", ["user", "deletion"], "user_deleted"),
    ("removed group", ["group", "deletion"], "group_deleted"),
    ("add '", ["group", "change"], "user_added_to_group"),
    ("' removed", ["group", "deletion"], "group_deleted"),
    ("change user", ["user", "change"], "user_changed"),
    ("lock user", ["user", "change"], "user_locked"),
    ("unlock user", ["user", "change"], "user_unlocked"),
    ("password for", ["user", "change"], "password_changed"),
    ("password changed", ["user", "change"], "password_changed"),
    ("changed password", ["user", "change"], "password_changed"),
    ("new password", ["user", "change"], "password_changed"),
    ("failed adding", ["user", "creation"], "user_creation_failed"),
)


def parse_user_mgmt(ev: dict[str, Any], msg: str, program: str) -> None:
    """useradd/usermod/userdel/groupadd/groupdel/passwd/chpasswd/gpasswd: category iam."""
    if msg.startswith(("pam_", "PAM ")):
        parse_pam(ev, msg, program)
        return
    ev["event.category"] = ["iam"]
    low = msg.lower()
    for needle, types, action in _USER_ACTIONS:
        if needle in low:
            ev["event.type"] = types
            ev["event.action"] = action
            break
    else:
        ev["event.type"] = ["info"]
        ev["event.action"] = program
    ev["event.outcome"] = "failure" if ("fail" in low or "error" in low or "cannot" in low) else "success"
    kv = dict(KV_PAIRS.findall(msg.replace(", ", " ")))
    name = kv.get("name") or next(iter(QUOTED.findall(msg)), None)
    is_group = ev["event.type"][0] == "group" and "user" not in ev["event.action"]
    if name:
        # ECS: the account acted upon is user.target.*, a group created/deleted is group.*; the
        # actor (user.name) is not in these lines
        ev["group.name" if is_group else "user.target.name"] = name.strip(",")
    for key, user_field, group_field in (("UID", "user.target.id", None), ("GID", "user.target.group.id", "group.id")):
        value = kv.get(key)
        if value:
            ev[group_field if is_group and group_field else user_field] = value.strip(",")
    if kv.get("home"):
        ev["system.auth.useradd.home"] = kv["home"].strip(",")
    if kv.get("shell"):
        ev["system.auth.useradd.shell"] = kv["shell"].strip(",")
    if ev.get("event.action") == "user_added_to_group":
        quoted = QUOTED.findall(msg)
        if len(quoted) >= 2:
            ev["user.target.name"] = quoted[0]
            ev["group.name"] = quoted[1]
        return
    m = _GPASSWD_ADD.match(msg)
    if m is not None:  # gpasswd: 'user eve added by root to group sudo'
        ev["event.type"] = ["group", "change"]
        ev["event.action"] = "user_added_to_group"
        ev["user.target.name"], ev["user.name"], ev["group.name"] = m.groups()


def parse_logind(ev: dict[str, Any], msg: str) -> None:
    m = _LOGIND_NEW.match(msg)
    if m is not None:
        ev["event.category"] = ["session"]
        ev["event.type"] = ["start"]
        ev["event.action"] = "logind_session_start"
        ev["event.outcome"] = "success"
        ev["system.auth.session.id"] = m.group(1)
        ev["user.name"] = m.group(2)
        return
    m = _LOGIND_END.match(msg)
    if m is not None:
        ev["event.category"] = ["session"]
        ev["event.type"] = ["end"]
        ev["event.action"] = "logind_session_end"
        ev["system.auth.session.id"] = m.group(1) or m.group(2)
        return
    ev["event.category"] = ["session"]
    ev["event.type"] = ["info"]


def parse_cron(ev: dict[str, Any], msg: str) -> None:
    if msg.startswith(("pam_", "PAM ")):
        parse_pam(ev, msg, "cron")
        return
    m = _CRON_CMD.match(msg)
    if m is not None:
        ev["event.category"] = ["process"]
        ev["event.type"] = ["start"]
        ev["event.action"] = "cron_command"
        ev["user.name"] = m.group(1)
        set_command(ev, m.group(2))
        return
    ev["event.category"] = ["process"]
    ev["event.type"] = ["info"]


USER_MGMT_PROGRAMS = frozenset(
    (
        "useradd",
        "usermod",
        "userdel",
        "groupadd",
        "groupmod",
        "groupdel",
        "passwd",
        "chpasswd",
        "chage",
        "gpasswd",
        "newusers",
        "adduser",
        "deluser",
        "addgroup",
        "delgroup",
        "chfn",
        "chsh",
    )
)
SSHD_PROGRAMS = frozenset(("sshd", "sshd-session", "sshd-auth", "sshd-keygen", "dropbear"))
CRON_PROGRAMS = frozenset(("CRON", "cron", "crond", "anacron"))
PAM_PROGRAMS = frozenset(
    (
        "login",
        "unix_chkpwd",
        "pkexec",
        "polkitd",
        "gdm-password",
        "lightdm",
        "sddm",
        "vsftpd",
        "systemd-user",
        "runuser",
        "doas",
        "xrdp-sesman",
        "dovecot",
        "proftpd",
    )
)


def parse_auth(ev: dict[str, Any], program: str, msg: str) -> bool:
    """Route by program; True when the program belongs to the auth family (dataset system.auth)."""
    module = None
    if "(" in program and program.endswith(")"):  # old 'sshd(pam_unix)' tag
        program, _, module = program[:-1].partition("(")
        ev["process.name"] = program
    if module is not None and module.startswith("pam"):
        if not parse_pam(ev, msg, program, module):
            ev["event.category"] = AUTH
        return True
    if program == "dropbear":
        parse_dropbear(ev, msg)
    elif program in SSHD_PROGRAMS:
        parse_sshd(ev, msg)
    elif program == "sudo":
        parse_sudo(ev, msg)
    elif program == "su":
        parse_su(ev, msg)
    elif program in USER_MGMT_PROGRAMS:
        parse_user_mgmt(ev, msg, program)
    elif program == "systemd-logind":
        parse_logind(ev, msg)
    elif program in CRON_PROGRAMS:
        parse_cron(ev, msg)
    elif program in PAM_PROGRAMS or msg.startswith(("pam_", "PAM ", "(pam_")):
        if not parse_pam(ev, msg, program):
            if program not in PAM_PROGRAMS:
                return False
            ev["event.category"] = AUTH
            ev["event.type"] = ["info"]
            peer_fallback(ev, msg)
    else:
        return False
    return True
