"""AND/OR of a selection map's tests and of a condition's parts (chained directly for two or three):
the same answer as all()/any(), the same tests called in the same order, stopping at the same one."""

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.sigma.compile import _all_of, _any_of


def _recording(answers: list, called: list) -> list:
    def pred(i: int):
        def p(ev):
            called.append(i)
            return answers[i]

        return p

    return [pred(i) for i in range(len(answers))]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([True, False, 0, 1, "", "x", None]), min_size=1, max_size=5))
def test_chains_answer_and_short_circuit_like_all_and_any(answers):
    for combine, reference in ((_all_of, all), (_any_of, any)):
        ours: list[int] = []
        got = combine(_recording(answers, ours))({})
        theirs: list[int] = []
        want = reference(p(None) for p in _recording(answers, theirs))
        assert got is want  # a bool, whatever the tests return
        assert ours == theirs
