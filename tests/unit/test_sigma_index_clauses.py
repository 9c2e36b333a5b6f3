"""The candidate index keys a rule on several clauses (atom sets that must ALL hold, atoms.py): a rule
is offered only where each of them is found, and never left out where its detection matches."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.sigma.atoms import MAX_CLAUSES
from detectors.sigma.casefold import fold
from detectors.sigma.compile import compile_detection
from detectors.sigma.index import CandidateIndex


def _compiled(detection: dict[str, Any]) -> Any:
    return compile_detection(detection, lambda f: (f,), {})


def test_a_rule_is_offered_only_where_every_clause_is_found() -> None:
    rule = _compiled(
        {
            "sel_img": {"Image|endswith": ["\\cmd.exe", "\\powershell.exe"]},
            "sel_cli": {"CommandLine|contains": " /c copy "},
            "filter": {"User|contains": "backup"},
            "condition": "all of sel_* and not filter",
        }
    )
    assert len(rule.clauses) == 2  # the negated filter gives none
    index = CandidateIndex.build([rule.clauses])
    cmd = {"Image": "C:\\Windows\\System32\\cmd.exe", "CommandLine": "cmd /c dir"}
    assert index.candidates(cmd) == []  # cmd.exe, but not the copy: not even evaluated
    assert index.candidates({"Image": "C:\\x\\tool.exe", "CommandLine": "tool /c copy a b"}) == []
    both = {**cmd, "CommandLine": "cmd /c copy a \\\\srv\\c$"}
    assert index.candidates(both) == [0] and rule.match(both)
    assert rule.need is not None and rule.need in rule.clauses  # `need` is still one atom set


def test_an_or_of_ands_is_keyed_on_the_union_of_each_part_s_clauses() -> None:
    rule = _compiled(
        {
            "a": {"Image|endswith": "\\rundll32.exe", "CommandLine|contains": "javascript:"},
            "b": {"Image|endswith": "\\mshta.exe", "CommandLine|contains": "vbscript:"},
            "condition": "a or b",
        }
    )
    index = CandidateIndex.build([rule.clauses])
    assert index.candidates({"Image": "c:\\w\\rundll32.exe", "CommandLine": "rundll32 x.dll,Start"}) == []
    hit = {"Image": "c:\\w\\mshta.exe", "CommandLine": "mshta vbscript:Close(Execute(1))"}
    assert index.candidates(hit) == [0] and rule.match(hit)


_clause = st.frozensets(
    st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["eq", "sub"]), st.text(alphabet="xyz", max_size=2)),
    min_size=1,
    max_size=3,
)


def _found(clause: frozenset[Any], event: dict[str, Any]) -> bool:
    for fld, kind, text in clause:
        v = event.get(fld)
        if isinstance(v, str) and (v.lower() == text if kind == "eq" else text in v.lower()):
            return True
    return False


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(_clause, min_size=1, max_size=MAX_CLAUSES).map(tuple), max_size=6),
    st.dictionaries(st.sampled_from(["a", "b", "c"]), st.text(alphabet="xyzX", max_size=4), max_size=3),
)
def test_candidates_are_the_rules_whose_every_clause_is_found(rules: list[Any], event: dict[str, Any]) -> None:
    rules = [tuple(frozenset((f, k, fold(t)) for f, k, t in c) for c in r) for r in rules]
    usable = [tuple(c for c in r if all(k == "eq" or t for _, k, t in c)) for r in rules]
    want = [i for i, r in enumerate(usable) if all(_found(c, event) for c in r)]
    assert CandidateIndex.build(rules).candidates(event) == want


# random detections over a few fields, values and modifiers: whatever clauses they are keyed on, a
# detection that matches an event is among the event's candidates
_FIELDS = ["Image", "CommandLine", "User"]
_MODS = ["", "|contains", "|endswith", "|startswith", "|contains|all", "|re"]
_word = st.sampled_from(["cmd", "copy", "ab", "c$", "x", "Admin", ""])


@st.composite
def _detection(draw: Any) -> dict[str, Any]:
    names = [f"s{i}" for i in range(draw(st.integers(1, 4)))]
    det: dict[str, Any] = {}
    for n in names:
        items = {}
        for f in draw(st.lists(st.sampled_from(_FIELDS), min_size=1, max_size=2, unique=True)):
            mod = draw(st.sampled_from(_MODS))
            values = draw(st.lists(_word.filter(bool) if mod == "|re" else _word, min_size=2, max_size=3))
            items[f + mod] = values
        det[n] = items if draw(st.booleans()) else [items, {draw(st.sampled_from(_FIELDS)): draw(_word)}]

    def tree(depth: int) -> str:
        choice = draw(st.integers(0, 5 if depth < 3 else 0))
        if choice == 0:
            return draw(st.sampled_from(names))
        if choice == 1:
            return f"not {tree(depth + 1)}"
        if choice == 2:
            return draw(st.sampled_from(["1 of s*", "all of s*", "1 of them", "2 of s*"]))
        op = "and" if choice in (3, 4) else "or"
        return f"({tree(depth + 1)} {op} {tree(depth + 1)})"

    det["condition"] = tree(0)
    return det


_event = st.dictionaries(
    st.sampled_from(_FIELDS),
    st.tuples(st.lists(_word, min_size=1, max_size=3), st.sampled_from(["\\", " ", ""])).map(lambda p: p[1].join(p[0])),
    max_size=3,
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_detection(), min_size=1, max_size=4), st.lists(_event, min_size=1, max_size=4))
def test_no_matching_detection_is_left_out(detections: list[Any], events: list[Any]) -> None:
    compiled = [_compiled(d) for d in detections]
    index = CandidateIndex.build([c.clauses for c in compiled])
    for event in events + events:  # again with the memo filled
        offered = set(index.candidates(event))
        assert {i for i, c in enumerate(compiled) if c.match(event)} <= offered
