"""The parser examples (detectors/normalise/examples.yml) are parser tests, and the field reference
(`socpipe fields`) is generated from them: every example must produce what it says."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from detectors.normalise.reference import build_reference, load_examples, reference, run_example
from pipeline.cli import main

EXAMPLES = load_examples()


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_example_parses_as_it_says(example) -> None:
    events = run_example(example)
    assert len(events) == 1, f"{len(events)} events"
    ev = events[0]
    assert "_socpipe_parse_failure" not in (ev.get("tags") or [])
    wrong = {k: (v, ev.get(k)) for k, v in example.expect.items() if ev.get(k) != v}
    assert not wrong, f"expected vs got: {wrong}"


def test_every_dataset_has_examples() -> None:
    assert {
        "system.auth",
        "system.syslog",
        "auditd.log",
        "apache.access",
        "nginx.access",
        "apache.error",
        "nginx.error",
        "iptables.log",
    } <= set(reference())


def test_commands_and_targets_use_ecs_names() -> None:
    """sudo/cron commands in process.*, accounts acted upon in user.target.*, groups in group.*;
    no private copy of a field ECS has."""
    auth = reference()["system.auth"]
    assert {
        "process.command_line",
        "process.executable",
        "process.args",
        "process.working_directory",
        "user.effective.name",
        "user.target.name",
        "user.target.id",
        "group.name",
        "group.id",
    } <= set(auth)
    assert not {"system.auth.sudo.command", "system.auth.cron.command", "system.auth.sudo.pwd"} & set(auth)


def test_reference_records_an_example_value_and_which_examples_emit_it() -> None:
    ref = build_reference([e for e in EXAMPLES if e.name.startswith("sudo command")])
    cmd = ref["system.auth"]["process.command_line"]
    assert cmd.example == "/usr/sbin/usermod -aG sudo backdoor" and cmd.type == "keyword"
    assert ref["system.auth"]["process.args"].type == "list of keyword"
    assert ref["system.auth"]["process.args_count"].type == "long"
    assert cmd.examples == ["sudo command (ECS process.* for the command run)"]


def test_cli_fields() -> None:
    runner = CliRunner()
    out = runner.invoke(main, ["fields", "--dataset", "system.auth"])
    assert out.exit_code == 0, out.output
    assert out.output.startswith("system.auth  (")
    line = next(ln for ln in out.output.splitlines() if ln.strip().startswith("process.command_line "))
    assert '"/usr/sbin/usermod -aG sudo backdoor"' in line
    assert "apache.access" not in out.output
    out = runner.invoke(main, ["fields", "--json"])
    doc = json.loads(out.output)
    assert doc["apache.access"]["url.original"] == {"example": "/wp-login.php?x=1", "type": "keyword"}
    assert doc["iptables.log"]["destination.port"]["type"] == "long"
    out = runner.invoke(main, ["fields", "--dataset", "no.such"])
    assert out.exit_code == 2 and "unknown dataset no.such" in out.output and "system.auth" in out.output
