"""The candidate index agrees with RE2's case-insensitive matching on every character it folds.

RE2's `(?i)` treats 'ſ' as 's', 'ς' as 'σ', 'µ' as 'μ' ...; the index lower-cases with str.lower(), which
keeps them apart, so before `fold` a `re|i` rule whose prefilter literal held an 's' was never offered
for text spelled with 'ſ' that its regex matches: the rule silently never fired on it."""

from __future__ import annotations

import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.sigma.casefold import FOLD_CLASSES, fold
from detectors.sigma.index import CandidateIndex
from detectors.sigma.values import re2_options


def _cased_characters() -> list[str]:
    """Every character whose case mappings differ from itself (the ones case folding can touch)."""
    out = []
    for i in range(0x20, 0x110000):
        if 0xD800 <= i < 0xE000:
            continue
        c = chr(i)
        if c.lower() != c or c.upper() != c or c.casefold() != c:
            out.append(c)
    return out


def test_every_pair_re2_folds_is_one_spelling_in_the_index() -> None:
    cased = _cased_characters()
    text = "".join(cased)
    opts = re2_options()
    disagreements = []
    for lowered in sorted({c.lower() for c in cased if len(c.lower()) == 1}):
        rx = re2.compile("(?i)" + re2.escape(lowered), opts)
        for other in rx.findall(text):
            low = other.lower()
            if len(low) == 1 and fold(low) != fold(lowered):
                disagreements.append((lowered, other))
    assert not disagreements, [f"U+{ord(a):04X} ~ U+{ord(b):04X}" for a, b in disagreements]


def test_the_table_folds_only_what_re2_folds() -> None:
    opts = re2_options()
    for src, dst in FOLD_CLASSES.items():
        assert re2.compile("(?i)" + re2.escape(dst), opts).fullmatch(src), f"U+{ord(src):04X}"
    assert fold("/bin/bash") == "/bin/bash" and fold("/bin/baſh") == "/bin/bash"


def test_index_offers_the_rule_for_text_its_regex_matches() -> None:
    literal = "/bin/bash"  # the prefilter atom of a `re|i` rule, lower-cased
    index = CandidateIndex.build([[("process.executable", "sub", literal)]])
    spelled = "/BIN/BAſH"
    assert re2.compile("(?i)/bin/bash", re2_options()).search(spelled)
    assert index.candidates({"process.executable": spelled}) == [0]
    assert index.candidates({"process.executable": "/bin/dash"}) == []


def test_a_case_insensitive_regex_rule_fires_on_a_long_s(tmp_path) -> None:
    """End to end: load a rule, normalise a line, match through the engine (its candidate index)."""
    from detectors.normalise.core import parse_line
    from detectors.sigma import Engine, load_rules

    (tmp_path / "fold.yml").write_text(
        "title: Invalid user probing for a service account\n"
        "id: 0d3c5a7e-8f41-4b6a-9c2d-1e5f7a9b3c4d\n"
        "logsource:\n    product: linux\n    service: auth\n"
        "detection:\n    selection:\n        message|re|i: 'invalid user service[0-9]+'\n    condition: selection\n"
        "level: low\n"
    )
    loaded = load_rules([str(tmp_path)])
    assert not loaded.errors and len(loaded.rules) == 1
    engine = Engine(loaded.rules, allowed_lateness=5)
    for user in ("service01", "ſervice01", "SERVICE01"):
        line = f"2026-12-06T06:00:00+00:00 web01 sshd[1]: Invalid user {user} from 203.0.113.9 port 5000"
        event = parse_line(line, "system.auth", "UTC")
        assert len(engine.match(event).detections) == 1, user
    line = "2026-12-06T06:00:00+00:00 web01 sshd[1]: Invalid user admin01 from 203.0.113.9 port 5000"
    assert not engine.match(parse_line(line, "system.auth", "UTC")).detections


def test_fold_is_one_character_per_character_and_joins_only_what_re2_folds() -> None:
    """The converse of the first test, on every character case mapping touches: `fold` never changes
    a text's length (str.lower() made 'İ' two characters) and two characters fold to one spelling only
    when RE2's `(?i)` matches one with the other."""
    cased = _cased_characters()
    assert [c for c in cased if len(fold(c)) != 1] == []
    groups: dict[str, list[str]] = {}
    for c in cased:
        groups.setdefault(fold(c), []).append(c)
    opts = re2_options()
    apart: list[tuple[str, str]] = []
    for members in groups.values():
        rx = re2.compile("(?i)" + re2.escape(members[0]), opts)
        apart.extend((members[0], m) for m in members[1:] if not rx.fullmatch(m))
    assert not apart, [f"U+{ord(a):04X} !~ U+{ord(b):04X}" for a, b in apart]
    assert fold("ΟΔΟΣ") == fold("οδοσ") == fold("οδος") == "οδοσ"
    assert fold("İSTANBUL") == "İstanbul" and fold("ıI") == "ıi"


def test_folding_folded_text_changes_nothing() -> None:
    # compile_alternatives takes an uncased value's folded texts as its index atoms without folding again
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    for start in range(0, len(chars), 512):
        text = "".join(chars[start : start + 512])
        assert fold(fold(text)) == fold(text)
    for text in ("ΟΔΟΣ", "Σ", "aΣ b", "İΣ", "ſµς", "ﬅ"):
        assert fold(fold(text)) == fold(text)


def test_only_long_s_and_kelvin_sign_fold_to_ascii() -> None:
    """The index reads non-ASCII text for its all-ASCII atoms as its ASCII characters in place
    (index._ascii_fold): sound only while these two are the only characters fold turns into ASCII."""
    from detectors.sigma.index import _FOLDS_TO_ASCII

    into_ascii = [
        chr(i) for i in range(0x80, 0x110000) if not 0xD800 <= i < 0xE000 and any(ord(c) < 0x80 for c in fold(chr(i)))
    ]
    assert sorted(into_ascii) == sorted(_FOLDS_TO_ASCII)


_odd = st.text(alphabet="abAB/-?\u017f\u212a\u0130\u00e9\u00ae\u03a3", max_size=8)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["eq", "sub"]), _odd), min_size=1, max_size=4), st.lists(_odd, max_size=4))
def test_non_ascii_text_offers_every_rule_fold_would(atoms: list[tuple[str, str]], values: list[str]) -> None:
    """Whatever the atoms (ASCII only, or not) and the text (long s, Kelvin sign, dotted I, (R)...):
    the index offers at least the rules whose atom holds on fold(text), exactly as a fold would."""
    needs = [frozenset({("f", kind, fold(text))}) for kind, text in atoms if kind == "eq" or text]
    index = CandidateIndex.build(needs)
    for value in values + values:  # and again from the memo
        want = {
            i
            for i, need in enumerate(needs)
            for _, kind, t in need
            if (fold(value) == t if kind == "eq" else t in fold(value))
        }
        assert want <= set(index.candidates({"f": value}))
