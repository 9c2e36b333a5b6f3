"""An item's string tests built at once (detectors.sigma.itemvalues) are exactly what the value-by-value
build gave: one StringTest per value from the reference compile_alternatives below (the code before
start-up work on issue 15.2), merged. Checked on every item of every shared SigmaHQ and province rule,
and on generated values and modifiers; a bad value raises the same error either way."""

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.sigma.casefold import fold
from detectors.sigma.itemvalues import _expand, _merge, string_tests
from detectors.sigma.ruledocs import RuleYAMLError
from detectors.sigma.typed import CompileError
from detectors.sigma.values import (
    ANY,
    MAX_PATTERN_LENGTH,
    ONE,
    TRANSFORMS,
    StringTest,
    ValueError_,
    _as_tokens,
    _compile_glob,
    apply_transform,
    longest_literal,
)
from detectors.sigma.yamlsafe import load_documents

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"


def _reference_alternatives(alts: list[Any], cased: bool) -> StringTest:
    """compile_alternatives as it was (one call per value), case-folding as it does now (casefold.fold)."""
    test = StringTest(cased=cased)
    prefixes, suffixes, substrings = [], [], []
    for alt in alts:
        toks = _as_tokens(alt)
        if not cased:
            toks = tuple([fold(t) if type(t) is str else t for t in toks])
        lits = [t for t in toks if type(t) is str]
        if sum(map(len, lits)) > MAX_PATTERN_LENGTH:
            raise ValueError_(f"value longer than {MAX_PATTERN_LENGTH} characters")
        if len(lits) == len(toks):
            text = "".join(toks)
            test.exact.add(text)
            if test.atoms is not None:
                test.atoms.append(("eq", fold(text)))
            continue
        if len(toks) == 1 and toks[0] is ANY:
            substrings.append("")
            test.atoms = None
            continue
        if len(lits) == 1 and toks[0] is not ONE and toks[-1] is not ONE and ONE not in toks:
            lit = lits[0]
            if toks[0] is ANY and toks[-1] is ANY and len(toks) == 3:
                substrings.append(lit)
            elif toks[-1] is ANY and len(toks) == 2:
                prefixes.append(lit)
            elif toks[0] is ANY and len(toks) == 2:
                suffixes.append(lit)
            else:
                test.globs.append(_compile_glob(toks))
        else:
            test.globs.append(_compile_glob(toks))
        lit = longest_literal(toks)
        if test.atoms is not None:
            if lit:
                test.atoms.append(("sub", fold(lit)))
            else:
                test.atoms = None
    test.prefixes = tuple(prefixes)
    test.suffixes = tuple(suffixes)
    test.substrings = tuple(substrings)
    return test


def _reference(values: list[Any], mods: list[str], placeholders: dict, path: tuple, cased: bool, each: bool) -> list:
    tests = []
    for i, v in enumerate(values):
        if isinstance(v, (dict, list)):
            raise CompileError("a value must be a string, number or boolean", path + (i,))
        alts: list[Any] = []
        for alts_one in _expand(v, mods, placeholders, path):
            try:
                for m in mods:
                    if m in TRANSFORMS:
                        alts_one = apply_transform(m, alts_one)
            except ValueError_ as exc:
                raise CompileError(str(exc), path) from None
            alts.extend(alts_one)
        try:
            tests.append(_reference_alternatives(alts, cased))
        except ValueError_ as exc:
            raise CompileError(str(exc), path) from None
    if each:
        return tests
    merged = tests[0]
    for t in tests[1:]:
        merged = _merge(merged, t)
    return [merged]


def _glob(g: Any) -> Any:
    return (type(g).__name__, getattr(g, "parts", None), getattr(g, "head", None), getattr(g, "tail", None),
            getattr(g, "pattern", None))  # fmt: skip


def _shape(test: StringTest) -> tuple:
    return (test.cased, test.exact, test.prefixes, test.suffixes, test.substrings, [_glob(g) for g in test.globs],
            test.atoms)  # fmt: skip


def _outcome(build: Any, *args: Any) -> Any:
    try:
        return [_shape(t) for t in build(*args)]
    except CompileError as exc:
        return ("error", str(exc), exc.path)


def _same(values: list[Any], mods: list[str], placeholders: dict | None = None) -> None:
    cased = "cased" in mods
    args = (values, mods, placeholders or {}, ("detection", "sel"), cased, "all" in mods)
    assert _outcome(string_tests, *args) == _outcome(_reference, *args), (values, mods)


STRING_MODS = TRANSFORMS | {"cased", "all", "expand"}


def _items(detection: Any):
    for name, body in detection.items() if isinstance(detection, dict) else ():
        if name in ("condition", "timeframe"):
            continue
        maps = (
            [body]
            if isinstance(body, dict)
            else [b for b in body if isinstance(b, dict)]
            if isinstance(body, list)
            else []
        )
        for m in maps:
            yield from m.items()
        if isinstance(body, list) and body and not any(isinstance(b, dict) for b in body):
            yield "", body


@pytest.mark.skipif(not (SHARED / "sigma").is_dir(), reason="../shared/sigma not present")
def test_every_item_of_every_shared_and_province_rule_builds_what_it_did():
    files = sorted((SHARED / "sigma").rglob("*.yml")) + sorted((REPO / "rules").rglob("*.yml"))
    checked = 0
    for f in files:
        try:
            docs, _ = load_documents(f.read_text(encoding="utf-8"))
        except RuleYAMLError:
            continue
        for doc in docs:
            if not isinstance(doc, dict):
                continue
            for key, value in _items(doc.get("detection")):
                field, *mods = str(key).split("|")
                if not field and not {"re", "contains", "startswith", "endswith"} & set(mods):
                    mods = mods + ["contains"]
                values = value if isinstance(value, list) else [value]
                if not values or not set(mods) <= STRING_MODS or any(v is None for v in values):
                    continue
                if "all" in mods and len(values) < 2:
                    continue
                _same(values, mods, {"domain": ["a", "b"]})
                checked += 1
    assert checked > 8_000


_text = st.text(alphabet="aB-/*?\\%é ", max_size=10)
_values = st.lists(st.one_of(_text, st.integers(-5, 5), st.booleans(), st.floats(-2, 2)), min_size=1, max_size=4)
_mods = st.lists(st.sampled_from(sorted(STRING_MODS)), max_size=3, unique=True)


@settings(max_examples=600, deadline=None)
@given(_values, _mods)
def test_generated_values_and_modifiers_build_what_they_did(values, mods):
    if "all" in mods and len(values) < 2:
        mods = [m for m in mods if m != "all"]
    _same(values, mods, {"x": ["1", "2"]})


def test_a_bad_value_reports_the_first_problem_in_value_order():
    long = "x" * (MAX_PATTERN_LENGTH + 1)
    for values, mods in (
        ([long, "a*b"], ["base64"]),  # 1st: too long; 2nd: base64 of a wildcard
        (["a*b", long], ["base64"]),
        (["ok", {"a": 1}, long], []),
        (["%nope%", long], ["expand"]),
        ([long, "%nope%"], ["expand"]),
    ):
        _same(values, mods)
        with pytest.raises(CompileError):
            string_tests(values, mods, {}, (), False, False)


def _score_reference(need):
    from detectors.sigma.atoms import COMMON_VALUES

    shortest = min((len(a[2]) for a in need), default=0)
    texts = {a[2] for a in need}
    common = sum(50 for t in texts if t in COMMON_VALUES)
    return (len(texts) + common + (0 if shortest >= 4 else 10), -shortest)


_atom_sets = st.frozensets(
    st.tuples(
        st.sampled_from(["f", "g"]),
        st.sampled_from(["eq", "sub"]),
        st.sampled_from(["", "a", "get", "root", "abcd", "xyz12"]),
    )
)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.none(), _atom_sets), max_size=5))
def test_the_index_atoms_chosen_for_an_and_are_those_chosen_before(needs):
    from detectors.sigma.atoms import atom_score as _score
    from detectors.sigma.atoms import best_need as _best

    for n in needs:
        if n is not None:
            assert _score(n) == _score_reference(n)
    usable = [n for n in needs if n is not None and n and all(a[2] for a in n)]
    assert _best(needs) == (min(usable, key=_score_reference) if usable else None)
