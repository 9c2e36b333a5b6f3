"""Assembly of one audit event from its records: the kernel writes SYSCALL + EXECVE + CWD + PATH... +
PROCTITLE (+ EOE) with one serial number; `Assembler` buffers records by (source, serial) and `merge`
makes the event rules see (the SYSCALL record leads, the others add their derived fields)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from detectors.normalise.auditd_tables import STANDALONE_PREFIXES

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
            if rtype.startswith(STANDALONE_PREFIXES):
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
