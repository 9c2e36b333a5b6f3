"""sshd / sshd-session / dropbear messages (the body after the syslog header).

The message's first word picks at most one or two regexes; anything unrecognised still gets its
peer address when it names one, so per-IP rules see it.
"""

from __future__ import annotations

import re
from typing import Any

from detectors.normalise.ecs import is_ip, set_source
from detectors.normalise.pam import AUTH, SSH_LOGIN, mark_login, parse_pam

_PEER = r"(\S+?)(?: port (\d+))?"
_FAILED_ACCEPTED = re.compile(
    r"(Failed|Accepted|Postponed) (\S+) for (invalid user |illegal user )?(.*?) from (\S+?)(?: port (\d+))?"
    r"(?: (ssh\d?))?(?:: (.*?))?(?: \[preauth\])?\s*\Z",
    re.S,
)
_INVALID_USER = re.compile(r"(?:Invalid|Illegal) user ?(.*) from " + _PEER + r"(?: \[preauth\])?\s*\Z", re.S)
_CLOSED = re.compile(
    r"(?:Connection (?:closed|reset) by|Disconnected from|Disconnecting)"
    r"(?: (?:(authenticating|invalid|illegal) )?user (.*))? (\S+) port (\d+)(?::? ?(?!\[preauth\])(.*?))?( \[preauth\])?\s*\Z",
    re.S,
)
_RECEIVED_DISCONNECT = re.compile(
    r"Received disconnect from (\S+?)(?: port (\d+))?:\s*(\d+): (.*?)( \[preauth\])?\s*\Z", re.S
)
_NO_IDENT = re.compile(r"Did not receive identification string from (\S+?)(?: port (\d+))?\s*\Z")
_MAX_AUTH = re.compile(
    r"(?:error: )?maximum authentication attempts exceeded for (invalid user )?(.*) from "
    + _PEER
    + r"(?: ssh\d)?(?: \[preauth\])?\s*\Z",
    re.S,
)
_TOO_MANY = re.compile(
    r"Disconnecting: Too many authentication failures(?: for (?:invalid user )?(.*?))?(?: \[preauth\])?\s*\Z"
)
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
_BAD_PROTOCOL = re.compile(
    r"(?:error: )?Bad protocol version identification '(.*)' from (\S+?)(?: port (\d+))?\s*\Z", re.S
)
_KEX = re.compile(
    r"(?:error: |fatal: )?(?:kex_exchange_identification|banner exchange|ssh_dispatch_run_fatal|"
    r"Unable to negotiate|kex_protocol_error|Protocol major versions differ)"
)
# Fast forms of the commonest messages (IPv4 peer, nothing trailing): no lazy quantifier, so no
# backtracking. Same groups as the general regex they stand in front of; a miss falls through to it.
_FAILED_ACCEPTED_FAST = re.compile(
    r"(Failed|Accepted) (\S+) for (invalid user |illegal user )?([^ ]+) from ([\d.]+) port (\d+) (ssh\d?)"
    r"(?:: (.*[^\s\]]))?\Z"
)
_INVALID_USER_FAST = re.compile(r"(?:Invalid|Illegal) user ([^ ]+) from ([\d.]+) port (\d+)\Z")
_CLOSED_FAST = re.compile(
    r"(?:Connection (?:closed|reset) by|Disconnected from)(?: (authenticating|invalid|illegal) user ([^ ]+))?"
    r" ([\d.]+) port (\d+)()( \[preauth\])?\Z"
)  # () stands for the general form's reason group
_RECEIVED_DISCONNECT_FAST = re.compile(
    r"Received disconnect from ([\d.]+) port (\d+):(\d+): ([^\n]*?)( \[preauth\])?(?<!\s)\Z"
)
_TIMEOUT = re.compile(r"(?:fatal: )?Timeout before authentication for (?:connection from )?(\S+?)(?: port (\d+))?\s*\Z")


# Exact forms of the five commonest messages with a valid IPv4 peer and a port of at most 5 digits,
# for `parse_sshd_fast`. The address check (ecs._IPV4) is folded into the regex, so a clean line
# costs one match. Each accepts a subset of what its _FAST twin above accepts, with the same groups.
_IP4 = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}"
_FAILED_ACCEPTED_IP4 = re.compile(
    r"(Failed|Accepted) (\S+) for (invalid user |illegal user )?([^ ]+) from (" + _IP4 + r") port (\d{1,5}) (ssh\d?)"
    r"(?:: (.*[^\s\]]))?\Z"
)
_INVALID_USER_IP4 = re.compile(r"(?:Invalid|Illegal) user ([^ ]+) from (" + _IP4 + r") port (\d{1,5})\Z")
_CLOSED_IP4 = re.compile(
    r"(?:Connection (?:closed|reset) by|Disconnected from)(?: (authenticating|invalid|illegal) user ([^ ]+))?"
    r" (" + _IP4 + r") port (\d{1,5})( \[preauth\])?\Z"
)
_RECEIVED_DISCONNECT_IP4 = re.compile(
    r"Received disconnect from (" + _IP4 + r") port (\d{1,5}):\d+: ([^\n]*?)( \[preauth\])?(?<!\s)\Z"
)
# pam_unix's canonical failure line: values hold no '=' or space, so KV_PAIRS and _RHOST_TAIL in
# pam._pam_kv would read exactly these groups.
_PAM_UNIX_FAILURE_IP4 = re.compile(
    r"pam_unix\(sshd:auth\): authentication failure; logname=[^\s=]* uid=([^\s=]*) euid=[^\s=]* tty=([^\s=]*)"
    r" ruser=([^\s=]*) rhost=(" + _IP4 + r")  user=([^\s=]+)\Z"
)


_VERDICT_OUTCOME = {"Failed": "failure", "Accepted": "success"}


def parse_sshd(ev: dict[str, Any], msg: str) -> None:
    """sshd / sshd-session messages; anything unrecognised still gets its peer address if it names one."""
    c = msg[:1]
    if c in "FAP" and msg.startswith(("Failed ", "Accepted ", "Postponed ")):
        m = _FAILED_ACCEPTED_FAST.match(msg) or _FAILED_ACCEPTED.match(msg)
        if m is not None:
            verdict, method, invalid, user, host, port, proto, signature = m.groups()
            mark_login(ev, _VERDICT_OUTCOME.get(verdict))
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
        m = _INVALID_USER_FAST.match(msg) or _INVALID_USER.match(msg)
        if m is not None:
            mark_login(ev, "failure")
            ev["event.reason"] = "invalid user"
            ev["system.auth.ssh.event"] = "Invalid"
            ev["user.name"] = m.group(1)
            set_source(ev, m.group(2), m.group(3))
            return
    if c in "CD" and msg.startswith(
        ("Connection closed by", "Connection reset by", "Disconnected from", "Disconnecting")
    ):
        m = _CLOSED_FAST.match(msg) or _CLOSED.match(msg)
        if m is not None:
            kind, user, host, port, reason, preauth = m.groups()
            mark_login(ev, "failure" if (preauth or kind == "invalid") else None, "ssh_disconnect")
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
            mark_login(ev, "failure", "ssh_max_auth_attempts")
            if m.group(1):
                ev["user.name"] = m.group(1)
            return
    if msg.startswith("Received disconnect"):
        m = _RECEIVED_DISCONNECT_FAST.match(msg) or _RECEIVED_DISCONNECT.match(msg)
        if m is not None:
            host, port, code, reason, preauth = m.groups()
            mark_login(ev, "failure" if preauth else None, "ssh_disconnect")
            ev["event.type"] = ["end"]
            ev["event.reason"] = reason
            set_source(ev, host, port)
            return
    if msg.startswith("Did not receive identification"):
        m = _NO_IDENT.match(msg)
        if m is not None:
            mark_login(ev, "failure", "ssh_no_identification")
            set_source(ev, m.group(1), m.group(2))
            return
    if "maximum authentication attempts" in msg:
        m = _MAX_AUTH.match(msg)
        if m is not None:
            mark_login(ev, "failure", "ssh_max_auth_attempts")
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
            mark_login(ev, "failure")
            ev["event.reason"] = m.group(1)
            ev["user.name"] = m.group(2)
            set_source(ev, m.group(3))
            return
    if msg.startswith("refused connect"):
        m = _REFUSED_CONNECT.match(msg)
        if m is not None:
            mark_login(ev, "failure", "ssh_connection_refused")
            set_source(ev, m.group(2) or m.group(1))
            return
    if msg.startswith("ROOT LOGIN REFUSED"):
        m = _ROOT_REFUSED.match(msg)
        if m is not None:
            mark_login(ev, "failure")
            ev["user.name"] = "root"
            ev["event.reason"] = "root login refused"
            set_source(ev, m.group(1), m.group(2))
            return
    if msg.startswith("User "):
        m = _NOT_ALLOWED.match(msg)
        if m is not None:
            mark_login(ev, "failure")
            ev["user.name"] = m.group(1)
            ev["event.reason"] = "not allowed because " + m.group(3)
            set_source(ev, m.group(2))
            return
    if msg.startswith("reverse mapping"):
        m = _REVERSE.match(msg)
        if m is not None:
            mark_login(ev, None, "ssh_reverse_mapping_failed")
            set_source(ev, m.group(2))
            ev["source.domain"] = m.group(1)
            return
    if msg.startswith("Address "):
        m = _MAPS.match(msg)
        if m is not None:
            mark_login(ev, None, "ssh_reverse_mapping_failed")
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
            mark_login(ev, "failure", "ssh_timeout")
            set_source(ev, m.group(1), m.group(2))
            return
    if _KEX.match(msg) is not None or msg.startswith(("Bad protocol", "error: Bad protocol")):
        ev["event.category"] = ["network"]
        ev["event.type"] = ["connection", "error"]
        ev["event.action"] = "ssh_protocol_error"
        ev["event.outcome"] = "failure"
        m = _BAD_PROTOCOL.match(msg) or _NEGOTIATE.match(msg)
        if m is not None:
            set_source(
                ev,
                m.group(2) if m.re is _BAD_PROTOCOL else m.group(1),
                m.group(3) if m.re is _BAD_PROTOCOL else m.group(2),
            )
            return
    peer_fallback(ev, msg)


def parse_sshd_fast(ev: dict[str, Any], msg: str) -> bool:
    """The commonest sshd messages in one regex match and no helper calls; False (ev untouched)
    sends the message to `parse_sshd`. Fields and their order are exactly what `parse_sshd` sets."""
    c = msg[:1]
    if c == "F" or c == "A":
        m = _FAILED_ACCEPTED_IP4.match(msg)
        if m is None:
            return False
        verdict, method, invalid, user, host, port, _proto, signature = m.groups()
        ev["event.category"] = AUTH
        ev["event.type"] = ["info"]
        ev["event.action"] = SSH_LOGIN
        ev["event.outcome"] = "failure" if verdict == "Failed" else "success"
        ev["user.name"] = user
        ev["source.ip"] = ev["source.address"] = host
        ev["source.port"] = int(port)
        ev["system.auth.ssh.method"] = method
        ev["system.auth.ssh.event"] = verdict
        if invalid:
            ev["event.reason"] = "invalid user"
        if signature:
            ev["system.auth.ssh.signature"] = signature
        return True
    if c == "I":
        m = _INVALID_USER_IP4.match(msg)
        if m is None:
            return False
        user, host, port = m.groups()
        ev["event.category"] = AUTH
        ev["event.type"] = ["info"]
        ev["event.action"] = SSH_LOGIN
        ev["event.outcome"] = "failure"
        ev["event.reason"] = "invalid user"
        ev["system.auth.ssh.event"] = "Invalid"
        ev["user.name"] = user
        ev["source.ip"] = ev["source.address"] = host
        ev["source.port"] = int(port)
        return True
    if c == "C" or c == "D":
        m = _CLOSED_IP4.match(msg)
        if m is None:
            return False
        kind, user, host, port, preauth = m.groups()
        ev["event.category"] = AUTH
        ev["event.type"] = ["end"]
        ev["event.action"] = "ssh_disconnect"
        if preauth or kind == "invalid":
            ev["event.outcome"] = "failure"
        if user:
            ev["user.name"] = user
        if kind == "invalid" or kind == "illegal":
            ev["event.reason"] = "invalid user"
        ev["source.ip"] = ev["source.address"] = host
        ev["source.port"] = int(port)
        return True
    if c == "R":
        m = _RECEIVED_DISCONNECT_IP4.match(msg)
        if m is None:
            return False
        host, port, reason, preauth = m.groups()
        ev["event.category"] = AUTH
        ev["event.type"] = ["end"]
        ev["event.action"] = "ssh_disconnect"
        if preauth:
            ev["event.outcome"] = "failure"
        ev["event.reason"] = reason
        ev["source.ip"] = ev["source.address"] = host
        ev["source.port"] = int(port)
        return True
    if c == "p":
        m = _PAM_UNIX_FAILURE_IP4.match(msg)
        if m is None:
            return False
        uid, tty, ruser, host, user = m.groups()
        ev["system.auth.pam.module"] = "pam_unix"
        ev["system.auth.pam.service"] = "sshd"
        ev["system.auth.pam.type"] = "auth"
        ev["event.category"] = AUTH
        ev["event.type"] = ["info"]
        ev["event.action"] = "pam_authentication_failure"
        ev["event.outcome"] = "failure"
        ev["user.name"] = user
        if ruser:
            ev["system.auth.pam.ruser"] = ruser
        ev["source.ip"] = ev["source.address"] = host
        if tty:
            ev["system.auth.pam.tty"] = tty
        if uid:
            ev["user.id"] = uid
        return True
    return False


def parse_dropbear(ev: dict[str, Any], msg: str) -> None:
    """Dropbear (embedded sshd): 'Bad password attempt for 'root' from 1.2.3.4:5543' and friends."""
    m = _DROPBEAR_PREFIX.match(msg)
    if m is not None:
        msg = msg[m.end() :]
    low = msg.lower()
    peer = _DROPBEAR_PEER.search(msg)
    if peer is not None:
        set_source(ev, peer.group(1), peer.group(2))
    user = _DROPBEAR_USER.search(msg)
    if user is not None:
        ev["user.name"] = user.group(1)
    if low.startswith(("bad password", "login attempt for nonexistent", "exit before auth", "bad pubkey")):
        mark_login(ev, "failure")
        if "nonexistent" in low:
            ev["event.reason"] = "invalid user"
        elif "max auth tries" in low:
            ev["event.action"] = "ssh_max_auth_attempts"
    elif low.startswith(("password auth succeeded", "pubkey auth succeeded")):
        mark_login(ev, "success")
    else:
        ev["event.category"] = AUTH
        ev["event.type"] = ["info"]


def peer_fallback(ev: dict[str, Any], msg: str) -> None:
    """Unknown message: keep the first IP it names as source.ip so IP-based rules still see it."""
    if "source.ip" in ev:
        return
    m = _PEER_FROM.search(msg) or _HPN_REMOTE.search(msg)
    if m is not None and is_ip(m.group(1)):
        set_source(ev, m.group(1), m.group(2))
