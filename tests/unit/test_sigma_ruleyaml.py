"""The direct rule-YAML reader (detectors.sigma.ruleyaml) gives exactly what PyYAML gives - the same
objects, types included, the same document lines - or declines, and yamlsafe reads the text as before
(errors and hostile inputs included)."""

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.sigma import ruleyaml, ruleyaml_scalars, yamlsafe
from detectors.sigma.ruledocs import MAX_NODES, RuleYAMLError
from detectors.sigma.ruledocs import load_documents as cached_documents

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
SHARED_RULE_DIRS = (
    "rules",
    "rules-emerging-threats",
    "rules-threat-hunting",
    "rules-windows",
    "deprecated",
    "unsupported",
)


class _Expected(yaml.CSafeLoader):  # PyYAML's own C loader and safe constructor: the reference
    pass


def _timestamp_as_text(loader: _Expected, node: yaml.Node) -> str:
    return loader.construct_yaml_str(node)


_Expected.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)  # as yamlsafe keeps them


def _pyyaml(text: str) -> list:
    return list(yaml.load_all(text, Loader=_Expected))


def _same_as_pyyaml(text: str) -> bool:
    """Whether ruleyaml read `text` (False: declined), asserting that what it read is PyYAML's."""
    got = ruleyaml.parse(text)
    if got is None:
        return False
    docs, lines, finite = got
    assert repr(docs) == repr(_pyyaml(text))  # repr tells 1 from True, '1', 1.0; keys and order too
    assert (docs, lines, finite) == yamlsafe.load_documents_typed(text)
    return True


def _files(folders: list[Path], suffixes: tuple[str, ...] = (".yml", ".yaml")) -> list[Path]:
    return sorted(f for d in folders if d.is_dir() for f in d.rglob("*") if f.suffix in suffixes)


def test_every_province_rule_mapping_and_config_file_is_read_as_pyyaml_reads_it():
    files = _files([REPO / "rules", REPO / "detectors" / "mappings", REPO / "config"])
    assert len(files) > 500
    documents = 0
    declined = []
    for f in files:
        text = f.read_text(encoding="utf-8")
        if _same_as_pyyaml(text):
            documents += len(_pyyaml(text))
        else:
            declined.append(f)
    # the start-up set is read directly (the fast path is really taken); a file declined is still read
    # right (by yamlsafe), only slower, so a rule author's unusual construct does not fail this test
    assert len(declined) <= len(files) // 50, declined
    assert documents >= len(files)


@pytest.mark.skipif(not (SHARED / "sigma").is_dir(), reason="../shared/sigma not present")
def test_every_shared_sigma_rule_file_is_read_as_pyyaml_reads_it():
    files = _files([SHARED / "sigma" / d for d in SHARED_RULE_DIRS])
    assert len(files) > 2500
    declined = [f for f in files if not _same_as_pyyaml(f.read_text(encoding="utf-8"))]
    # one SigmaHQ file holds a tab (yamlsafe reads it); everything else is read directly
    assert len(declined) <= len(files) // 200, declined


ACCEPTED = [
    "",
    "# only a comment\n",
    "---\n",
    "---\n---\n",
    "a: 1\n---\n",
    "--- # c\na: 1\n",
    "a: 1",  # no line break at the end
    "a: b\n\n\n",
    "a:\n  - x\n  -\n  - ''\n",
    "a:\n- x\n- y\nb: 2\n",  # a sequence at its key's column
    "- a: 1\n  b: [x, 'y', \"z\"]\n- - n\n  - m\n- c\n",
    "k: 'yes'\nl: yes\nm: \"no\"\nn: no\no: on\np: OFF\nq: y\nr: True\ns: tRue\n",
    "a: 0x1F\nb: 1_000\nc: 12:30\nd: .inf\ne: -.Inf\nf: .NaN\ng: ~\nh: null\ni: 017\nj: 0b101\nk: 1.5e+3\n",
    "a: 2023-01-01\nb: 2023/01/01\nc: 2001-12-14 21:59:43.10 -5\nd: 1.0.0\ne: 8BB00EE\nf: -0\ng: +12\n",
    "a: '-'\nb: '--'\nc: -x\nd: \"-\"\ne: ?x\nf: :x\n",
    "a: 'it''s'\nb: \"tab\\there \\\"q\\\" \\\\ \\x41 \\u00e9 \\U0001F600 \\/ \\N\\_\\L\\P\\0\"\nc: ''\n",
    "url: https://example.org/a#frag\nq: 'a # not a comment'\nr: \"b # neither\"\ns: c # a comment\n",
    "t: trailing   \nu: 'quoted'   \nv: x  # c  \n",
    "lit: |\n  line 1\n    more\n\n  last\nnext: 1\n",
    "k: |-\n  a\n\n\nn: |+\n  b\n\n\nf: >\n  one\n  two\n\n  three\n    deep\n  four\ng: >-\n  x\n  y\n",
    "k: |\n  a\n  \n     \n  b\n",
    "- |\n  in a sequence\n- >+\n  kept\n\n",
    "desc: one\n  two\n  three\nnext: 1\n",
    "condition:\n    selection and\n    (a or b)\nlevel: high\n",
    "a: &x 'v'\nb: *x\nc: &l\n  - 1\n  - 2\nd: *l\ne: &m\n  k: v\nf: [*x, *l]\n",
    'when: {event.dataset: &d [a, b], k: "v"}\nalso: {event.dataset: *d}\nempty: {}\nnone: []\n',
    "w: [a, b,\n  c, 'd',\n  \"e\"]\n",
    "'quoted key': 1\n\"dq\": 2\n1: int key\ntrue: bool key\n~: null key\nkey with spaces: x\n",
    "a: b:c\nd: 'e: f'\n",
    "a: {k: v, k2:\n  v2}\n",
    "k: é ünïcödé\n",
    "-   x\n-    y: 1\n     z: 2\n",
    "  a: 1\n  b: 2\n",  # an indented root
    "a:\n\n  # comment\n  b: 1\n",
]


@pytest.mark.parametrize("text", ACCEPTED)
def test_edge_texts_are_read_as_pyyaml_reads_them(text):
    assert _same_as_pyyaml(text), "declined"


DECLINED = [
    "\ufeffa: 1\n",  # BOM
    "a: 1\r\nb: 2\r\n",  # CRLF
    "a:\tb\n",  # tab
    "a: \x07\n",  # a control character
    "%YAML 1.1\n---\na: 1\n",
    "a: 1\n...\n",
    "a: !!str 1\n",
    "? complex\n: key\n",
    "<<: {a: 1}\n",
    "a: |2\n   indented\n",
    "a: 'multi\n  line'\n",
    "a: b: c\n",
    "a: *undefined\n",
    "a:\n  b: 1\n c: 2\n",
    "just a scalar\n",
    "g: h:\n  i\n",
    "a: [x, # comment\n  y]\n",
    "a: 1\nb\n",
    "- a\nb: 1\n",
    "a: b\n  c: d\n",
]


@pytest.mark.parametrize("text", DECLINED)
def test_texts_outside_the_subset_are_declined_and_read_by_yamlsafe(text):
    assert ruleyaml.parse(text) is None
    try:
        expected = _pyyaml(text)
    except yaml.YAMLError:
        with pytest.raises(RuleYAMLError):
            cached_documents(text)
        return
    try:
        docs, _ = cached_documents(text)
    except RuleYAMLError:  # yamlsafe's bounds (an undefined alias ...)
        return
    assert repr(docs) == repr(expected)


def _nested(depth: int) -> str:
    return "".join("  " * level + f"k{level}:\n" for level in range(depth)) + "  " * depth + "v\n"


def test_hostile_texts_are_declined_and_refused_as_before():
    deep = _nested(100)
    assert ruleyaml.parse(deep) is None
    with pytest.raises(RuleYAMLError, match="nested deeper"):
        cached_documents(deep)
    # a block alias bomb: each level a sequence of nine aliases of the level below
    bomb = "a: &a\n" + "".join(f"  - {i}\n" for i in range(9))
    for level in range(1, 9):
        bomb += f"{chr(97 + level)}: &{chr(97 + level)}\n" + f"  - *{chr(96 + level)}\n" * 9
    assert ruleyaml.parse(bomb) is None
    with pytest.raises(RuleYAMLError, match="expands to more than"):
        cached_documents(bomb)
    flow_bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
    )
    assert ruleyaml.parse(flow_bomb) is None
    with pytest.raises(RuleYAMLError, match="expands to more than"):
        cached_documents(flow_bomb)
    flow_deep = "a: " + "[" * 5000 + "]" * 5000 + "\n"
    assert ruleyaml.parse(flow_deep) is None
    with pytest.raises(RuleYAMLError):
        cached_documents(flow_deep)
    huge = "".join(f"k{i}: v\n" for i in range(MAX_NODES // 2 + 1))
    assert ruleyaml.parse(huge) is None
    with pytest.raises(RuleYAMLError, match="expands to more than"):
        cached_documents(huge)
    with pytest.raises(RuleYAMLError, match="undefined alias") as undefined:
        cached_documents("a: 1\nb: *nowhere\n")
    assert undefined.value.line == 2
    within = _nested(ruleyaml.FAST_MAX_DEPTH - 2)
    assert _same_as_pyyaml(within)


_FRAGMENTS = st.sampled_from(
    [
        "a", "b c", "'q'", "'it''s'", '"d\\tq"', '"bad\\q"', "yes", "No", "~", "12:30", "0x1F", "1_0", "-1", ".5",
        "-", "- ", "-x", "?", "? x", ":", ": ", ":x", "#", " #c", "#c", "&a ", "&a", "*a", "[a, b]", "[a,",
        "{k: v}", "{}", "[]", "|", "|-", ">+", "|2", "!t ", "%", "@", "`", "<<", "=", "---", "...", "é", "  ",
        "a: b", "k:", "k: v", "'k': v", "x # y", "http://h/p#f", "\"a: b\"",
    ]
)  # fmt: skip
_LINES = st.lists(
    st.tuples(st.integers(0, 6), st.lists(_FRAGMENTS, min_size=0, max_size=4)).map(
        lambda t: " " * t[0] + "".join(t[1])
    ),
    max_size=10,
)


@settings(max_examples=1500, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(_LINES, st.booleans())
def test_fuzzed_texts_are_read_as_pyyaml_reads_them_or_declined(lines, final_break):
    text = "\n".join(lines) + ("\n" if final_break else "")
    try:
        expected = _pyyaml(text)
    except yaml.YAMLError:
        assert ruleyaml.parse(text) is None  # not YAML: never accepted
        return
    except (RecursionError, ValueError, TypeError):  # PyYAML's constructor failing: not our subset either
        assert ruleyaml.parse(text) is None
        return
    got = ruleyaml.parse(text)
    if got is not None:
        assert repr(got[0]) == repr(expected)
        assert got == yamlsafe.load_documents_typed(text)


PLAIN = [
    "", "~", "null", "NULL", "Null", "yes", "No", "on", "OFF", "y", "n", "Yes!", "tRue", "1", "-0", "+12", "0x1f",
    "0x1F", "0o7", "0b101", "017", "08", "1_000", "1:20", "190:20:30", "-1.5e3", "1.5e+3", "1e5", "1.", ".5", ".inf",
    "-.Inf", ".NaN", "2023-01-01", "2023-1-1 10:00:00Z", "2023/01/01", "1.0.0", "10.0.0.1", "8BB00EE", "False",
    "off!", "title", "-", "0", "~x", "<x", "=x", "4688", "-4688", "+.inf", "0.", "-.5", "1__2", "_1", "1-2",
]  # fmt: skip


@pytest.mark.parametrize("text", PLAIN)
def test_plain_scalars_are_typed_as_pyyaml_types_them(text):
    assert repr(ruleyaml_scalars.resolve(text)) == repr(yamlsafe.resolve_plain(text))


@settings(max_examples=2000, deadline=None, derandomize=True)
@given(st.text(alphabet="0123456789+-._:xXbBeEoaAfFiInNtT yYZ/", max_size=10))
def test_number_like_plain_scalars_are_typed_as_pyyaml_types_them(text):
    text = text.strip(" ")
    try:
        expected = yamlsafe.resolve_plain(text)
    except ValueError:  # "<<", "=", and what PyYAML's constructor fails on ('0b_'): left to yamlsafe
        with pytest.raises(ruleyaml_scalars.Decline):
            ruleyaml_scalars.resolve(text)
        return
    assert repr(ruleyaml_scalars.resolve(text)) == repr(expected)


def test_merge_and_value_plain_scalars_are_left_to_yamlsafe():
    for text in ("<<", "="):
        with pytest.raises(ruleyaml_scalars.Decline):
            ruleyaml_scalars.resolve(text)


def test_the_first_characters_are_those_pyyaml_resolves_by():
    resolvers = yaml.resolver.Resolver.yaml_implicit_resolvers
    # '!', '&' and '*' alone are PyYAML's `yaml` tag; no plain scalar this reader accepts starts with them
    assert ruleyaml_scalars.FIRST_CHARS == frozenset(k for k in resolvers if k) - set("!&*")
    assert not set("!&*") & set(ruleyaml_scalars.PLAIN_AVOID) ^ set("!&*")
    assert not resolvers.get(None) and not yaml.resolver.Resolver.yaml_path_resolvers


def test_a_number_pyyaml_cannot_read_is_an_error_with_its_line_and_the_other_rules_load(tmp_path):
    """`0b_` and `0x_` match PyYAML's int pattern but its constructor fails on them (int('', 2)): a
    rule holding one is reported with its line, not a traceback, and the rules beside it load."""
    from detectors.sigma import load_rules

    for text, line in (("a: 1\nb: 0b_\n", 2), ("- 0x_\n", 1), ("a: !!str x\nb: [0x_]\n", 0)):
        with pytest.raises(RuleYAMLError) as err:
            cached_documents(text)
        assert err.value.line == line and "invalid" in str(err.value)
    good = "title: Good\nid: 5c1a7e9e-0000-4000-8000-000000000001\nlogsource: {product: linux}\n"
    good += "detection:\n  s: {a: x}\n  condition: s\n"
    (tmp_path / "a_good.yml").write_text(good)
    (tmp_path / "bad.yml").write_text(good.replace("{a: x}", "{a: 0b_}").replace("Good", "Bad"))
    res = load_rules([tmp_path])
    assert [r.meta.title for r in res.rules] == ["Good"]
    [error] = res.errors
    assert Path(error.path).name == "bad.yml" and error.line == 5 and "0b_" in error.message


_ONE_CHAR_SINGLE = re.compile(r"'((?:[^']|'')*)'")  # what ruleyaml_scalars.SINGLE/DOUBLE were first written as
_ONE_CHAR_DOUBLE = re.compile(r'"((?:[^"\\]|\\.)*)"')


@settings(max_examples=600, deadline=None, derandomize=True)
@given(st.text(alphabet="'\"\\ ax#:\n", max_size=14), st.integers(min_value=0, max_value=3))
def test_quoted_scalar_patterns_match_as_the_one_character_forms(text, pos):
    """The unrolled SINGLE and DOUBLE match the same span with the same body as the one-character-at-a-
    time forms, from any position (scalar() matches from inside a flow collection)."""
    for fast, slow in ((ruleyaml_scalars.SINGLE, _ONE_CHAR_SINGLE), (ruleyaml_scalars.DOUBLE, _ONE_CHAR_DOUBLE)):
        for source in (text, fast.pattern[0] + text):
            got, want = fast.match(source, pos), slow.match(source, pos)
            assert (got and (got.span(), got.group(1))) == (want and (want.span(), want.group(1)))
