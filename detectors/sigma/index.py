"""Candidate index: which rules of one logsource bucket can possibly match an event.

Built from each rule's clauses (atoms.py: atom sets that must all hold; a rule's `need` is one): per field, an exact-value map and one
Aho-Corasick automaton (a DFA, ahocorasick-rs) over all substring atoms (regex literal prefilters
included), reporting every atom found, overlapping ones too. Both sides are case-folded with
`fold` (casefold.py), as the rules' predicates fold them. Looking an
event up costs, per indexed field it carries, one case-folding, one dict probe and one automaton
pass, instead of evaluating every rule. Keyword atoms live under a pseudo-field read like the
keyword predicate reads (message, else event.original). Rules without a usable clause are always
candidates. A rule's first clause is looked up under its position; its other clauses (at most
atoms.MAX_CLAUSES - 1) under numbers past the rules', and the rule is a candidate only when its
position and all of those were hit. The result is a superset of the matching rules; each candidate is
then evaluated by its full predicate.

Log values repeat (status codes, user agents, user names, auditd's syscall fields): the rules one
str or int value of one field hits are remembered per field of an index (bounded together: values
of at most MEMO_VALUE_CHARS characters, MEMO_ENTRIES entries in all, emptied when full), so a
repeated value costs one dict probe instead of case-folding and an automaton pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ahocorasick_rs import AhoCorasick, Implementation, MatchKind

from detectors.sigma.atoms import clause_choice, usable
from detectors.sigma.casefold import fold
from detectors.sigma.compile import KEYWORD_INDEX_FIELD
from detectors.sigma.fields import scalar_text

MEMO_ENTRIES = 4096  # per index; each holds a value of at most MEMO_VALUE_CHARS and a tuple of rules
MEMO_VALUE_CHARS = 128
_NONE: tuple[int, ...] = ()


def _folded(v: object) -> str:
    """A value as the predicates compare it (scalar_text), case-folded."""
    return fold(scalar_text(v))


@dataclass
class CandidateIndex:
    always: list[Any] = field(default_factory=list)  # rule positions evaluated on every event
    # (field, exact map or None, automatons or None, memo, keyword pseudo-field?, every atom ASCII?); the memo maps a str
    # or int value of the field to the rule positions it hits (see the module doc): bool and float
    # values never enter (True == 1 == 1.0, but their texts differ)
    fields: list[Any] = field(default_factory=list)
    size: int = 0
    # rule position -> the numbers of its other clauses (None: one clause); None when no rule has more
    more: list[Any] | None = None
    memo_entries: int = field(default=0, repr=False, compare=False)  # in all the fields' memos
    # `fields` by field name (the keyword pseudo-field apart), made on the first lookup
    _by_field: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    _keyword: Any = field(default=None, repr=False, compare=False)
    _plain: tuple[Any, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def build(cls, needs: list[Any]) -> CandidateIndex:
        """`needs[i]` is rule i's clauses (a tuple of atom sets, all needed), its one atom set, or None."""
        idx = cls(size=len(needs))
        exact: dict[str, Any] = {}
        subs: dict[str, Any] = {}
        more: list[Any] = [None] * len(needs)
        number = len(needs)
        for pos, need in enumerate(needs):
            if not need:
                clauses: tuple[Any, ...] = ()
            elif type(need) is tuple and type(need[0]) is frozenset:
                clauses = need
            else:  # one atom set (any iterable of atoms)
                clauses = (frozenset(need),)
            clauses = clause_choice(tuple(c for c in clauses if usable(c)))
            if not clauses:
                idx.always.append(pos)  # no atoms, or an empty substring (any value holds it)
                continue
            ids = [pos]
            for _ in clauses[1:]:
                ids.append(number)
                number += 1
            if len(ids) > 1:
                more[pos] = tuple(ids[1:])
            for cid, clause in zip(ids, clauses):
                for fld, kind, text in clause:
                    table = exact if kind == "eq" else subs
                    key = fold(text) if type(text) is str else text
                    table.setdefault(fld, {}).setdefault(key, set()).add(cid)
        if number > len(needs):
            idx.more = more
        for fld in sorted(set(exact) | set(subs)):
            auto = None
            if fld in subs:
                texts = sorted(subs[fld])
                # the automaton reports atom numbers; found[n] is the rules of atom n
                found = [tuple(sorted(subs[fld][t])) for t in texts]
                dfa = AhoCorasick(texts, matchkind=MatchKind.Standard, implementation=Implementation.DFA)
                auto = (dfa.find_matches_as_indexes, found)
            exact_map = {k: tuple(sorted(v)) for k, v in exact[fld].items()} if fld in exact else None
            ascii_atoms = all(type(t) is not str or t.isascii() for t in [*exact.get(fld, ()), *subs.get(fld, ())])
            idx.fields.append((fld, exact_map, auto, {}, fld == KEYWORD_INDEX_FIELD, ascii_atoms))
        return idx

    def candidates(self, event: dict[str, Any]) -> list[Any]:
        hits: set[Any] = set()
        lookup = self._by_field
        if lookup is None:
            lookup = self._by_field = {f[0]: f for f in self.fields if not f[4]}
            self._plain = tuple((f[0], f) for f in self.fields if not f[4])
            self._keyword = next((f for f in self.fields if f[4]), None)
        # walk the shorter side: a Windows event's ~50 fields looked up among the 100-170 its bucket
        # indexes, or the few fields a web or auth bucket indexes read from its event's ~30
        if len(event) < len(lookup):
            for name, v in event.items():
                entry = lookup.get(name)
                if entry is None:
                    continue
                kind = type(v)
                if kind is str or kind is int:  # the usual case: one value, most often seen before
                    found = entry[3].get(v)
                    if found is None:
                        found = self._remember(entry, v)
                    if found:
                        hits.update(found)
                elif v is not None:
                    self._value(entry, v, hits)
        else:
            get = event.get
            for name, entry in self._plain:
                v = get(name)
                if v is None:
                    continue
                kind = type(v)
                if kind is str or kind is int:
                    found = entry[3].get(v)
                    if found is None:
                        found = self._remember(entry, v)
                    if found:
                        hits.update(found)
                else:
                    self._value(entry, v, hits)
        entry = self._keyword
        if entry is not None:
            v = event.get("message")
            if v is None:
                v = event.get("event.original")
            if type(v) is str:
                found = entry[3].get(v)
                if found is None:
                    found = self._remember(entry, v)
                if found:
                    hits.update(found)
            elif v is not None:
                self._value(entry, v, hits)
        more = self.more
        if more is not None and hits:
            size = self.size
            # a rule with more clauses is a candidate only when every one of them was hit too
            hits = {h for h in hits if h < size and ((m := more[h]) is None or hits.issuperset(m))}
        if self.always:
            hits.update(self.always)
        elif not hits:
            return []
        return sorted(hits)

    def _value(self, entry: Any, v: Any, hits: set[Any]) -> None:
        """The rule positions (clause numbers) one field's value `v` hits, added to `hits`."""
        _, table, auto, memo, _, _ = entry
        kind = type(v)
        if kind is str or kind is int:  # the usual case: one value, most often seen before
            found = memo.get(v)
            if found is None:
                found = self._remember(entry, v)
            if found:
                hits.update(found)
        elif kind is list or kind is tuple:
            for x in v:
                kind = type(x)
                if kind is str or kind is int:
                    found = memo.get(x)
                    if found is None:
                        found = self._remember(entry, x)
                else:
                    found = _hits(table, auto, _folded(x))
                if found:
                    hits.update(found)
        else:
            found = _hits(table, auto, _folded(v))
            if found:
                hits.update(found)

    def _remember(self, entry: Any, x: str | int) -> tuple[int, ...]:
        """`_hits` of a str or int value of the field `entry`, kept in its memo when short enough."""
        _, table, auto, memo, _, ascii_atoms = entry
        if type(x) is str:  # this runs for most values not seen before
            found = _hits(table, auto, x.lower() if x.isascii() else _ascii_fold(x) if ascii_atoms else fold(x))
        else:
            found = _hits(table, auto, str(x))
        if type(x) is int or len(x) <= MEMO_VALUE_CHARS:  # type: ignore[arg-type]
            if self.memo_entries >= MEMO_ENTRIES:
                for f in self.fields:
                    f[3].clear()
                self.memo_entries = 0
            memo[x] = found
            self.memo_entries += 1
        return found


# the only characters `fold` turns into ASCII ones: long s (to 's') and the Kelvin sign (to 'k')
# (test_sigma_index_fold checks every code point)
_FOLDS_TO_ASCII = ("\u017f", "\u212a")


def _ascii_fold(x: str) -> str:
    """What of fold(x) an index whose atoms are all ASCII can find: fold(x)'s ASCII characters in
    place (each other character as '?', one for one), at a fraction of fold's cost on non-ASCII text
    (a message with a '(R)' sign). An ASCII atom found in fold(x) is found here at the same place;
    an atom with a '?' may be found where fold(x) has none, which only offers one rule more."""
    if _FOLDS_TO_ASCII[0] in x or _FOLDS_TO_ASCII[1] in x:
        return fold(x)
    return x.encode("ascii", "replace").lower().decode("ascii")


def _hits(table: dict[str, Any] | None, auto: Any, s: str) -> tuple[int, ...]:
    """The rule positions one value of one field, folded (`fold`), hits: its exact atom, and every
    substring atom inside it (overlapping ones too), both in `fold`'s spelling."""
    found: set[int] = set()
    if table is not None:
        exact = table.get(s)
        if exact:
            found.update(exact)
    if auto is not None:
        find, rules = auto
        for atom, _, _ in find(s, True):  # overlapping: every atom present
            found.update(rules[atom])
    return tuple(found) if found else _NONE
