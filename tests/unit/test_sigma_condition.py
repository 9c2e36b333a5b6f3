"""Condition grammar: precedence, x-of forms, errors."""

import pytest

from detectors.sigma.compile import CompileError, compile_detection
from detectors.sigma.condition import ConditionError, parse_condition

IDENT = lambda name: (name,)  # noqa: E731


def det(condition, **sels):
    sels = sels or {"a": {"fa": "1"}, "b": {"fb": "1"}, "c": {"fc": "1"}}
    return compile_detection({**sels, "condition": condition}, IDENT, {}).match


def test_precedence_or_and_not():
    assert parse_condition("a or b and not c") == ("or", [("id", "a"), ("and", [("id", "b"), ("not", ("id", "c"))])])
    f = det("a or b and not c")
    assert f({"fa": "1", "fc": "1"})
    assert not f({"fb": "1", "fc": "1"})
    assert f({"fb": "1"})


def test_parentheses():
    f = det("(a or b) and not c")
    assert f({"fb": "1"}) and not f({"fb": "1", "fc": "1"}) and not f({})


def test_of_forms():
    sels = {"sel_1": {"x": "1"}, "sel_2": {"y": "1"}, "_hidden": {"z": "1"}, "filter": {"w": "1"}}
    assert det("1 of sel_*", **sels)({"y": "1"})
    assert not det("all of sel_*", **sels)({"y": "1"})
    assert det("all of sel_*", **sels)({"x": "1", "y": "1"})
    assert det("1 of them", **sels)({"w": "1"})
    assert not det("1 of them", **sels)({"z": "1"})  # underscore names excluded
    assert det("all of sel_* and not 1 of filter*", **sels)({"x": "1", "y": "1"})
    assert not det("all of sel_* and not 1 of filter*", **sels)({"x": "1", "y": "1", "w": "1"})


def test_not_binds_tighter_than_and_but_looser_than_of():
    assert parse_condition("not 1 of f* and a") == ("and", [("not", ("of", 1, "f*")), ("id", "a")])


def test_condition_list_is_or():
    f = compile_detection({"a": {"fa": "1"}, "b": {"fb": "1"}, "condition": ["a", "b"]}, IDENT, {}).match
    assert f({"fb": "1"})


@pytest.mark.parametrize("cond", ["a and", "(a or b", "a b", "selection | count() > 5", "", "of a"])
def test_bad_conditions(cond):
    with pytest.raises((ConditionError, CompileError)):
        det(cond)


def test_unknown_identifier():
    with pytest.raises(CompileError, match="unknown identifier"):
        det("a and zz")


def _resolve_of_reference(pattern: str, names: list[str]) -> list[str]:
    """resolve_of as it was: the pattern as a regex, `*` as `.*`, matched whole."""
    import re

    if pattern == "them":
        return [n for n in names if not n.startswith("_")]
    rx = re.compile(".*".join(re.escape(p) for p in pattern.split("*")))
    return [n for n in names if rx.fullmatch(n)]


def test_of_patterns_choose_what_the_regex_chose():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from detectors.sigma.condition import resolve_of, tokenize

    @settings(max_examples=1500, deadline=None)
    @given(st.text(alphabet="ab_*.1", min_size=1, max_size=7), st.lists(st.text(alphabet="ab_.1\n*", max_size=7)))
    def check(pattern, names):
        names = names + [pattern.replace("*", ""), pattern.replace("*", "ab"), pattern.replace("*", "\n")]
        assert resolve_of(pattern, names) == _resolve_of_reference(pattern, names)

    check()
    for cond in ("1 of sel*", "all of filter_main_*", "1 of *_a*b*", "1 of them"):
        pattern = tokenize(cond)[-1]
        names = ["sel", "selection", "filter_main_x", "x_a1b2", "_a_b", "_private", "sel\n1", "a*b"]
        assert resolve_of(pattern, names) == _resolve_of_reference(pattern, names)


def _tokenize_reference(text: str) -> list[str]:
    """tokenize as it was: a regex match per token from the stripped text."""
    import re

    token = re.compile(r"\s*(\(|\)|[^\s()]+)")
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        m = token.match(text, pos)
        assert m
        out.append(m.group(1))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def test_conditions_split_into_the_tokens_they_did():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from detectors.sigma.condition import tokenize

    @settings(max_examples=1500, deadline=None)
    @given(st.text(alphabet=st.sampled_from(list("ab_*1()| \t\n\r\x0b\x0c\x1c\x85\xa0\u2003\u3000é")), max_size=24))
    def check(text):
        assert tokenize(text) == _tokenize_reference(text)

    check()
    assert tokenize(" 1 of sel* and not (filter_a or\tfilter_b) ") == _tokenize_reference(
        " 1 of sel* and not (filter_a or\tfilter_b) "
    )
