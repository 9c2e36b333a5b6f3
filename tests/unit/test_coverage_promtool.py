"""`promtool check rules` and `promtool test rules` over dashboards/prometheus (skipped without promtool)."""

import shutil
import subprocess
from pathlib import Path

import pytest

RULES_DIR = Path(__file__).resolve().parents[2] / "dashboards" / "prometheus"
PROMTOOL = shutil.which("promtool") or ""
pytestmark = pytest.mark.skipif(not PROMTOOL, reason="promtool not installed (Debian package prometheus)")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("rules", sorted(p.name for p in RULES_DIR.glob("*.rules.yml")))
def test_rules_check(rules):
    r = _run("check", "rules", rules)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("tests", sorted(p.name for p in RULES_DIR.glob("*.test.yml")))
def test_rule_unit_tests(tests):
    r = _run("test", "rules", tests)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout + r.stderr


def test_a_broken_expectation_makes_promtool_fail(tmp_path):
    """The harness would notice a wrong rule: flip one expected value and promtool must fail."""
    src = (RULES_DIR / "coverage.test.yml").read_text()
    assert "value: 0.5" in src
    (tmp_path / "coverage.rules.yml").write_text((RULES_DIR / "coverage.rules.yml").read_text())
    (tmp_path / "broken.test.yml").write_text(src.replace("value: 0.5", "value: 0.7", 1))
    r = subprocess.run(
        [PROMTOOL, "test", "rules", "broken.test.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert r.returncode != 0
