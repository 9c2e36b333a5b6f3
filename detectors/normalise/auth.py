"""Linux authentication messages (the body after the syslog header): sshd, PAM, sudo, su,
user/group management, systemd-logind, cron.

Each parser fills a flat ECS event in place. sshd messages are matched by a cheap prefix test
before any regex, so a line costs one `startswith` scan and at most one or two regexes.
Non-ECS detail goes under `system.auth.*`, as Filebeat's system module does.
"""

from __future__ import annotations

import re

from detectors.normalise.ecs import is_ip, set_source

AUTH = ["authentication"]
SSH_LOGIN = "ssh_login"

_PEER = r"(\S+?)(?: port (\d+))?"
_FAILED_ACCEPTED = re.compile(
    r"(Failed|Accepted|Postponed) (\S+) for (invalid user |illegal user )?(.*?) from (\S+?)(?: port (\d+))?"
    r"(?: (ssh\d?))?(?:: (.*?))?(?: \[preauth\])?\s*\Z", re.S)
_INVALID_USER = re.compile(r"(?:Invalid|Illegal) user ?(.*) from " + _PEER + r"(?: \[preauth\])?\s*\Z", re.S)
_CLOSED = re.compile(
    r"(?:Connection (?:closed|reset) by|Disconnected from|Disconnecting)"
    r"(?: (?:(authenticating|invalid|illegal) )?user (.*))? (\S+) port (\d+)(?::? ?(.*?))?( \[preauth\])?\s*\Z", re.S)
_RECEIVED_DISCONNECT = re.compile(r"Received disconnect from (\S+?)(?: port (\d+))?:\s*(\d+): (.*?)( \[preauth\])?\s*\Z", re.S)
_NO_IDENT = re.compile(r"Did not receive identification string from (\S+?)(?: port (\d+))?\s*\Z")
_MAX_AUTH = re.compile(
    r"(?:error: )?maximum authentication attempts exceeded for (invalid user )?(.*) from " + _PEER +
    r"(?: ssh\d)?(?: \[preauth\])?\s*\Z", re.S)
_TOO_MANY = re.compile(r"Disconnecting: Too many authentication failures(?: for (?:invalid user )?(.*?))?(?: \[preauth\])?\s*\Z")
_PAM_ERROR = re.compile(r"error: PAM: (.*?) for (?:(?:illegal|invalid) user )?(.*) from (\S+?)(?: via \S+)?\s*\Z", re.S)
_REFUSED_CONNECT = re.compile(r"refused connect from (?:.*@)?(\S+?)(?: \((\S+)\))?\s*\Z")
_DROPBEAR_PREFIX = re.compile(r"\[\d+\] [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ")
_DROPBEAR_PEER = re.compile(r"from <?(\S+):(\d+)>?")
_DROPBEAR_USER = re.compile(r"(?:for|user) '(.*?)'")
_PEER_FROM = re.compile(r"(?:from|with|by|for) \[?([0-9A-Fa-f:.]+[0-9A-Fa-f])\]?(?: port (\d+))?")
_HPN_REMOTE = re.compile(r"Remote: ([0-9A-Fa-f:.]+)-(\d+);")  # HPN-SSH 'SSH: Server;Ltype: ...' lines
_REVERSE = re.compile(r"reverse mapping checking getaddrinfo for (\S+) \[(\S+)\] failed")
_MAPS = re.compile(r"Address (\S+) maps to (\S+), but this does not map back")
_NOT_ALLOWED = re.compile(r"User (.*) from (\S+) not allowed because (.*?)\s*\Z", re.S)
_ROOT_REFUSED = re.compile(r"ROOT LOGIN REFUSED FROM " + _PEER + r"(?: \[preauth\])?\s*\Z")
_CONNECTION_FROM = re.compile(r"Connection from (\S+) port (\d+)(?: on (\S+) port (\d+))?")
_NEGOTIATE = re.compile(r"Unable to negotiate with (\S+) port (\d+): (.*?)(?: \[preauth\])?\s*\Z", re.S)
_BAD_PROTOCOL = re.compile(r"(?:error: )?Bad protocol version identification '(.*)' from (\S+?)(?: port (\d+))?\s*\Z", re.S)
_KEX = re.compile(r"(?:error: |fatal: )?(?:kex_exchange_identification|banner exchange|ssh_dispatch_run_fatal|"
                  r"Unable to negotiate|kex_protocol_error|Protocol major versions differ)")
_TIMEOUT = re.compile(r"(?:fatal: )?Timeout before authentication for (?:connection from )?(\S+?)(?: port (\d+))?\s*\Z")
_KV = re.compile(r"(\w+)=(\S*)")
_PAM_PREFIX = re.compile(r"\(?(pam_\w+)(?:\(([\w.\-]+?)(?::(\w+))?\))?\)?:? (.*)", re.S)
_RHOST_TAIL = re.compile(r"rhost=(\S*)(?:\s+user=(.*?))?\s*\Z", re.S)
_PAM_MORE = re.compile(r"PAM (\d+) more authentication failures?; (.*)", re.S)
_SESSION = re.compile(r"session (opened|closed) for user (\S+?)(?:\(uid=(\d+)\))?(?: by (\S*?)(?:\(uid=(\d+)\))?)?\s*\Z")
_SU_OLD = re.compile(r"(Successful|FAILED) su for (\S+) by (\S+)")
_SU_DEBIAN = re.compile(r"(?:\(to (\S+)\) (\S+) on (\S+)|([+-]) (\S+) (\S+?):(\S+))\s*\Z")
_NAME = re.compile(r"name=([^,\s]+)")
_QUOTED = re.compile(r"'([^']*)'")
_LOGIND_NEW = re.compile(r"New session (\S+) of user (\S+?)\.?\s*\Z")
_LOGIND_END = re.compile(r"(?:Removed session (\S+?)\.|Session (\S+) logged out\.)")
_CRON_CMD = re.compile(r"\((\S+)\) CMD \((.*)\)\s*\Z", re.S)


def _login(ev: dict, outcome: str | None, action: str = SSH_LOGIN) -> None:
    ev["event.category"] = AUTH
    ev["event.type"] = ["info"]
    ev["event.action"] = action
    if outcome:
        ev["event.outcome"] = outcome


def parse_sshd(ev: dict, msg: str) -> None:
    """sshd / sshd-session messages; anything unrecognised still gets its peer address if it names one."""
    c = msg[:1]
    if c in "FAP" and msg.startswith(("Failed ", "Accepted ", "Postponed ")):
        m = _FAILED_ACCEPTED.match(msg)
        if m is not None:
            verdict, method, invalid, user, host, port, proto, signature = m.groups()
            _login(ev, {"Failed": "failure", "Accepted": "success"}.get(verdict))
            ev["user.name"] = user
            set_source(ev, host, port)
            ev["system.auth.ssh.method"] = method
            ev["system.auth.ssh.event"] = verdict
            if invalid:
                ev["event.reason"] = "invalid user"
            if signature:
                ev["system.auth.ssh.signature"] = signature
            return
    if c in "II" and msg.startswith(("Invalid user", "Illegal user")):
        m = _INVALID_USER.match(msg)
        if m is not None:
            _login(ev, "failure")
            ev["event.reason"] = "invalid user"
            ev["system.auth.ssh.event"] = "Invalid"
            ev["user.name"] = m.group(1)
            set_source(ev, m.group(2), m.group(3))
            return
    if c in "CD" and msg.startswith(("Connection closed by", "Connection reset by", "Disconnected from", "Disconnecting")):
        m = _CLOSED.match(msg)
        if m is not None:
            kind, user, host, port, reason, preauth = m.groups()
            _login(ev, "failure" if (preauth or kind == "invalid") else None, "ssh_disconnect")
            ev["event.type"] = ["end"]
            if user:
                ev["user.name"] = user
            if kind in ("invalid", "illegal"):
                ev["event.reason"] = "invalid user"
            elif reason:
                ev["event.reason"] = reason
            set_source(ev, host, port)
            return
        m = _TOO_MANY.match(msg)
        if m is not None:
            _login(ev, "failure", "ssh_max_auth_attempts")
            if m.group(1):
                ev["user.name"] = m.group(1)
            return
    if msg.startswith("Received disconnect"):
        m = _RECEIVED_DISCONNECT.match(msg)
        if m is not None:
            host, port, code, reason, preauth = m.groups()
            _login(ev, "failure" if preauth else None, "ssh_disconnect")
            ev["event.type"] = ["end"]
            ev["event.reason"] = reason
            set_source(ev, host, port)
            return
    if msg.startswith("Did not receive identification"):
        m = _NO_IDENT.match(msg)
        if m is not None:
            _login(ev, "failure", "ssh_no_identification")
            set_source(ev, m.group(1), m.group(2))
            return
    if "maximum authentication attempts" in msg:
        m = _MAX_AUTH.match(msg)
        if m is not None:
            _login(ev, "failure", "ssh_max_auth_attempts")
            ev["user.name"] = m.group(2)
            set_source(ev, m.group(3), m.group(4))
            if m.group(1):
                ev["event.reason"] = "invalid user"
            return
    if msg.startswith(("pam_", "PAM ", "(pam_")):
        if parse_pam(ev, msg, "sshd"):
            return
    if msg.startswith("error: PAM:"):
        m = _PAM_ERROR.match(msg)
        if m is not None:
            _login(ev, "failure")
            ev["event.reason"] = m.group(1)
            ev["user.name"] = m.group(2)
            set_source(ev, m.group(3))
            return
    if msg.startswith("refused connect"):
        m = _REFUSED_CONNECT.match(msg)
        if m is not None:
            _login(ev, "failure", "ssh_connection_refused")
            set_source(ev, m.group(2) or m.group(1))
            return
    if msg.startswith("ROOT LOGIN REFUSED"):
        m = _ROOT_REFUSED.match(msg)
        if m is not None:
            _login(ev, "failure")
            ev["user.name"] = "root"
            ev["event.reason"] = "root login refused"
            set_source(ev, m.group(1), m.group(2))
            return
    if msg.startswith("User "):
        m = _NOT_ALLOWED.match(msg)
        if m is not None:
            _login(ev, "failure")
            ev["user.name"] = m.group(1)
            ev["event.reason"] = "not allowed because " + m.group(3)
            set_source(ev, m.group(2))
            return
    if msg.startswith("reverse mapping"):
        m = _REVERSE.match(msg)
        if m is not None:
            _login(ev, None, "ssh_reverse_mapping_failed")
            set_source(ev, m.group(2))
            ev["source.domain"] = m.group(1)
            return
    if msg.startswith("Address "):
        m = _MAPS.match(msg)
        if m is not None:
            _login(ev, None, "ssh_reverse_mapping_failed")
            set_source(ev, m.group(1))
            ev["source.domain"] = m.group(2)
            return
    if msg.startswith("Connection from"):
        m = _CONNECTION_FROM.match(msg)
        if m is not None:
            ev["event.category"] = ["network"]
            ev["event.type"] = ["connection", "start"]
            ev["event.action"] = "ssh_connection"
            set_source(ev, m.group(1), m.group(2))
            if m.group(3) and is_ip(m.group(3)):
                ev["destination.ip"] = m.group(3)
                ev["destination.port"] = int(m.group(4))
            return
    if "Timeout before authentication" in msg:
        m = _TIMEOUT.match(msg)
        if m is not None:
            _login(ev, "failure", "ssh_timeout")
            set_source(ev, m.group(1), m.group(2))
            return
    if _KEX.match(msg) is not None or msg.startswith(("Bad protocol", "error: Bad protocol")):
        ev["event.category"] = ["network"]
        ev["event.type"] = ["connection", "error"]
        ev["event.action"] = "ssh_protocol_error"
        ev["event.outcome"] = "failure"
        m = _BAD_PROTOCOL.match(msg) or _NEGOTIATE.match(msg)
        if m is not None:
            set_source(ev, m.group(2) if m.re is _BAD_PROTOCOL else m.group(1),
                       m.group(3) if m.re is _BAD_PROTOCOL else m.group(2))
            return
    _peer_fallback(ev, msg)


def parse_dropbear(ev: dict, msg: str) -> None:
    """Dropbear (embedded sshd): 'Bad password attempt for 'root' from 1.2.3.4:5543' and friends."""
    m = _DROPBEAR_PREFIX.match(msg)
    if m is not None:
        msg = msg[m.end():]
    low = msg.lower()
    peer = _DROPBEAR_PEER.search(msg)
    if peer is not None:
        set_source(ev, peer.group(1), peer.group(2))
    user = _DROPBEAR_USER.search(msg)
    if user is not None:
        ev["user.name"] = user.group(1)
    if low.startswith(("bad password", "login attempt for nonexistent", "exit before auth", "bad pubkey")):
        _login(ev, "failure")
        if "nonexistent" in low:
            ev["event.reason"] = "invalid user"
        elif "max auth tries" in low:
            ev["event.action"] = "ssh_max_auth_attempts"
    elif low.startswith(("password auth succeeded", "pubkey auth succeeded")):
        _login(ev, "success")
    else:
        ev["event.category"] = AUTH
        ev["event.type"] = ["info"]


def _peer_fallback(ev: dict, msg: str) -> None:
    """Unknown message: keep the first IP it names as source.ip so IP-based rules still see it."""
    if "source.ip" in ev:
        return
    m = _PEER_FROM.search(msg) or _HPN_REMOTE.search(msg)
    if m is not None and is_ip(m.group(1)):
        set_source(ev, m.group(1), m.group(2))


def parse_pam(ev: dict, msg: str, program: str, module: str | None = None) -> bool:
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
            _login(ev, "failure", "pam_authentication_failure")
            _pam_kv(ev, m.group(2))
            ev["event.reason"] = f"{m.group(1)} more authentication failures"
            ev["system.auth.pam.service"] = service
            return True
    ev["system.auth.pam.module"] = module
    ev["system.auth.pam.service"] = service
    if kind:
        ev["system.auth.pam.type"] = kind
    if body.startswith("authentication failure"):
        _login(ev, "failure", "pam_authentication_failure")
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
        _login(ev, "failure", "pam_authentication_failure")
        ev["event.reason"] = body.strip()
        m = re.search(r"\[(.*)\]", body)
        if m is not None:
            ev["user.name"] = m.group(1)
    elif body.startswith(("password changed for", "password for")):
        ev["event.category"] = ["iam"]
        ev["event.type"] = ["user", "change"]
        ev["event.action"] = "password_changed"
        ev["event.outcome"] = "success"
        name = body.split()[-1] if body.startswith("password changed") else (_QUOTED.findall(body) or [""])[0]
        if name:
            ev["user.name"] = name.strip("'")
            ev["user.target.name"] = ev["user.name"]
    elif "more authentication failure" in body:
        _login(ev, "failure", "pam_authentication_failure")
        _pam_kv(ev, body)
    else:
        ev.setdefault("event.category", AUTH)
        ev.setdefault("event.type", ["info"])
        _pam_kv(ev, body)
    return True


def _pam_kv(ev: dict, body: str) -> None:
    kv = dict(_KV.findall(body))
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


def parse_sudo(ev: dict, msg: str) -> None:
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
        command = rest[at + 8:]
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
            ev["system.auth.sudo.pwd"] = value
        elif key == "GROUP":
            ev["group.name"] = value
    if command is not None:
        ev["system.auth.sudo.command"] = command.strip()
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


def parse_su(ev: dict, msg: str) -> None:
    if msg.startswith(("pam_", "PAM ")):
        parse_pam(ev, msg, "su")
        return
    m = _SU_OLD.match(msg)
    if m is not None:
        verdict, target, by = m.groups()
        _login(ev, "success" if verdict == "Successful" else "failure", "su")
        ev["user.name"] = by
        ev["user.effective.name"] = target
        return
    m = _SU_DEBIAN.match(msg)
    if m is not None:
        to, by, tty, sign, tty2, by2, target2 = m.groups()
        _login(ev, "failure" if sign == "-" else "success", "su")
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


def parse_user_mgmt(ev: dict, msg: str, program: str) -> None:
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
    kv = dict(_KV.findall(msg.replace(", ", " ")))
    name = kv.get("name") or next(iter(_QUOTED.findall(msg)), None)
    if name:
        target = "group.name" if ev["event.type"][0] == "group" and "user" not in ev["event.action"] else "user.name"
        ev[target] = name.strip(",")
        if target == "user.name":
            ev["user.target.name"] = ev[target]
    if kv.get("UID"):
        ev["user.id"] = kv["UID"].strip(",")
    if kv.get("GID"):
        ev["group.id"] = kv["GID"].strip(",")
    if kv.get("home"):
        ev["system.auth.useradd.home"] = kv["home"].strip(",")
    if kv.get("shell"):
        ev["system.auth.useradd.shell"] = kv["shell"].strip(",")
    if ev.get("event.action") == "user_added_to_group":
        quoted = _QUOTED.findall(msg)
        if len(quoted) >= 2:
            ev["user.name"] = ev["user.target.name"] = quoted[0]
            ev["group.name"] = quoted[1]


def parse_logind(ev: dict, msg: str) -> None:
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


def parse_cron(ev: dict, msg: str) -> None:
    if msg.startswith(("pam_", "PAM ")):
        parse_pam(ev, msg, "cron")
        return
    m = _CRON_CMD.match(msg)
    if m is not None:
        ev["event.category"] = ["process"]
        ev["event.type"] = ["start"]
        ev["event.action"] = "cron_command"
        ev["user.name"] = m.group(1)
        ev["system.auth.cron.command"] = m.group(2)
        return
    ev["event.category"] = ["process"]
    ev["event.type"] = ["info"]


USER_MGMT_PROGRAMS = frozenset((
    "useradd", "usermod", "userdel", "groupadd", "groupmod", "groupdel", "passwd", "chpasswd",
    "chage", "gpasswd", "newusers", "adduser", "deluser", "addgroup", "delgroup", "chfn", "chsh"))
SSHD_PROGRAMS = frozenset(("sshd", "sshd-session", "sshd-auth", "sshd-keygen", "dropbear"))
CRON_PROGRAMS = frozenset(("CRON", "cron", "crond", "anacron"))
PAM_PROGRAMS = frozenset(("login", "unix_chkpwd", "pkexec", "polkitd", "gdm-password", "lightdm",
                          "sddm", "vsftpd", "systemd-user", "runuser", "doas", "xrdp-sesman", "dovecot", "proftpd"))


def parse_auth(ev: dict, program: str, msg: str) -> bool:
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
            _peer_fallback(ev, msg)
    else:
        return False
    return True

