"""Candidate index: which rules of one logsource bucket can possibly match an event.

Built from each rule's `need` atoms (compile.py): per field, an exact-value map and one
Aho-Corasick automaton (a DFA, ahocorasick-rs) over all substring atoms (regex literal prefilters
included), reporting every atom found, overlapping ones too. Both sides are lower-cased and put in
one spelling per RE2 case-fold class (`fold`). Looking an
event up costs, per indexed field it carries, one lower-casing, one dict probe and one automaton
pass, instead of evaluating every rule. Keyword atoms live under a pseudo-field read like the
keyword predicate reads (message, else event.original). Rules without a usable `need` are always
candidates. The result is a superset of the matching rules; each candidate is then evaluated by
its full predicate.

Log values repeat (status codes, user agents, user names, auditd's syscall fields): the rules one
str or int value of one field hits are remembered per field of an index (bounded together: values
of at most MEMO_VALUE_CHARS characters, MEMO_ENTRIES entries in all, emptied when full), so a
repeated value costs one dict probe instead of lower-casing, folding and an automaton pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ahocorasick_rs import AhoCorasick, Implementation, MatchKind

from detectors.sigma.compile import KEYWORD_INDEX_FIELD

MEMO_ENTRIES = 4096  # per index; each holds a value of at most MEMO_VALUE_CHARS and a tuple of rules
MEMO_VALUE_CHARS = 128
_NONE: tuple[int, ...] = ()

# RE2's case-insensitive matching folds a few characters that str.lower() keeps apart ('ſ' with 's',
# 'ς' with 'σ', 'µ' with 'μ', the Cyrillic and Greek letter variants): both sides of the index spell each
# such class one way, or a `re|i` rule's literal would not be found in text the regex matches and the
# rule would never be offered. Derived from RE2 itself by tests/unit/test_sigma_index_fold.py.
FOLD_CLASSES = {
    "\u017f": "s",  # long s
    "\u00b5": "\u03bc",  # micro sign: mu
    "\u0345": "\u03b9",  # ypogegrammeni: iota
    "\u1fbe": "\u03b9",  # prosgegrammeni: iota
    "\u03c2": "\u03c3",  # final sigma
    "\u03d0": "\u03b2",  # beta symbol
    "\u03d1": "\u03b8",  # theta symbol
    "\u03d5": "\u03c6",  # phi symbol
    "\u03d6": "\u03c0",  # pi symbol
    "\u03f0": "\u03ba",  # kappa symbol
    "\u03f1": "\u03c1",  # rho symbol
    "\u03f5": "\u03b5",  # lunate epsilon
    "\u1fd3": "\u0390",  # iota with dialytika and oxia
    "\u1fe3": "\u03b0",  # upsilon with dialytika and oxia
    "\u1c80": "\u0432",  # Cyrillic small letter variants: ve, de, o, es, te, te, hard sign, yat
    "\u1c81": "\u0434",
    "\u1c82": "\u043e",
    "\u1c83": "\u0441",
    "\u1c84": "\u0442",
    "\u1c85": "\u0442",
    "\u1c86": "\u044a",
    "\u1c87": "\u0463",
    "\u1c88": "\ua64b",  # unblended uk: monograph uk
    "\u1e9b": "\u1e61",  # long s with dot above
    "\ufb05": "\ufb06",  # long s t ligature: s t ligature
}
_FOLD = str.maketrans(FOLD_CLASSES)


def fold(text: str) -> str:
    """`text` (lower-cased) with each RE2 case-fold class spelled one way; ASCII text as it is."""
    return text if text.isascii() else text.translate(_FOLD)


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
    # (field, exact map or None, automaton or None, memo, keyword pseudo-field?); the memo maps a str
    # or int value of the field to the rule positions it hits (see the module doc): bool and float
    # values never enter (True == 1 == 1.0, but they lower-case differently)
    fields: list[Any] = field(default_factory=list)
    size: int = 0
    memo_entries: int = field(default=0, repr=False, compare=False)  # in all the fields' memos

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
                key = fold(text) if type(text) is str else text
                table.setdefault(fld, {}).setdefault(key, set()).add(pos)
        for fld in sorted(set(exact) | set(subs)):
            auto = None
            if fld in subs:
                texts = sorted(subs[fld])
                # the automaton reports atom numbers; found[n] is the rules of atom n
                found = [tuple(sorted(subs[fld][t])) for t in texts]
                dfa = AhoCorasick(texts, matchkind=MatchKind.Standard, implementation=Implementation.DFA)
                auto = (dfa.find_matches_as_indexes, found)
            exact_map = {k: tuple(sorted(v)) for k, v in exact[fld].items()} if fld in exact else None
            idx.fields.append((fld, exact_map, auto, {}, fld == KEYWORD_INDEX_FIELD))
        return idx

    def candidates(self, event: dict[str, Any]) -> list[Any]:
        hits: set[Any] = set()
        get = event.get
        for fld, table, auto, memo, keyword in self.fields:
            if keyword:
                v = get("message")
                if v is None:
                    v = get("event.original")
            else:
                v = get(fld)
            if v is None:
                continue
            kind = type(v)
            if kind is str or kind is int:  # the usual case: one value, most often seen before
                found = memo.get(v)
                if found is None:
                    found = self._remember(memo, v, table, auto)
                if found:
                    hits.update(found)
            elif kind is list or kind is tuple:
                for x in v:
                    kind = type(x)
                    if kind is str or kind is int:
                        found = memo.get(x)
                        if found is None:
                            found = self._remember(memo, x, table, auto)
                    else:
                        found = _hits(table, auto, _lower(x))
                    if found:
                        hits.update(found)
            else:
                found = _hits(table, auto, _lower(v))
                if found:
                    hits.update(found)
        if self.always:
            hits.update(self.always)
        elif not hits:
            return []
        return sorted(hits)

    def _remember(self, memo: dict[Any, tuple[int, ...]], x: str | int, table: Any, auto: Any) -> tuple[int, ...]:
        """`_hits` of a str or int value, kept in its field's memo when short enough."""
        found = _hits(table, auto, x.lower() if type(x) is str else str(x))
        if type(x) is int or len(x) <= MEMO_VALUE_CHARS:  # type: ignore[arg-type]
            if self.memo_entries >= MEMO_ENTRIES:
                for f in self.fields:
                    f[3].clear()
                self.memo_entries = 0
            memo[x] = found
            self.memo_entries += 1
        return found


def _hits(table: dict[str, Any] | None, auto: Any, s: str) -> tuple[int, ...]:
    """The rule positions one lower-cased value of one field hits: its exact atom, and every
    substring atom inside it (overlapping ones too), both in `fold`'s spelling."""
    if not s.isascii():
        s = s.translate(_FOLD)
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
