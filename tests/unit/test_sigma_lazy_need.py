"""A rule's index atoms (`need`) are worked out when first read, not while compiling (`rules lint` never
reads them): read later, they are exactly what working them out at once gives, for every shared
SigmaHQ and province rule; a rule whose atoms cannot be worked out (nesting past the stack) is indexed
as always-evaluate and still matches."""

import sys
from pathlib import Path

import pytest

from detectors.sigma import Engine, load_rules
from detectors.sigma.typed import Compiled

from .test_sigma_loader import GOOD

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
SIGMA_SETS = [
    SHARED / "sigma" / d for d in ("rules", "rules-emerging-threats", "rules-threat-hunting", "rules-windows")
]


@pytest.mark.skipif(not all(p.is_dir() for p in SIGMA_SETS), reason="../shared/sigma not present")
def test_atoms_read_later_are_those_worked_out_at_once(monkeypatch):
    paths = [str(p) for p in SIGMA_SETS] + [str(REPO / "rules")]
    monkeypatch.setenv("SOCPIPE_RULE_CACHE", "off")
    lazy = load_rules(paths)
    later = [r.need for r in lazy.rules if hasattr(r, "need")]
    real_init = Compiled.__init__

    def at_once(self, match, need=None, make=None):
        real_init(self, match, need, make)
        self.get_need()  # as before: the atoms made with the piece, from its parts as they were then

    monkeypatch.setattr(Compiled, "__init__", at_once)
    eager = load_rules(paths)
    now = [r.need for r in eager.rules if hasattr(r, "need")]
    assert later == now and len(now) > 3000
    assert sum(n is not None for n in now) > 2500  # most rules are indexed


def test_a_rule_too_deep_to_index_is_always_evaluated(tmp_path):
    depth = 60
    cond = "sel"
    for i in range(depth):
        cond = f"(sel and ({cond} or other{i % 2}))"
    rule = GOOD.replace(
        "    condition: sel\n",
        f"    other0: {{message|contains: x0}}\n    other1: {{message|contains: x1}}\n    condition: {cond}\n",
    )
    (tmp_path / "deep.yml").write_text(rule)
    res = load_rules([tmp_path])
    assert not res.errors, res.errors
    (deep,) = res.rules
    limit = sys.getrecursionlimit()
    frames = len(__import__("inspect").stack())
    sys.setrecursionlimit(frames + 60)  # compiling fitted; working out the atoms does not
    try:
        assert deep.need is None
    finally:
        sys.setrecursionlimit(limit)
    assert deep.need is None  # decided once
    engine = Engine(res.rules)
    event = {"message": "evil", "event.dataset": "system.auth", "process.name": "sshd"}
    assert [r.meta.title for r in engine.matching_rules(event)] == ["Good"]
    assert not engine.matching_rules({**event, "message": "x0 x1"})
