"""Candidate index: which rules of one logsource bucket can possibly match an event.

Built from each rule's `need` atoms (compile.py): per field, an exact-value map and one
Aho-Corasick automaton over all substring atoms. Looking an event up costs one dict probe and
one automaton pass per indexed field it carries, instead of evaluating every rule. Rules without
a usable `need` are always candidates. The result is a superset of the matching rules; each
candidate is then evaluated by its full predicate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ahocorasick


def _scalar_lower(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).lower()


@dataclass
class CandidateIndex:
    always: list = field(default_factory=list)        # rule positions evaluated on every event
    exact: dict = field(default_factory=dict)         # field -> {value: [positions]}
    automata: dict = field(default_factory=dict)      # field -> Automaton(payload: positions)
    keyword_fields: tuple = ("message", "event.original")
    size: int = 0

    @classmethod
    def build(cls, needs: list) -> "CandidateIndex":
        """`needs[i]` is rule i's atom set or None."""
        idx = cls(size=len(needs))
        subs: dict = {}
        for pos, need in enumerate(needs):
            if not need:
                idx.always.append(pos)
                continue
            for fld, kind, text in need:
                if kind == "eq":
                    idx.exact.setdefault(fld, {}).setdefault(text, []).append(pos)
                else:
                    subs.setdefault(fld, {}).setdefault(text, []).append(pos)
        for fld, table in subs.items():
            auto = ahocorasick.Automaton()
            for text, positions in table.items():
                auto.add_word(text, tuple(sorted(set(positions))))
            auto.make_automaton()
            idx.automata[fld] = auto
        return idx

    def candidates(self, event: dict) -> list:
        hits: set = set(self.always)
        for fld, table in self.exact.items():
            v = event.get(fld)
            if v is None:
                continue
            for x in (v if isinstance(v, (list, tuple)) else (v,)):
                found = table.get(_scalar_lower(x))
                if found:
                    hits.update(found)
        for fld, auto in self.automata.items():
            v = event.get(fld)
            if v is None:
                continue
            for x in (v if isinstance(v, (list, tuple)) else (v,)):
                for _, positions in auto.iter(_scalar_lower(x)):
                    hits.update(positions)
        return sorted(hits)
