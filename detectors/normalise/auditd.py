"""Linux audit records (raw audit.log, `node=` prefixed, audispd/syslog-forwarded, kernel
`audit: type=1300 audit(...)`) and the assembly of a multi-record event by its serial number.

`parse_record` turns ONE record into an event (what `parse_line` returns); `Assembler`
(auditd_assemble.py) merges the records of one event (SYSCALL + EXECVE + CWD + PATH + PROCTITLE ... +
EOE) into the event rules see. Hex-encoded values (EXECVE args, proctitle, USER_CMD cmd, unusual acct
names) are decoded. The tables (record types, syscalls, categories) are in auditd_tables.py; raw SYSCALL
lines in the kernel's layout take the fast path of auditd_syscall.py, which gives the same event.

Here a record's key=value pairs are read by one regex `findall` and copied into the event by one
`dict.update` over C iterators (names from a cache, quotes stripped by `str.strip`); only records that
need keys left out (EXECVE arguments, enriched `_KEY` copies) take the per-key loop, and the ECS mapping
reads only the keys its record type uses. Behaviour is pinned by tests/unit/test_normalise_auditd.py
(every CAM-LDS audit.log event, per record and assembled, as before the restructuring).
"""

from __future__ import annotations

import re
from itertools import repeat
from typing import Any

from detectors.common.times import MAX_EPOCH, iso_ms
from detectors.normalise.auditd_assemble import Assembler, merge
from detectors.normalise.auditd_tables import CATEGORY, NUMERIC_TYPES, UNSET_ID, X86_64_SYSCALLS
from detectors.normalise.ecs import is_ip

__all__ = [
    "KV_PAIR",
    "NO_EXE",
    "NO_ID",
    "Assembler",
    "decode_value",
    "merge",
    "parse_raw",
    "parse_record",
    "record_time",
]

_RECORD = re.compile(r"(?:node=(\S+) )?type=(\S+) (?:msg=)?audit\((\d+)(?:\.(\d+))?:(\d+)\): ?(.*)", re.S)
KV_PAIR = re.compile(r"([\w-]+(?:\[\d+\])?)=(\"[^\"]*\"|'[^']*'|\S*)")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+\Z")
_ACCOUNT_TYPES = ("USER_", "CRED_", "ADD_", "DEL_", "ANOM_")
_OP_TYPES = frozenset({"USER_CMD", "USER_AUTH", "USER_LOGIN", "USER_ACCT", "USER_START", "USER_END", "CRED_ACQ"})
NO_EXE = frozenset({'"?"', "?", "(null)"})
NO_ID = frozenset({"?", UNSET_ID, "-1"})


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


class _FieldNames(dict[str, str]):
    """record key -> event field `auditd.log.<key>`, cached for the keys that recur (bounded: keys come
    from the logs; EXECVE's a0, a1[2]... are never cached)."""

    def __missing__(self, key: str) -> str:
        name = "auditd.log." + key
        if len(self) < 2048 and not (key[0] == "a" and key[1:2].isdigit()):
            self[key] = name
        return name


_FIELD_NAMES = _FieldNames()
_field_name = _FIELD_NAMES.__getitem__
_last_second = ("", "")  # the last audit time 'seconds' and its '...THH:MM:SS.': a record's siblings follow it
_minutes: dict[int, str] = {}  # epoch minute -> 'YYYY-MM-DDTHH:MM:'
_MAX_MINUTE = int(MAX_EPOCH) // 60


def record_time(sec: str, frac: str | None) -> str | None:
    """ECS @timestamp of audit(SEC.FRAC:...) exactly (no float rounding); None past 2200 or unreadable."""
    global _last_second
    last = _last_second
    if last[0] == sec:
        head = last[1]
    else:
        if not sec.isdigit() or len(sec) > 11:
            return None
        minute, second = divmod(int(sec), 60)
        if minute >= _MAX_MINUTE:
            return None
        prefix = _minutes.get(minute)
        if prefix is None:
            if len(_minutes) > 4096:
                _minutes.clear()
            prefix = _minutes[minute] = iso_ms(minute * 60)[:-7]  # 'YYYY-MM-DDTHH:MM:'
        head = f"{prefix}{second:02d}."
        _last_second = (sec, head)
    return f"{head}{(frac + '000')[:3] if frac else '000'}Z"


def _kvs(body: str) -> tuple[dict[str, str], bool]:
    """The record's key=value pairs (values as written) and whether any key is an enriched/underscore
    one (`_UID`...: read by the ECS mapping, never copied as a field)."""
    raw, enriched, tail = body.partition("\x1d")
    kv = dict(KV_PAIR.findall(raw))
    inner = kv.get("msg")
    if inner and inner[:1] == "'":
        kv.pop("msg")
        for k, v in KV_PAIR.findall(inner[1:-1]):
            kv.setdefault(k, v)
    if enriched:  # ENRICHED section: UID="root" AUID="alice" SYSCALL=execve ...
        for k, v in KV_PAIR.findall(tail):
            kv["_" + k] = v.strip('"')
        return kv, True
    return kv, "_" in "".join(kv) and any(k[0] == "_" for k in kv)


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
    ts = record_time(sec, frac)
    if ts is not None or ev.get("@timestamp") is None:
        ev["@timestamp"] = ts
    ev["event.dataset"] = "auditd.log"
    ev["event.module"] = "auditd"
    ev["event.action"] = rtype.lower()
    ev["auditd.log.record_type"] = rtype
    ev["auditd.log.sequence"] = int(serial) if len(serial) < 19 else 0
    if node:
        ev["auditd.log.node"] = node
        ev.setdefault("host.hostname", node)
    kv, underscored = _kvs(body)
    execve = rtype == "EXECVE"
    if execve or underscored:
        for k, v in kv.items():
            if k[0] == "_" or (execve and k[0] == "a" and k[1:2].isdigit()):
                continue  # enriched copies and raw (hex) arguments: decoded into process.args instead
            ev[_field_name(k)] = v.strip('"')
    else:
        ev.update(zip(map(_field_name, kv), map(str.strip, kv.values(), repeat('"'))))
    cat = CATEGORY.get(rtype)
    if cat is not None:
        ev["event.category"], ev["event.type"] = cat
    mapper = _BY_TYPE.get(rtype)
    if mapper is not None:
        mapper(ev, kv)
    else:
        _process_and_user(ev, rtype, kv, underscored)
    return True


def _execve(ev: dict[str, Any], kv: dict[str, str]) -> None:
    args = _execve_args(kv)
    ev["process.args"] = args
    ev["process.args_count"] = len(args)
    ev["process.command_line"] = " ".join(args)


def _proctitle(ev: dict[str, Any], kv: dict[str, str]) -> None:
    ev["process.title"] = decode_value(kv.get("proctitle", "")).replace("\x00", " ").strip()


def _cwd(ev: dict[str, Any], kv: dict[str, str]) -> None:
    ev["process.working_directory"] = decode_value(kv.get("cwd", ""))


def _path(ev: dict[str, Any], kv: dict[str, str]) -> None:
    name = kv.get("name")
    if name and name != "(null)":
        ev["file.path"] = decode_value(name)


def _sockaddr(ev: dict[str, Any], kv: dict[str, str]) -> None:
    ev["auditd.log.saddr"] = kv.get("saddr", "")


# Record types whose ECS fields come from one or two keys (no process or user fields).
_BY_TYPE = {"EXECVE": _execve, "PROCTITLE": _proctitle, "CWD": _cwd, "PATH": _path, "SOCKADDR": _sockaddr}


_ID_FIELDS = (("uid", "user.id"), ("euid", "user.effective.id"), ("auid", "user.audit.id"), ("gid", "user.group.id"))


def _process_and_user(ev: dict[str, Any], rtype: str, kv: dict[str, str], enriched: bool) -> None:
    """SYSCALL, USER_*, CRED_*, account and service records: process, user, outcome and source fields."""
    get = kv.get
    v = get("pid", "")
    if v.isdigit() and len(v) < 12:
        ev["process.pid"] = int(v)
    v = get("ppid", "")
    if v.isdigit() and len(v) < 12:
        ev["process.parent.pid"] = int(v)
    exe = get("exe")
    if exe and exe not in NO_EXE:
        ev["process.executable"] = path = decode_value(exe)
        ev["process.name"] = path.rpartition("/")[2]
    comm = get("comm")
    if comm and comm != "(null)":
        ev["process.name"] = decode_value(comm)
    for key, field in _ID_FIELDS:
        got = get(key)
        if got is not None and got not in NO_ID:
            ev[field] = got
    if enriched:
        for key, field in (
            ("_UID", "user.name"),
            ("_EUID", "user.effective.name"),
            ("_AUID", "user.audit.name"),
            ("_GID", "user.group.name"),
        ):
            got = get(key)
            if got and got not in ("unset", "?"):
                ev[field] = got
    if rtype.startswith(_ACCOUNT_TYPES):
        _account(ev, rtype, kv)
    res = get("res") or get("success")
    if res:
        ev["event.outcome"] = "success" if res.strip('"') in ("success", "yes", "1") else "failure"
    addr = get("addr")
    if addr and is_ip(addr):
        ev["source.ip"] = addr
    host = get("hostname")
    if host and host not in ("?", "(none)") and not is_ip(host):
        ev["source.domain"] = host
    if rtype == "SYSCALL":
        _syscall(ev, kv)
    elif rtype in _OP_TYPES:
        if rtype == "USER_CMD" and get("cmd"):
            ev["auditd.log.cmd"] = decode_value(kv["cmd"])
        op = get("op")
        if op:
            ev["auditd.log.op"] = op.strip('"')


def _account(ev: dict[str, Any], rtype: str, kv: dict[str, str]) -> None:
    """The account a USER_/CRED_/ADD_/DEL_/ANOM_ record names (acct=, else id=)."""
    acct = kv.get("acct") or kv.get("id")
    if acct and acct not in ("?", '"?"'):
        name = decode_value(acct)
        if name.isdigit() and kv.get("acct") is None:
            ev["user.target.id" if rtype in ("ADD_USER", "DEL_USER") else "user.id"] = name
        else:
            ev["user.name"] = name
            if rtype in ("ADD_USER", "DEL_USER", "USER_MGMT", "USER_CHAUTHTOK"):
                ev["user.target.name"] = name


def _syscall(ev: dict[str, Any], kv: dict[str, str]) -> None:
    get = kv.get
    syscall = get("_SYSCALL") or (X86_64_SYSCALLS.get(get("syscall", "")) if get("arch") == "c000003e" else None)
    ev["auditd.log.syscall"] = syscall or get("syscall", "")
    ev["auditd.log.success"] = get("success", "")
    for k in ("arch", "items", "exit", "tty", "ses"):
        if k in kv:
            ev["auditd.log." + k] = kv[k]
    if syscall in ("execve", "execveat"):
        ev["event.category"], ev["event.type"] = ["process"], ["start"]
        ev["event.action"] = "executed"
    audit_key = get("key")
    if audit_key and audit_key != "(null)":
        ev["auditd.log.key"] = key = decode_value(audit_key)
        ev["tags"] = ev.get("tags", []) + [key]


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
