"""State kept through an eager rebalance for partitions that come back (pipeline.worker.handover)."""

from __future__ import annotations

from kafka import TopicPartition

from pipeline.worker.handover import Handover


def _stage() -> tuple[dict[int, str], Handover]:
    state = {0: "s0", 1: "s1", 2: "s2"}
    return state, Handover(lambda p: state.pop(p, None), state.__setitem__)


TP = [TopicPartition("raw", p) for p in range(4)]


def test_partitions_back_in_the_next_generation_keep_their_state_at_their_last_snapshot() -> None:
    state, handover = _stage()
    handover.saved(TP[0], 120)
    handover.park(TP[:3], generation=7)
    assert state == {} and handover.parked == 3  # nothing of them is processed during the rebalance
    kept = handover.take_back([TP[0], TP[1], TP[3]], generation=8)
    assert kept == {TP[0]: 120, TP[1]: None}  # 1: no snapshot saved since: the committed offset
    assert state == {0: "s0", 1: "s1"}  # 2 went to another worker: its state is gone
    assert handover.parked == 0


def test_anything_but_the_very_next_generation_restores_from_the_snapshot() -> None:
    """A generation skipped (this worker was evicted, someone else may have held the partition and
    moved it on) or unknown (another assignor chose): nothing parked is used."""
    for held, now in ((7, 9), (7, 7), (-1, 0), (7, -1)):
        state, handover = _stage()
        handover.park(TP[:2], generation=held)
        assert handover.take_back(TP[:2], generation=now) == {}
        assert state == {2: "s2"}


def test_lost_partitions_are_dropped_not_parked() -> None:
    state, handover = _stage()
    handover.saved(TP[1], 5)
    handover.drop(TP[:2])
    assert handover.take_back(TP[:2], generation=0) == {} and state == {2: "s2"}
    assert handover.offsets == {}


def test_partitions_without_state_are_not_parked() -> None:
    """Assigned but not restored yet at revocation: nothing to keep; restored after the rebalance."""
    state, handover = _stage()
    handover.park([TP[3]], generation=1)
    assert handover.take_back([TP[3]], generation=2) == {}
