"""Rule YAML: hostile files (alias bombs, deep nesting) are refused with a line, good rules beside them load;
the one-pass libyaml builder gives exactly what PyYAML's safe loader gives."""

import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.sigma import load_rules
from detectors.sigma.yamlsafe import MAX_DEPTH, RuleYAMLError, load_documents

from .test_sigma_loader import GOOD

SHARED = Path(__file__).resolve().parents[2].parent / "shared"

# "billion laughs": nine levels of nine aliases, 605 bytes, 9**9 nodes once expanded
ALIAS_BOMB = (
    'title: laughs\nlogsource: {product: linux}\ndetection:\n  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(f"  {chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))
    + "  condition: i\n"
)


def _good(n: int) -> str:
    return GOOD.replace("01\n", f"{n:02d}\n").replace("title: Good", f"title: Good {n}")


def test_alias_bomb_beside_good_rules_is_refused_fast(tmp_path):
    (tmp_path / "a_good.yml").write_text(_good(1))
    (tmp_path / "bomb.yml").write_text(ALIAS_BOMB)
    (tmp_path / "z_good.yml").write_text(_good(2))
    start = time.process_time()
    res = load_rules([tmp_path])
    assert time.process_time() - start < 5  # was 60 s and 1.6 GB; now refused after a few hundred events
    assert sorted(r.meta.title for r in res.rules) == ["Good 1", "Good 2"]
    [err] = res.errors
    assert Path(err.path).name == "bomb.yml" and "expands to more than" in err.message and err.line >= 4


@pytest.mark.parametrize(
    "text",
    [
        "title: deep\ndetection: " + "[" * 5000 + "]" * 5000 + "\n",  # flow nesting
        "title: deep\ndetection:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(300)) + " " * 301 + "x\n",
        "title: deep\ndetection: " + "{a: " * 200 + "1" + "}" * 200 + "\n",
        "title: deep\ndetection: " + "- " * 500 + "x\n",
    ],
    ids=["flow-seq", "block-map", "flow-map", "block-seq"],
)
def test_deep_nesting_beside_good_rules_is_refused(tmp_path, text):
    (tmp_path / "a_good.yml").write_text(_good(1))
    (tmp_path / "deep.yml").write_text(text)
    (tmp_path / "z_good.yml").write_text(_good(2))
    res = load_rules([tmp_path])
    assert sorted(r.meta.title for r in res.rules) == ["Good 1", "Good 2"]
    [err] = res.errors
    assert Path(err.path).name == "deep.yml"
    assert "nested deeper" in err.message or "invalid YAML" in err.message


def test_nesting_within_bound_loads_and_alias_reuse_is_allowed():
    text = "a: " + "[" * (MAX_DEPTH - 1) + "1" + "]" * (MAX_DEPTH - 1) + "\n"
    assert load_documents(text)[0][0]["a"] is not None
    docs, lines = load_documents("x: &v [a, b]\ny: *v\n---\n\n\nz: 1\n")
    assert docs == [{"x": ["a", "b"], "y": ["a", "b"]}, {"z": 1}] and lines == [1, 6]
    with pytest.raises(RuleYAMLError):
        load_documents("x: *nope\n")


def test_line_numbers_of_documents_and_nested_problems(tmp_path):
    bad = GOOD.replace("contains", "containz").replace("01\n", "09\n")
    (tmp_path / "two.yml").write_text(_good(1) + "---\n" + bad)
    res = load_rules([tmp_path])
    assert [r.meta.line for r in res.rules] == [1]
    [err] = res.errors
    assert err.line == 9 + 5  # the second document starts at line 10; the selection is its 5th line


def test_dates_stay_strings(tmp_path):
    (tmp_path / "d.yml").write_text(_good(1) + "date: 2023-01-01\nmodified: 2024/02/03\n")
    [rule] = load_rules([tmp_path]).rules
    assert rule.meta.title == "Good 1"
    docs, _ = load_documents("date: 2023-01-01\nt: 2001-12-14 21:59:43.10 -5\n")
    assert docs == [{"date": "2023-01-01", "t": "2001-12-14 21:59:43.10 -5"}]


class _Expected(yaml.CSafeLoader):  # PyYAML's own C loader and safe constructor: the reference
    pass


def _timestamp_as_text(loader: _Expected, node: yaml.Node) -> str:
    return loader.construct_yaml_str(node)


_Expected.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)

_scalars = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.sampled_from(["0x1f", "0o17", "1_000", ".inf", "-.Inf", "~", "Null", "yes", "On", "2023-01-01", "1:20", "<<"]),
)
_trees = st.recursive(
    _scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(_scalars, kids, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_trees, st.booleans())
def test_one_pass_builder_equals_pyyaml(tree, flow):
    text = yaml.safe_dump(tree, default_flow_style=flow, allow_unicode=True)
    for raw in (text, text.replace("'", "")):  # unquoted too: plain scalars resolve to int/bool/null...
        try:
            expected = list(yaml.load_all(raw, Loader=_Expected))
        except yaml.YAMLError:
            with pytest.raises(RuleYAMLError):
                load_documents(raw)
            continue
        got, _ = load_documents(raw)
        assert repr(got) == repr(expected)


@pytest.mark.skipif(not (SHARED / "sigma").is_dir(), reason="../shared/sigma not present")
def test_one_pass_builder_equals_pyyaml_on_every_sigmahq_file():
    files = sorted((SHARED / "sigma").rglob("*.yml"))
    for f in files:
        text = f.read_text(encoding="utf-8")
        assert repr(load_documents(text)[0]) == repr(list(yaml.load_all(text, Loader=_Expected))), f


@pytest.mark.parametrize(
    "text",
    [
        "",
        "~",
        "null",
        "NULL",
        "yes",
        "No",
        "on",
        "OFF",
        "y",
        "n",
        "Yes!",
        "true ",
        "tRue",
        "1",
        "-0",
        "+12",
        "0x1f",
        "0o7",
        "0b101",
        "017",
        "1_000",
        "1:20",
        "190:20:30",
        "-1.5e3",
        "1.",
        ".5",
        ".inf",
        "-.Inf",
        ".NaN",
        ".nan",
        "<<",
        "=",
        "2023-01-01",
        "2023-1-1 10:00:00Z",
        "2023/01/01",
        "1.0.0",
        "False",
        "off!",
        "title",
        "falsepositives",
        "-",
        "- x",
        "0",
        "é",
        "~x",
    ],
)
def test_plain_scalars_get_the_tag_pyyaml_resolves(text):
    from detectors.sigma.yamlsafe import _plain_tag

    assert _plain_tag(text) == yaml.resolver.Resolver().resolve(yaml.ScalarNode, text, (True, False))
