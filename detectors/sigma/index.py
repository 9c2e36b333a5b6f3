"""Candidate index: which rules of one logsource bucket can possibly match an event.

Built from each rule's `need` atoms (compile.py): per field, an exact-value map and one
Aho-Corasick automaton (a DFA, ahocorasick-rs) over all substring atoms (regex literal prefilters
included), reporting every atom found, overlapping ones too. Looking an
event up costs, per indexed field it carries, one lower-casing, one dict probe and one automaton
pass, instead of evaluating every rule. Keyword atoms live under a pseudo-field read like the
keyword predicate reads (message, else event.original). Rules without a usable `need` are always
candidates. The result is a superset of the matching rules; each candidate is then evaluated by
its full predicate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ahocorasick_rs import AhoCorasick, Implementation, MatchKind

from detectors.sigma.compile import KEYWORD_INDEX_FIELD


def _lower(v: object) -> str:
    if type(v) is str:
        return v.lower()
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).lower()


@dataclass
class CandidateIndex:
    always: list[Any] = field(default_factory=list)  # rule positions evaluated on every event
    fields: list[Any] = field(default_factory=list)  # (field, exact map or None, automaton or None)
    size: int = 0

    @classmethod
    def build(cls, needs: list[Any]) -> CandidateIndex:
        """`needs[i]` is rule i's atom set or None."""
        idx = cls(size=len(needs))
        exact: dict[str, Any] = {}
        subs: dict[str, Any] = {}
        for pos, need in enumerate(needs):
            if not need or any(kind != "eq" and not text for _, kind, text in need):
                idx.always.append(pos)  # no atoms, or an empty substring (any value holds it)
                continue
            for fld, kind, text in need:
                table = exact if kind == "eq" else subs
                table.setdefault(fld, {}).setdefault(text, set()).add(pos)
        for fld in sorted(set(exact) | set(subs)):
            auto = None
            if fld in subs:
                texts = sorted(subs[fld])
                # the automaton reports atom numbers; found[n] is the rules of atom n
                found = [tuple(sorted(subs[fld][t])) for t in texts]
                dfa = AhoCorasick(texts, matchkind=MatchKind.Standard, implementation=Implementation.DFA)
                auto = (dfa.find_matches_as_indexes, found)
            exact_map = {k: tuple(sorted(v)) for k, v in exact[fld].items()} if fld in exact else None
            idx.fields.append((fld, exact_map, auto))
        return idx

    def candidates(self, event: dict[str, Any]) -> list[Any]:
        hits: set[Any] = set()
        get = event.get
        for fld, table, auto in self.fields:
            if fld == KEYWORD_INDEX_FIELD:
                v = get("message")
                if v is None:
                    v = get("event.original")
            else:
                v = get(fld)
            if v is None:
                continue
            for x in v if type(v) is list or type(v) is tuple else (v,):
                s = x.lower() if type(x) is str else _lower(x)
                if table is not None:
                    found = table.get(s)
                    if found:
                        hits.update(found)
                if auto is not None:
                    find, found = auto
                    for atom, _, _ in find(s, True):  # overlapping: every atom present
                        hits.update(found[atom])
        if self.always:
            hits.update(self.always)
        elif not hits:
            return []
        return sorted(hits)
