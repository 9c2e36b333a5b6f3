"""A rule field mapped to several event fields (Sysmon's Image and 4688's NewProcessName under one
rule name): its predicate tests exactly the values `field_values` gives, in its order, case-folded,
and stops at the first that passes, whether it reads them key by key or through `field_values`."""

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.sigma.casefold import fold
from detectors.sigma.compile import _string_pred
from detectors.sigma.fields import field_values, scalar_text

_scalar = st.one_of(
    st.none(), st.text(alphabet="aAİß-", max_size=3), st.integers(-2, 2), st.booleans(), st.floats(0, 2)
)
_value = st.one_of(_scalar, st.lists(_scalar, max_size=3), st.tuples(_scalar, _scalar))


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["a", "b", "c", "l"]), _value, max_size=4),
    st.sampled_from([("a", "b"), ("b", "a", "c"), ("a", "l[1]"), ("l[0]", "c")]),
    st.booleans(),
    st.text(alphabet="aAİß-", max_size=2),
)
def test_multi_key_predicate_tests_the_values_field_values_gives(event, keys, cased, wanted):
    seen: list[str] = []

    def test(s: str) -> bool:
        seen.append(s)
        return s == wanted

    want = []
    for x in field_values(event, keys):
        s = scalar_text(x)
        want.append(s if cased else fold(s))
        if want[-1] == wanted:
            break
    assert _string_pred(keys, test, cased)(event) == (wanted in want)
    assert seen == want
