"""Linux audit records (raw audit.log, `node=` prefixed, audispd/syslog-forwarded, kernel
`audit: type=1300 audit(...)`) and the assembly of a multi-record event by its serial number.

`parse_record` turns ONE record into an event (what `parse_line` returns); `Assembler` merges the
records of one event (SYSCALL + EXECVE + CWD + PATH + PROCTITLE ... + EOE) into the event rules see.
Hex-encoded values (EXECVE args, proctitle, USER_CMD cmd, unusual acct names) are decoded.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

from detectors.normalise.ecs import epoch_str_iso, is_ip

_RECORD = re.compile(r"(?:node=(\S+) )?type=(\S+) (?:msg=)?audit\((\d+)(?:\.(\d+))?:(\d+)\): ?(.*)", re.S)
_KV = re.compile(r"([\w-]+(?:\[\d+\])?)=(\"[^\"]*\"|'[^']*'|\S*)")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+\Z")
UNSET_ID = "4294967295"
NUMERIC_TYPES = {
    "1100": "USER_AUTH",
    "1101": "USER_ACCT",
    "1103": "CRED_ACQ",
    "1104": "CRED_DISP",
    "1105": "USER_START",
    "1106": "USER_END",
    "1112": "USER_LOGIN",
    "1114": "ADD_USER",
    "1115": "DEL_USER",
    "1116": "ADD_GROUP",
    "1117": "DEL_GROUP",
    "1123": "USER_CMD",
    "1130": "SERVICE_START",
    "1131": "SERVICE_STOP",
    "1300": "SYSCALL",
    "1302": "PATH",
    "1305": "CONFIG_CHANGE",
    "1306": "SOCKADDR",
    "1307": "CWD",
    "1309": "EXECVE",
    "1320": "EOE",
    "1326": "SECCOMP",
    "1327": "PROCTITLE",
    "1400": "AVC",
    "1401": "SELINUX_ERR",
    "1701": "ANOM_ABEND",
    "2100": "ANOM_LOGIN_FAILURES",
}
_X86_64_SYSCALLS = {
    "59": "execve",
    "322": "execveat",
    "2": "open",
    "257": "openat",
    "42": "connect",
    "43": "accept",
    "49": "bind",
    "50": "listen",
    "82": "rename",
    "87": "unlink",
    "263": "unlinkat",
    "90": "chmod",
    "268": "fchmodat",
    "92": "chown",
    "105": "setuid",
    "101": "ptrace",
    "175": "init_module",
    "313": "finit_module",
    "165": "mount",
    "56": "clone",
    "57": "fork",
    "62": "kill",
    "0": "read",
    "1": "write",
    "4": "stat",
    "21": "access",
}
_CATEGORY = {
    "USER_AUTH": (["authentication"], ["info"]),
    "USER_LOGIN": (["authentication"], ["start"]),
    "USER_ERR": (["authentication"], ["info"]),
    "USER_ACCT": (["authentication"], ["info"]),
    "CRED_ACQ": (["authentication"], ["info"]),
    "USER_START": (["session"], ["start"]),
    "USER_END": (["session"], ["end"]),
    "USER_CMD": (["process"], ["start"]),
    "ADD_USER": (["iam"], ["user", "creation"]),
    "DEL_USER": (["iam"], ["user", "deletion"]),
    "ADD_GROUP": (["iam"], ["group", "creation"]),
    "DEL_GROUP": (["iam"], ["group", "deletion"]),
    "USER_MGMT": (["iam"], ["user", "change"]),
    "USER_CHAUTHTOK": (["iam"], ["user", "change"]),
    "GRP_MGMT": (["iam"], ["group", "change"]),
    "CONFIG_CHANGE": (["configuration"], ["change"]),
    "SERVICE_START": (["process"], ["start"]),
    "SERVICE_STOP": (["process"], ["end"]),
    "ANOM_ABEND": (["process"], ["end"]),
    "AVC": (["intrusion_detection"], ["denied"]),
    "DAEMON_START": (["process"], ["start"]),
    "DAEMON_END": (["process"], ["end"]),
}
# Records that are the whole event: emitted at once, no assembly wait.
_STANDALONE_PREFIXES = (
    "USER_",
    "CRED_",
    "ADD_",
    "DEL_",
    "GRP_",
    "DAEMON_",
    "SERVICE_",
    "ANOM_LOGIN",
    "LOGIN",
    "SYSTEM_",
    "ACCT_",
    "CHGRP_",
    "CHUSER_",
    "ROLE_",
    "USYS_",
    "TRUSTED_APP",
)


def decode_value(value: str) -> str:
    """Audit quotes plain strings and hex-encodes anything with spaces, quotes or control bytes."""
    if value[:1] == '"' and value[-1:] == '"' and len(value) >= 2:
        return value[1:-1]
    if len(value) >= 2 and value != "(null)" and _HEX.match(value):
        try:
            return bytes.fromhex(value).decode("utf-8", errors="replace")
        except ValueError:
            return value
    return value


# record key -> event field, for keys that are never skipped (bounded: keys come from the logs)
_FIELD_NAMES: dict[str, str] = {}


def _kvs(body: str) -> dict[str, str]:
    raw = body.split("\x1d", 1)
    kv = dict(_KV.findall(raw[0]))
    inner = kv.get("msg")
    if inner and inner[:1] == "'":
        kv.pop("msg")
        for k, v in _KV.findall(inner[1:-1]):
            kv.setdefault(k, v)
    if len(raw) > 1:  # ENRICHED section: UID="root" AUID="alice" SYSCALL=execve ...
        for k, v in _KV.findall(raw[1]):
            kv["_" + k] = v.strip('"')
    return kv


def parse_raw(text: str) -> dict[str, Any] | None:
    """A raw audit.log line (no syslog header)."""
    ev = {"message": text, "event.original": text, "event.kind": "event"}
    return ev if parse_record(ev, text) else None


def parse_record(ev: dict[str, Any], msg: str) -> bool:
    """Fill ev from one audit record; False when msg is not an audit record."""
    if msg.startswith("audit: "):
        msg = msg[7:]
    m = _RECORD.match(msg)
    if m is None:
        return False
    node, rtype, sec, frac, serial, body = m.groups()
    rtype = NUMERIC_TYPES.get(rtype, rtype)
    ts = epoch_str_iso(sec, frac or "")
    if "@timestamp" not in ev or ev.get("@timestamp") is None or ts is not None:
        ev["@timestamp"] = ts
    ev["event.dataset"] = "auditd.log"
    ev["event.module"] = "auditd"
    ev["event.action"] = rtype.lower()
    ev["auditd.log.record_type"] = rtype
    ev["auditd.log.sequence"] = int(serial) if len(serial) < 19 else 0
    if node:
        ev["auditd.log.node"] = node
        ev.setdefault("host.hostname", node)
    kv = _kvs(body)
    execve = rtype == "EXECVE"
    names = _FIELD_NAMES
    for k, v in kv.items():
        name = names.get(k)
        if name is None:
            if k[0] == "_" or (execve and k[0] == "a" and k[1:2].isdigit()):
                continue  # enriched copies and raw (hex) arguments: decoded into process.args instead
            name = "auditd.log." + k
            if len(names) < 2048 and not (k[0] == "a" and k[1:2].isdigit()):  # EXECVE skips a0, a1[2]...
                names[k] = name
        ev[name] = v.strip('"') if '"' in v else v
    cat = _CATEGORY.get(rtype)
    if cat is not None:
        ev["event.category"], ev["event.type"] = cat
    _ecs_fields(ev, rtype, kv)
    return True


def _ecs_fields(ev: dict[str, Any], rtype: str, kv: dict[str, str]) -> None:
    if rtype == "EXECVE":
        args = _execve_args(kv)
        ev["process.args"] = args
        ev["process.args_count"] = len(args)
        ev["process.command_line"] = " ".join(args)
        return
    if rtype == "PROCTITLE":
        title = decode_value(kv.get("proctitle", "")).replace("\x00", " ").strip()
        ev["process.title"] = title
        return
    if rtype == "CWD":
        ev["process.working_directory"] = decode_value(kv.get("cwd", ""))
        return
    if rtype == "PATH":
        name = kv.get("name")
        if name and name != "(null)":
            ev["file.path"] = decode_value(name)
        return
    if rtype == "SOCKADDR":
        ev["auditd.log.saddr"] = kv.get("saddr", "")
        return
    for key, field in (("pid", "process.pid"), ("ppid", "process.parent.pid")):
        v = kv.get(key, "")
        if v.isdigit() and len(v) < 12:
            ev[field] = int(v)
    exe = kv.get("exe")
    if exe and exe not in ('"?"', "?", "(null)"):
        ev["process.executable"] = decode_value(exe)
        ev["process.name"] = ev["process.executable"].rpartition("/")[2]
    comm = kv.get("comm")
    if comm and comm != "(null)":
        ev["process.name"] = decode_value(comm)
    for key, field in (
        ("uid", "user.id"),
        ("euid", "user.effective.id"),
        ("auid", "user.audit.id"),
        ("gid", "user.group.id"),
    ):
        got = kv.get(key)
        if got is not None and got not in ("?", UNSET_ID, "-1"):
            ev[field] = got
    for key, field in (
        ("_UID", "user.name"),
        ("_EUID", "user.effective.name"),
        ("_AUID", "user.audit.name"),
        ("_GID", "user.group.name"),
    ):
        got = kv.get(key)
        if got and got not in ("unset", "?"):
            ev[field] = got
    acct = kv.get("acct") or kv.get("id") if rtype.startswith(("USER_", "CRED_", "ADD_", "DEL_", "ANOM_")) else None
    if acct and acct not in ("?", '"?"'):
        name = decode_value(acct)
        if name.isdigit() and kv.get("acct") is None:
            ev["user.target.id" if rtype in ("ADD_USER", "DEL_USER") else "user.id"] = name
        else:
            ev["user.name"] = name
            if rtype in ("ADD_USER", "DEL_USER", "USER_MGMT", "USER_CHAUTHTOK"):
                ev["user.target.name"] = name
    res = kv.get("res") or kv.get("success")
    if res:
        ev["event.outcome"] = "success" if res.strip('"') in ("success", "yes", "1") else "failure"
    addr = kv.get("addr", "")
    if addr and is_ip(addr):
        ev["source.ip"] = addr
    host = kv.get("hostname", "")
    if host and host not in ("?", "(none)") and not is_ip(host):
        ev["source.domain"] = host
    if rtype == "SYSCALL":
        syscall = kv.get("_SYSCALL") or (
            _X86_64_SYSCALLS.get(kv.get("syscall", "")) if kv.get("arch") == "c000003e" else None
        )
        if syscall:
            ev["auditd.log.syscall"] = syscall
        else:
            ev["auditd.log.syscall"] = kv.get("syscall", "")
        ev["auditd.log.success"] = kv.get("success", "")
        for k in ("arch", "items", "exit", "tty", "ses"):
            if k in kv:
                ev["auditd.log." + k] = kv[k]
        if syscall in ("execve", "execveat"):
            ev["event.category"], ev["event.type"] = ["process"], ["start"]
            ev["event.action"] = "executed"
        audit_key = kv.get("key")
        if audit_key and audit_key != "(null)":
            ev["auditd.log.key"] = decode_value(audit_key)
            ev["tags"] = ev.get("tags", []) + [ev["auditd.log.key"]]
    if rtype == "USER_CMD" and kv.get("cmd"):
        ev["auditd.log.cmd"] = decode_value(kv["cmd"])
    if rtype in ("USER_CMD", "USER_AUTH", "USER_LOGIN", "USER_ACCT", "USER_START", "USER_END", "CRED_ACQ"):
        op = kv.get("op")
        if op:
            ev["auditd.log.op"] = op.strip('"')


def _execve_args(kv: dict[str, str]) -> list[str]:
    argc_text = kv.get("argc", "0")
    argc = int(argc_text) if argc_text.isdigit() and len(argc_text) < 7 else 0
    args = []
    for i in range(min(argc, 10000)):
        v = kv.get(f"a{i}")
        if v is None:  # long argument split into a{i}[0], a{i}[1]... chunks (always hex)
            chunks, j = [], 0
            while f"a{i}[{j}]" in kv:
                chunks.append(kv[f"a{i}[{j}]"])
                j += 1
            v = "".join(chunks)
            if not v:
                continue
        args.append(decode_value(v))
    return args


_DERIVED = (
    "process.args",
    "process.args_count",
    "process.command_line",
    "process.title",
    "process.working_directory",
    "file.path",
)


def merge(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge one event's records: the SYSCALL (or first) record leads, the others add derived fields."""
    lead = next((r for r in records if r.get("auditd.log.record_type") == "SYSCALL"), records[0])
    ev = dict(lead)
    types = []
    paths = []
    for r in records:
        rtype = r.get("auditd.log.record_type", "")
        types.append(rtype)
        if r is lead:
            continue
        if rtype == "PATH" and "file.path" in r:
            paths.append(r["file.path"])
            if r.get("auditd.log.nametype") == "PARENT" and "file.path" in ev:
                continue
        for field in _DERIVED:
            if field in r and field not in ev:
                ev[field] = r[field]
        for k, v in r.items():
            if k.startswith(("user.", "source.", "process.")) and k not in ev:
                ev[k] = v
    if "process.command_line" not in ev and ev.get("process.title"):
        ev["process.command_line"] = ev["process.title"]
    if paths:
        ev["auditd.paths"] = paths
    ev["auditd.log.record_types"] = [t for t in types if t != "EOE"]
    if len(records) > 1:
        ev["event.original"] = "\n".join(r.get("event.original", "") for r in records)
    if lead.get("log.offset") is None:
        for r in records:
            if "log.offset" in r:
                ev["log.offset"] = r["log.offset"]
                break
    return ev


class Assembler:
    """Buffers records by (source, serial) until the event is complete.

    Complete means: EOE or PROCTITLE (the kernel writes it last) arrived; the record type stands
    alone (USER_*, CRED_*...); a newer serial from the same source started (the kernel writes one
    event's records together, and many audit.log files carry no EOE); too many events are pending;
    or flush()."""

    def __init__(self, max_pending: int = 64) -> None:
        self.max_pending = max_pending
        self._pending: OrderedDict[tuple[str, int], list[dict[str, Any]]] = OrderedDict()

    def add(self, source: str, record: dict[str, Any]) -> list[dict[str, Any]]:
        rtype = record.get("auditd.log.record_type", "")
        serial = record.get("auditd.log.sequence", 0)
        key = (source, serial)
        out: list[dict[str, Any]] = []
        group = self._pending.get(key)
        if group is None:
            for old_key in [k for k in self._pending if k[0] == source and k[1] < serial]:
                out.append(merge(self._pending.pop(old_key)))
            if rtype.startswith(_STANDALONE_PREFIXES):
                out.append(merge([record]))
                return out
            if rtype == "EOE":
                return out
            if rtype == "PROCTITLE":  # a lone PROCTITLE: its SYSCALL was emitted already or lost
                out.append(merge([record]))
                return out
            self._pending[key] = [record]
        else:
            if rtype != "EOE":
                group.append(record)
            if rtype in ("EOE", "PROCTITLE"):
                del self._pending[key]
                out.append(merge(group))
                return out
        while len(self._pending) > self.max_pending:
            _, old = self._pending.popitem(last=False)
            out.append(merge(old))
        return out

    def flush(self) -> list[dict[str, Any]]:
        out = [merge(g) for g in self._pending.values()]
        self._pending.clear()
        return out
