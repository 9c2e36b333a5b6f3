"""The fast path for the commonest audit record: a raw SYSCALL line in the kernel's own layout.

Every syscall audit rule writes one; on a busy host they are most of audit.log's events. `syscall_line`
reads such a line with one regex match and builds its event in one dict display, exactly as the general
path (`auditd.parse_raw`) would; a line of any other shape gives None and goes the general way.
`core.parse_line` tries it first for clean `type=SYSCALL msg=` lines. tests/unit/test_normalise_auditd.py
checks by property that both paths give the same event, key order included.
"""

from __future__ import annotations

import re
from typing import Any

from detectors.normalise.auditd import KV_PAIR, NO_EXE, NO_ID, decode_value, record_time
from detectors.normalise.auditd_tables import X86_64_SYSCALLS

# The kernel's SYSCALL layout, keys in order; values of printable ASCII with no quote or space (comm/exe/
# key also "quoted"), then the optional enriched section (\x1d ARCH=... SYSCALL=... AUID="alice"...).
_V = r"([!#-&(-~]*)"  # printable ASCII but space and quotes (a bitmap class: no Unicode lookups)
_Q = r'("[!#-&(-~]*"|[!#-&(-~]*)'
_SYSCALL_LINE = re.compile(
    r"type=SYSCALL msg=audit\((\d+)(?:\.(\d+))?:(\d+)\): "
    + " ".join(
        f"{k}={_V}"
        for k in "arch syscall success exit a0 a1 a2 a3 items ppid pid auid uid gid euid suid fsuid egid sgid fsgid "
        "tty ses".split()
    )
    + f" comm={_Q} exe={_Q}(?: subj={_V})? key={_Q}(\x1d.*)?\\Z",
    re.S,
)


def syscall_line(text: str) -> dict[str, Any] | None:
    """A raw SYSCALL line of the kernel's layout, mapped exactly as parse_raw's general path maps it."""
    m = _SYSCALL_LINE.match(text)
    if m is None:
        return None
    (sec, frac, serial, arch, syscall_nr, success, exit_, a0, a1, a2, a3, items, ppid, pid, auid, uid, gid, euid,
     suid, fsuid, egid, sgid, fsgid, tty, ses, comm, exe, subj, key, tail) = m.groups()  # fmt: skip
    # comm/exe/key: "quoted" (taken as written) or bare (hex-decoded when hex, as decode_value does)
    comm_text = comm[1:-1] if comm[:1] == '"' else comm
    exe_text = exe[1:-1] if exe[:1] == '"' else exe
    ev = {
        "message": text,
        "event.original": text,
        "event.kind": "event",
        "@timestamp": record_time(sec, frac),
        "event.dataset": "auditd.log",
        "event.module": "auditd",
        "event.action": "syscall",
        "auditd.log.record_type": "SYSCALL",
        "auditd.log.sequence": int(serial) if len(serial) < 19 else 0,
        "auditd.log.arch": arch,
        "auditd.log.syscall": syscall_nr,
        "auditd.log.success": success,
        "auditd.log.exit": exit_,
        "auditd.log.a0": a0,
        "auditd.log.a1": a1,
        "auditd.log.a2": a2,
        "auditd.log.a3": a3,
        "auditd.log.items": items,
        "auditd.log.ppid": ppid,
        "auditd.log.pid": pid,
        "auditd.log.auid": auid,
        "auditd.log.uid": uid,
        "auditd.log.gid": gid,
        "auditd.log.euid": euid,
        "auditd.log.suid": suid,
        "auditd.log.fsuid": fsuid,
        "auditd.log.egid": egid,
        "auditd.log.sgid": sgid,
        "auditd.log.fsgid": fsgid,
        "auditd.log.tty": tty,
        "auditd.log.ses": ses,
        "auditd.log.comm": comm_text,
        "auditd.log.exe": exe_text,
    }
    if subj is not None:
        ev["auditd.log.subj"] = subj
    ev["auditd.log.key"] = key_text = key[1:-1] if key[:1] == '"' else key
    if pid.isdigit() and len(pid) < 12:
        ev["process.pid"] = int(pid)
    if ppid.isdigit() and len(ppid) < 12:
        ev["process.parent.pid"] = int(ppid)
    if exe and exe not in NO_EXE:
        ev["process.executable"] = path = exe_text if exe_text is not exe else decode_value(exe)
        ev["process.name"] = path.rpartition("/")[2]
    if comm and comm != "(null)":
        ev["process.name"] = comm_text if comm_text is not comm else decode_value(comm)
    if uid not in NO_ID:
        ev["user.id"] = uid
    if euid not in NO_ID:
        ev["user.effective.id"] = euid
    if auid not in NO_ID:
        ev["user.audit.id"] = auid
    if gid not in NO_ID:
        ev["user.group.id"] = gid
    syscall = None
    if tail is not None:  # ENRICHED section: UID="root" AUID="alice" SYSCALL=execve ...
        enriched = {k: v.strip('"') for k, v in KV_PAIR.findall(tail[1:])}
        for k, field in (("UID", "user.name"), ("EUID", "user.effective.name"), ("AUID", "user.audit.name")):
            got = enriched.get(k)
            if got and got not in ("unset", "?"):
                ev[field] = got
        got = enriched.get("GID")
        if got and got not in ("unset", "?"):
            ev["user.group.name"] = got
        syscall = enriched.get("SYSCALL")
    if success:
        ev["event.outcome"] = "success" if success in ("success", "yes", "1") else "failure"
    if not syscall and arch == "c000003e":
        syscall = X86_64_SYSCALLS.get(syscall_nr)
    ev["auditd.log.syscall"] = syscall or syscall_nr
    if syscall in ("execve", "execveat"):
        ev["event.category"], ev["event.type"] = ["process"], ["start"]
        ev["event.action"] = "executed"
    if key and key != "(null)":
        ev["auditd.log.key"] = key_text = key_text if key_text is not key else decode_value(key)
        ev["tags"] = [key_text]
    return ev
