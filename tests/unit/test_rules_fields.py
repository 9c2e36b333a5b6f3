"""Rule authors are told which fields exist: `rules lint` warns on a field no parser of the rule's
logsource emits, and rule tests can feed raw lines through the real parser."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from detectors.sigma import load_rules
from detectors.sigma.fieldcheck import field_warnings
from detectors.sigma.testing import run_test_file
from pipeline.cli import main

RULES = Path(__file__).resolve().parents[2] / "rules"
SUDO_USERADD = (
    "Nov 27 10:00:08 web1 sudo:    alice : TTY=pts/1 ; PWD=/root ; USER=root ; COMMAND=/usr/sbin/useradd -m eve"
)

RULE = """title: Sudo Useradd ({field})
id: 0b6a0e0e-1111-4c4c-9d9d-00000000000{n}
logsource: {{product: linux, service: sudo}}
detection:
    selection:
        {field}|contains: useradd
    condition: selection
level: medium
"""


def _write(tmp_path: Path, field: str, n: int) -> Path:
    rule = tmp_path / f"r{n}.yml"
    rule.write_text(RULE.format(field=field, n=n))
    (tmp_path / f"r{n}.tests.yml").write_text(
        f"source: /var/log/auth.log\ntests:\n  - name: real sudo line\n    line: '{SUDO_USERADD}'\n    match: true\n"
        "  - name: hand-written event\n    event: {event.dataset: system.auth, process.name: sudo, "
        f"{field}: /usr/sbin/useradd -m eve}}\n    match: true\n"
    )
    return rule


def test_every_province_rule_uses_only_emitted_fields() -> None:
    loaded = load_rules([RULES])
    assert not loaded.errors
    assert field_warnings(loaded.rules) == []


def test_lint_warns_on_a_field_no_parser_emits(tmp_path) -> None:
    bad = _write(tmp_path, "system.auth.sudo.command", 1)
    good = _write(tmp_path, "process.command_line", 2)
    out = CliRunner().invoke(main, ["rules", "lint", str(bad), str(good)])
    assert out.exit_code == 0, out.output  # a warning, not an error: the rule still loads
    warns = [ln for ln in out.output.splitlines() if ln.startswith("WARN")]
    assert len(warns) == 1, out.output
    assert "r1.yml" in warns[0] and "system.auth.sudo.command" in warns[0] and "system.auth" in warns[0]
    assert "1 warnings" in out.output


def test_line_cases_go_through_the_parser(tmp_path) -> None:
    """The hand-written event passes for both rules; only the real line tells them apart."""
    _write(tmp_path, "system.auth.sudo.command", 1)
    _write(tmp_path, "process.command_line", 2)
    bad = {r.name: r for r in run_test_file(tmp_path / "r1.tests.yml")}
    good = {r.name: r for r in run_test_file(tmp_path / "r2.tests.yml")}
    assert bad["hand-written event"].passed and not bad["real sudo line"].passed
    assert good["hand-written event"].passed and good["real sudo line"].passed


def test_sequence_line_items_take_their_time_from_the_sequence(tmp_path) -> None:
    rule = (RULES / "linux" / "ssh_bruteforce.yml").read_text()
    (tmp_path / "bf.yml").write_text(rule)
    line = "Nov 27 10:00:01 web1 sshd[311]: Failed password for root from 203.0.113.9 port 4022 ssh2"
    (tmp_path / "bf.tests.yml").write_text(
        "source: /var/log/auth.log\ntests:\n  - name: real lines, one burst\n    sequence:\n"
        f"      - {{at: 0s, every: 2s, repeat: 5, line: '{line}'}}\n"
        "    expect:\n      - {rule: SSH Brute Force From One Source, count: 1, events: 5, group: {source.ip: 203.0.113.9}}\n"
        "  - name: real lines, too slow\n    sequence:\n"
        f"      - {{at: 0s, every: 1h, repeat: 5, line: '{line}'}}\n    expect: []\n"
    )
    results = run_test_file(tmp_path / "bf.tests.yml")
    assert [r.passed for r in results] == [True, True], [r.message for r in results]


def test_a_bad_line_case_is_a_clear_failure(tmp_path) -> None:
    _write(tmp_path, "process.command_line", 3)
    (tmp_path / "r3.tests.yml").write_text(
        "tests:\n  - name: two events\n    line: ['Nov 27 10:00:01 h app: a', 'Nov 27 10:00:02 h app: b']\n"
    )
    (res,) = run_test_file(tmp_path / "r3.tests.yml")
    assert not res.passed and "2 events" in res.message


def test_windows_rules_are_not_checked_against_linux_parsers(tmp_path) -> None:
    (tmp_path / "w.yml").write_text(
        "title: W\nlogsource: {product: windows, category: process_creation}\n"
        "detection:\n  s: {Image|endswith: '\\\\cmd.exe'}\n  condition: s\n"
    )
    assert field_warnings(load_rules([tmp_path / "w.yml"]).rules) == []


def test_correlation_group_by_is_checked_against_its_input_rules(tmp_path) -> None:
    (tmp_path / "c.yml").write_text(
        "title: Base\nname: base_fail\nlogsource: {product: linux, service: sshd}\n"
        "detection:\n  s: {event.outcome: failure}\n  condition: s\n---\n"
        "title: Corr\ncorrelation:\n  type: event_count\n  rules: [base_fail]\n"
        "  group-by: [source.ip, attacker.ip]\n  timespan: 5m\n  condition: {gte: 5}\n"
    )
    warns = field_warnings(load_rules([tmp_path / "c.yml"]).rules)
    assert len(warns) == 1 and "attacker.ip" in warns[0].message and warns[0].rule == "Corr"
