"""The candidate index's atom choice: which literals a compiled piece is indexed on.

An atom is (field, "eq"|"sub", case-folded text). An OR of pieces needs the union of their atoms; an AND
needs only one part's, and the part chosen is the one whose atoms prune best: few atoms, long literals,
no value (GET, 200, EXECVE, a busy Windows event code) or field (the Windows channel) that nearly every
event of a logsource carries. Pure functions; compile.py calls them when a piece's `need` is first read.
"""

from __future__ import annotations

from typing import Any


def union_needs(needs: list[Any]) -> frozenset[Any] | None:
    """Atoms of an OR: every part's atoms, or None if one part has none (it could match anything)."""
    if any(n is None for n in needs):
        return None
    out: set[Any] = set()
    for n in needs:
        out |= n
    return frozenset(out)


# Values that nearly every event of a logsource carries: an atom on them prunes nothing.
COMMON_VALUES = frozenset(
    {
        "get",
        "post",
        "head",
        "put",
        "options",
        "200",
        "204",
        "301",
        "302",
        "304",
        "400",
        "401",
        "403",
        "404",
        "500",
        "execve",
        "syscall",
        "path",
        "cwd",
        "proctitle",
        "openat",
        "open",
        "yes",
        "no",
        "true",
        "false",
        "success",
        "failure",
        "authentication",
        "process",
        "network",
        "file",
        "tcp",
        "udp",
        "info",
        "start",
        "root",
        "0",
        "1",
        # the busiest Windows event codes (process start, script block, pipeline, logon): a rule's
        # other literal, when it has one, prunes more
        "4688",
        "4104",
        "800",
        "4624",
        # Windows values most process starts carry: integrity levels, the service host parent, the
        # program extension
        "high",
        "medium",
        "system",
        "s-1-16-8192",
        "s-1-16-12288",
        "s-1-16-16384",
        "\\svchost.exe",
        ".exe",
    }
)


# Fields whose every value is shared by a large share of a logsource's events: an atom on them
# (Channel: Security, Microsoft-Windows-Sysmon/Operational) prunes as little as a common value,
# however long its text, so another part's literal (a regex's, a contains value) is preferred.
COMMON_FIELDS = frozenset({"winlog.channel"})


def atom_score(need: frozenset[Any]) -> tuple[Any, ...]:
    # fewer atoms and longer literals prune better; common values (GET, 200, EXECVE) hardly at all
    texts = {a[2] for a in need}  # one literal looked up in several fields costs one atom
    shortest = min(map(len, texts), default=0)
    common = 50 * len(COMMON_VALUES.intersection(texts) | {a[2] for a in need if a[0] in COMMON_FIELDS})
    return (len(texts) + common + (0 if shortest >= 4 else 10), -shortest)


def best_need(needs: list[Any]) -> frozenset[Any] | None:
    """Atoms of an AND: the part whose atoms prune best (atom_score), or None if no part has any."""
    usable = [n for n in needs if n and all(a[2] for a in n)]  # n: None or a frozenset of atoms
    return min(usable, key=atom_score) if usable else None
