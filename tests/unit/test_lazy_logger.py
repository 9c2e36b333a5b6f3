"""collectors.lazy.LazyLogger: the parsers' logger imports logging at the first message, and a parser
error is still logged under the module's name (and costs that line's fields only)."""

from __future__ import annotations

import logging

import pytest

from collectors.lazy import LazyLogger
from detectors.normalise import core, firewall, parse_line


def test_lazy_logger_logs_under_its_name(caplog: pytest.LogCaptureFixture) -> None:
    log = LazyLogger("socpipe.test.lazy")
    with caplog.at_level(logging.INFO, logger="socpipe.test.lazy"):
        log.info("event=hello n=%d", 3)
    assert [(r.name, r.getMessage()) for r in caplog.records] == [("socpipe.test.lazy", "event=hello n=3")]
    assert log.isEnabledFor(logging.CRITICAL)


def test_a_parser_error_is_logged_and_the_line_kept(caplog: pytest.LogCaptureFixture, monkeypatch) -> None:
    def broken(ev: dict, msg: str) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(firewall, "parse_netfilter", broken)
    line = "Nov 27 10:00:01 fw kernel: [ 1.5] IN=eth0 OUT= SRC=1.2.3.4 DST=10.0.0.5 PROTO=TCP"
    with caplog.at_level(logging.ERROR, logger=core.__name__):
        ev = parse_line(line, read_at=1764288000.0)
    assert ev["event.original"] == line
    assert any(r.name == core.__name__ and "event=parser_error" in r.getMessage() for r in caplog.records)


def test_a_rule_error_in_the_engine_is_logged_and_the_event_kept(caplog: pytest.LogCaptureFixture) -> None:
    """The engine's logger is lazy too: a rule that raises on an odd event is logged once under the
    engine's module name, counted, and the other rules still match."""
    from detectors.sigma import engine as engine_module
    from detectors.sigma.engine import Engine
    from detectors.sigma.model import RuleMeta, SigmaRule

    def broken(ev: dict) -> bool:
        raise RuntimeError("boom")

    rules = [
        SigmaRule(RuleMeta(id="broken", title="broken"), {}, broken, None),
        SigmaRule(RuleMeta(id="fine", title="fine"), {}, lambda ev: True, None),
    ]
    engine = Engine(rules)
    with caplog.at_level(logging.WARNING, logger=engine_module.__name__):
        for _ in range(2):
            assert [r.id for r in engine.matching_rules({"message": "x"})] == ["fine"]
    assert engine.stats["rule_errors"] == 2
    logged = [r.getMessage() for r in caplog.records if r.name == engine_module.__name__]
    assert logged == ["event=rule_error rule=broken error=RuntimeError('boom')"]
