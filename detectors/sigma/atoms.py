"""The candidate index's atom choice: which literals a compiled piece is indexed on.

An atom is (field, "eq"|"sub", case-folded text). An OR of pieces needs the union of their atoms; an AND
needs only one part's, and the part chosen is the one whose atoms prune best: few atoms, long literals,
no value (GET, 200, EXECVE, a busy Windows event code) or field (the Windows channel) that nearly every
event of a logsource carries. Pure functions; compile.py calls them when a piece's `need` is first read.

A piece's `clauses` are several such atom sets at once, ALL of which must hold for the piece to be true
(an AND of ORs): an AND keeps each part's clauses, so a rule `Image|endswith: cmd.exe` AND
`CommandLine|contains: ' /c copy '` is a candidate only where both literals are found, not on every cmd.exe
start. An OR of parts is true only if one part is, so the union of one clause of each part is a clause of
the OR. The index keeps a rule's MAX_CLAUSES best (clause_choice); `need` is worked out as before.
"""

from __future__ import annotations

from typing import Any

Clauses = tuple[frozenset[Any], ...]  # AND of ORs of atoms; () = no clause (the piece may match anything)
Index = tuple[frozenset[Any] | None, Clauses]  # a piece's (need, clauses)
MAX_CLAUSES = 3  # clauses the candidate index keeps per rule (the best by atom_score)
_WIDEST = 6  # clauses kept along the way by an AND or an OR (the best by atom_score)


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


def usable(clause: frozenset[Any]) -> bool:
    """A clause the index can look up: some atom, none a substring atom of an empty text (every value
    holds it)."""
    return bool(clause) and all(kind == "eq" or text for _, kind, text in clause)


def _best(clauses: list[frozenset[Any]], keep: int) -> Clauses:
    """The `keep` best distinct clauses by atom_score (ties: first come), without one that holds
    wherever a smaller one kept does (a superset prunes nothing more)."""
    ranked = sorted(dict.fromkeys(clauses), key=atom_score)
    out: list[frozenset[Any]] = []
    for c in ranked:
        if not any(k <= c for k in out):
            out.append(c)
            if len(out) == keep:
                break
    return tuple(out)


def leaf_index(atoms: list[frozenset[Any] | None], each: bool) -> Index:
    """(need, clauses) of one selection item: `atoms[i]` its i-th string test's atoms; `each`: all of the
    values must hold (|all), else any."""
    if each:
        return best_need(atoms), _best([a for a in atoms if a is not None and usable(a)], _WIDEST)
    need = union_needs(atoms)
    return need, ((need,) if need is not None and usable(need) else ())


def and_index(parts: list[Index]) -> Index:
    """(need, clauses) of an AND: the best part's atoms; every part's clauses."""
    return best_need([n for n, _ in parts]), _best([c for _, cs in parts for c in cs], _WIDEST)


def or_index(parts: list[Index]) -> Index:
    """(need, clauses) of an OR: the union of the parts' atoms; the union of the i-th best clause of
    each part, for i up to the fewest any part has (none if one part has none)."""
    need = union_needs([n for n, _ in parts])
    ranked = [sorted(cs, key=atom_score) for _, cs in parts]
    if not ranked or any(not r for r in ranked):
        return need, ()
    clauses = [frozenset().union(*(r[i] for r in ranked)) for i in range(min(map(len, ranked)))]
    return need, _best(clauses, _WIDEST)


def clause_choice(clauses: Clauses) -> Clauses:
    """The clauses the candidate index keys a rule on: its MAX_CLAUSES best, the first and those after
    it with no common value or field (one such holds on most events: it would be looked up for nothing)."""
    best = _best(list(clauses), MAX_CLAUSES)
    return best[:1] + tuple(c for c in best[1:] if atom_score(c)[0] < 50)
