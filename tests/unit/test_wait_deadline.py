"""The integration tests' waits (tests/integration/conftest.py): a budget in seconds of an idle machine,
stretched by the load and restarted by progress, that still fails when nothing happens."""

from __future__ import annotations

import pytest

from tests.integration import conftest


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(conftest, "time", c)
    return c


def _wall_until_expired(d: conftest.Deadline, clock: Clock, step: float = 0.5, moving: bool = False) -> float:
    start, n = clock.now, 0
    while not d.expired():
        clock.sleep(step)
        n += 1
        if moving:
            d.moved(n)
    return clock.now - start


def test_an_idle_machine_gets_the_budget_in_wall_seconds(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "load_per_core", lambda: 1.0)
    assert _wall_until_expired(conftest.Deadline(10), clock) == 10


def test_a_loaded_machine_gets_proportionally_longer(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "load_per_core", lambda: 4.0)  # load 8 on 2 cores
    assert _wall_until_expired(conftest.Deadline(10), clock) == 40


def test_progress_restarts_the_budget_but_never_past_the_stretch(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "load_per_core", lambda: 1.0)
    d = conftest.Deadline(10)
    assert _wall_until_expired(d, clock, moving=True) == conftest.MAX_STRETCH * 10
    d = conftest.Deadline(10)
    d.moved(5)
    for _ in range(8):
        clock.sleep(1)
        d.moved(5)  # the same count: nothing moved
        assert not d.expired()
    clock.sleep(2)
    assert d.expired()


def test_wait_for_fails_when_nothing_moves_and_returns_what_came(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "load_per_core", lambda: 1.0)
    with pytest.raises(pytest.fail.Exception, match=r"timed out after 30s .* waiting for lines \(last value: 0\)"):
        conftest.wait_for(lambda: 0, 30, what="lines", progress=lambda: 7)
    count = iter(range(100))
    got = conftest.wait_for(lambda: (n := next(count)) >= 45 and n, 10, 1.0, progress=lambda: clock.now // 5)
    assert got == 45  # 45 s of wall clock: a count that moves every 5 s keeps a 10 s budget alive
