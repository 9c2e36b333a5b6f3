"""A Windows process's creation context on its later Sysmon events (the process entity model).

Sysmon writes what a process is - its command line, parent, user, integrity level, original file
name, hashes - once, in its process creation event (1). Its later events - network connections (3),
image loads (7), file (2, 11, 15, 23, 26 ...), registry (12-14), pipe (17, 18), DNS (22), process
access and remote threads by it (8, 10), its end (5) - name it only by `Image` and `ProcessGuid`.
SigmaHQ writes rules for those categories expecting the process's context (`CommandLine`,
`ParentImage`, `User` on a network connection or a file write), as EDRs and Elastic's process
entity model give every event its process's context.

`ProcessContext` remembers, per (verified sender, Windows computer, ProcessGuid), the ECS fields a
Sysmon 1 event carries about its process and fills those a later event of the same process lacks:

- ECS fields, as Elastic would show them: `process.command_line`, `process.working_directory`,
  `process.pe.original_file_name`, `process.hash.*`, `process.pe.imphash`,
  `process.parent.{executable,name,pid,command_line,entity_id}`, `user.name`/`user.domain`;
- Sysmon's values that ECS has no field for, as Windows wrote them (what SigmaHQ's `User`,
  `IntegrityLevel` and `LogonId` test): `socpipe.process.user` ('NT AUTHORITY\\SYSTEM'),
  `socpipe.process.integrity_level`, `socpipe.process.logon_id`;
- `socpipe.enriched`: the names of the fields filled, so an analyst can tell them from what the
  event itself said.

A field the event carries is never overwritten, and `winlog.event_data.*` stays exactly what
Windows wrote (the Sigma mapping reads the filled fields after the raw name: detectors/mappings/
windows.yml). A process's own fields on its creation event are not touched; its end (Sysmon 5) is
filled, then forgotten. ProcessGuid is unique per boot; the key also holds the verified sender
(agency and agent, from the raw record's signature) and the Windows computer named in the event,
so one agency's events never fill another's. Memory: at most `max_processes` processes and
`max_chars` characters of their values (least recently seen dropped first; 0 processes turns
enrichment off): a command line can be ~32,000 characters, and anyone on a host can start processes
with long ones, so a count alone would let 20,000 of them hold over a gigabyte per worker. Pure
logic, no I/O; the worker's Normaliser holds one, so context is lost when a partition moves to
another worker (its later events are filled again from the next process creation seen there) and is
not in the worker's snapshots.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

SYSMON_DATASET = "windows.sysmon_operational"
# the ECS fields of a process creation that describe the process itself (never the event's object)
CONTEXT_FIELDS = (
    "process.command_line",
    "process.working_directory",
    "process.pe.original_file_name",
    "process.hash.md5",
    "process.hash.sha1",
    "process.hash.sha256",
    "process.pe.imphash",
    "process.parent.executable",
    "process.parent.name",
    "process.parent.pid",
    "process.parent.command_line",
    "process.parent.entity_id",
    "user.name",
    "user.domain",
)
# Sysmon 1 EventData without an ECS field -> where a later event gets it, unless it has that name itself
RAW_FIELDS = (
    ("User", "socpipe.process.user"),
    ("IntegrityLevel", "socpipe.process.integrity_level"),
    ("LogonId", "socpipe.process.logon_id"),
)
ENRICHED = "socpipe.enriched"
_NONE = frozenset(("", "-"))
# (field of the creation event, field filled on a later one, field whose presence there means it says it)
_SOURCES = tuple((f, f, f) for f in CONTEXT_FIELDS) + tuple(
    ("winlog.event_data." + raw, to, "winlog.event_data." + raw) for raw, to in RAW_FIELDS
)
_FROM = tuple(src for src, _, _ in _SOURCES)
_TARGETS = tuple((to, said) for _, to, said in _SOURCES)

# the creation event's values of _SOURCES' fields, by position (None: absent)
Context = tuple[Any, ...]
MAX_CONTEXT_CHARS = 32 << 20  # ~1,600 characters for each of 20,000 processes; real ones are far shorter


def _chars(ctx: Context) -> int:
    """What a context's values weigh, in characters (a value that is not text counts 16: the same when
    it is dropped as when it was kept)."""
    return sum(len(v) if type(v) is str else 16 for v in ctx if v is not None)


class ProcessContext:
    def __init__(self, max_processes: int = 20_000, max_chars: int = MAX_CONTEXT_CHARS) -> None:
        if max_processes < 0:
            raise ValueError("max_processes must not be negative")
        self.max_processes = max_processes
        self.max_chars = max_chars
        self.chars = 0  # what the kept contexts weigh (_chars)
        self._known: OrderedDict[tuple[str, Any, str], Context] = OrderedDict()
        self.filled = 0  # events that got at least one field

    def __len__(self) -> int:
        return len(self._known)

    def apply(self, sender: str, ev: dict[str, Any]) -> None:
        """One normalised Sysmon event of `sender` (verified agency|agent): remember a creation,
        fill any other event of a known process, forget an ended one."""
        guid = ev.get("process.entity_id")
        if type(guid) is not str or not self.max_processes:
            return
        key = (sender, ev.get("host.hostname"), guid)
        code = ev.get("event.code")
        known = self._known
        if code == "1":
            if key in known:  # the same creation delivered again
                self.chars -= _chars(known.pop(key))
            created = known[key] = tuple(map(ev.get, _FROM))
            self.chars += _chars(created)
            while known and (len(known) > self.max_processes or self.chars > self.max_chars):
                self.chars -= _chars(known.popitem(last=False)[1])
            return
        ctx = known.get(key)
        if ctx is None:
            return
        if code == "5":
            self.chars -= _chars(known.pop(key))
        else:
            known.move_to_end(key)
        filled = []
        for (to, said), v in zip(_TARGETS, ctx):
            if v is not None and said not in ev and v not in _NONE:
                ev[to] = v
                filled.append(to)
        if not filled:
            return
        if "user.name" in filled:
            related = ev.setdefault("related.user", [])
            if ev["user.name"] not in related:
                related.append(ev["user.name"])
        ev[ENRICHED] = filled
        self.filled += 1
