"""Late / out-of-order correlation inputs: the sliding one-pass check fires exactly the windows the
all-anchors check fires (same anchor, window and metric), for every incremental type and condition."""

from __future__ import annotations

import bisect

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.sigma.correlation import CorrelationState
from detectors.sigma.correlation_window import evaluate, is_monotonic
from detectors.sigma.model import CorrelationRule, RuleMeta


def _rule(ctype: str, op: str, n: int) -> CorrelationRule:
    meta = RuleMeta(id=f"c-{ctype}", title=ctype, name=None, description="", level="high", status="test", author="")
    return CorrelationRule(
        meta=meta,
        type=ctype,
        rule_refs=["a", "b", "c"],
        group_by=["g"],
        timespan=10.0,
        condition={op: n},
        value_fields=["v"],
        aliases={},
        rules=["a", "b", "c"],
    )


class _Reference(CorrelationState):
    """The check before the one-pass slide: every anchor's window evaluated from scratch."""

    def _fire_containing(self, rule, group, g, ts, in_order):
        times = g.times
        lo = bisect.bisect_left(times, ts - rule.timespan)
        for i in range(lo, bisect.bisect_right(times, ts)):
            j = bisect.bisect_right(times, times[i] + rule.timespan)
            metric = evaluate(rule, g.entries[i:j])
            if metric is not None:
                return [self._consume(rule, group, g, times[i], g.entries[i:j], metric)]
        return []


# values >= 0: value_sum with gt/gte is treated as monotonic (a negative addend would break that in
# order as well as out of order)
_arrivals = st.lists(
    st.tuples(st.integers(0, 60), st.sampled_from("abc"), st.one_of(st.none(), st.integers(0, 6))),
    min_size=1,
    max_size=60,
)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["value_count", "value_sum", "temporal", "event_count", "temporal_ordered"]),
    st.sampled_from(["gt", "gte"]),
    st.integers(1, 5),
    _arrivals,
    st.sampled_from([1e9, 30.0, 5.0]),
    st.integers(1, 10),
)
def test_out_of_order_fires_what_every_anchor_check_fires(ctype, op, n, arrivals, lateness, advance_every):
    rule = _rule(ctype, op, n)
    assert is_monotonic(rule)
    ours, ref = CorrelationState([rule], allowed_lateness=lateness), _Reference([rule], allowed_lateness=lateness)
    high = 0
    for n_seen, (ts, input_rule, value) in enumerate(arrivals, 1):
        a = ours.add(rule, ("g",), float(ts), input_rule, value, None, [])
        b = ref.add(rule, ("g",), float(ts), input_rule, value, None, [])
        assert [(f.anchor, [e.seq for e in f.entries], f.metric) for f in a] == [
            (f.anchor, [e.seq for e in f.entries], f.metric) for f in b
        ]
        high = max(high, ts)
        if n_seen % advance_every == 0:  # the watermark moves on: old entries leave the groups
            assert ours.advance(float(high)) == [] == ref.advance(float(high))
    assert ours.stats == ref.stats


def test_an_ordered_sequence_a_group_cannot_complete_is_not_scanned(monkeypatch):
    """A temporal_ordered group fed only later steps of its sequence (every process of the SYSTEM
    session, no network logon) never scans its windows; once the first step arrives it fires as before."""
    import detectors.sigma.correlation as correlation

    rule = _rule("temporal_ordered", "gte", 2)
    state = CorrelationState([rule], allowed_lateness=1e9)
    scans: list[int] = []
    real = evaluate

    def counted(r, entries):
        scans.append(len(entries))
        return real(r, entries)

    monkeypatch.setattr(correlation, "evaluate", counted)  # the name CorrelationState calls
    for i in range(200):
        assert state.add(rule, ("g",), i / 100, "b", None, None, []) == []
    assert scans == []  # without the check: one scan per input, 20,100 entries read in all
    (fired,) = state.add(rule, ("g",), 1.5, "a", None, None, [])  # an a, then the b at 1.5 ... 1.99
    assert fired.metric == {"rules_in_order": 2} and "a" in {e.rule for e in fired.entries}
    assert scans
