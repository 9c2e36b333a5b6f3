"""A Windows process's creation context (Sysmon 1) on its later Sysmon events: filled, never
overwritten, bounded, kept apart per sender and computer, dropped when the process ends; and a
SigmaHQ network_connection rule that needs CommandLine firing through the engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.wire import LineBatch, LogLine
from detectors.normalise import Normaliser
from detectors.normalise.process_context import ProcessContext
from tests.unit.test_normalise_windows import SHAPES, SYSMON_1

SYSMON = ("Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-Sysmon")
GUID = SYSMON_1["ProcessGuid"]
SYSMON_3 = {
    "RuleName": "-",
    "UtcTime": "2019-05-12 17:01:52.100",
    "ProcessGuid": GUID,
    "ProcessId": "2952",
    "Image": "C:\\Windows\\System32\\pcalua.exe",
    "Protocol": "tcp",
    "Initiated": "true",
    "SourceIp": "10.0.2.15",
    "SourcePort": "49722",
    "DestinationIp": "198.51.100.7",
    "DestinationPort": "443",
}
WINDOWS_RULES = Path(__file__).resolve().parents[2].parent / "shared" / "sigma" / "rules-windows"


def batch(lines: list[str], agency: str = "so-a", agent: str = "agent-1") -> LineBatch:
    logs = [LogLine(text=t, seq=i + 1, read_at=1.7e9) for i, t in enumerate(lines)]
    return LineBatch(agency, agent, "collector", "winlog-tcp:6514/x", logs, "windows", "UTC")


def sysmon(eid: int, data: dict, shape: str = "nxlog", host: str = "FS01.agency.local") -> str:
    return SHAPES[shape](*SYSMON, eid, data, host=host)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_network_connection_gets_its_process_creation_context(shape: str) -> None:
    n = Normaliser(default_timezone="UTC")
    created, connected = n.normalise_batch(batch([sysmon(1, SYSMON_1, shape), sysmon(3, SYSMON_3, shape)]))
    assert "socpipe.enriched" not in created  # a creation says it all itself
    assert connected["process.command_line"] == SYSMON_1["CommandLine"]
    assert connected["process.parent.executable"] == "C:\\Windows\\System32\\cmd.exe"
    assert connected["process.parent.name"] == "cmd.exe"
    assert connected["process.parent.pid"] == 3788
    assert connected["process.parent.command_line"] == SYSMON_1["ParentCommandLine"]
    assert connected["process.pe.original_file_name"] == "pcalua.exe"
    assert connected["process.hash.md5"] == "d652ba88" and connected["process.pe.imphash"] == "256cd8ce"
    assert connected["process.working_directory"] == "C:\\Users\\IEUser\\"
    assert (connected["user.name"], connected["user.domain"]) == ("IEUser", "IEWIN7")
    assert "IEUser" in connected["related.user"]
    # Sysmon's own spelling for what ECS has no field for (SigmaHQ's User, IntegrityLevel)
    assert connected["socpipe.process.user"] == "IEWIN7\\IEUser"
    assert connected["socpipe.process.integrity_level"] == "Medium"
    assert set(connected["socpipe.enriched"]) >= {"process.command_line", "user.name", "socpipe.process.user"}
    # the raw event data stays what Windows wrote
    assert not any(k in connected for k in ("winlog.event_data.CommandLine", "winlog.event_data.User"))
    # the event's own process fields are its own
    assert connected["process.executable"] == SYSMON_3["Image"] and connected["process.pid"] == 2952


def test_a_field_the_event_carries_is_never_overwritten() -> None:
    n = Normaliser(default_timezone="UTC")
    own = {**SYSMON_3, "User": "IEWIN7\\Other"}  # Sysmon 3 has carried User since v6
    _, connected = n.normalise_batch(batch([sysmon(1, SYSMON_1), sysmon(3, own)]))
    assert connected["user.name"] == "Other" and connected["winlog.event_data.User"] == "IEWIN7\\Other"
    assert "socpipe.process.user" not in connected
    assert not {"user.name", "user.domain", "socpipe.process.user"} & set(connected["socpipe.enriched"])
    assert connected["process.command_line"] == SYSMON_1["CommandLine"]  # what it lacked is still filled


def test_context_is_kept_apart_per_sender_and_computer() -> None:
    n = Normaliser(default_timezone="UTC")
    n.normalise_batch(batch([sysmon(1, SYSMON_1)], agency="so-a"))
    # the same ProcessGuid from another agency (or another agent of it): nothing filled
    (other_agency,) = n.normalise_batch(batch([sysmon(3, SYSMON_3)], agency="so-b"))
    (other_agent,) = n.normalise_batch(batch([sysmon(3, SYSMON_3)], agent="agent-2"))
    (other_host,) = n.normalise_batch(batch([sysmon(3, SYSMON_3, host="FS02.agency.local")]))
    for ev in (other_agency, other_agent, other_host):
        assert "process.command_line" not in ev and "socpipe.enriched" not in ev
    (same,) = n.normalise_batch(batch([sysmon(3, SYSMON_3)], agency="so-a"))  # a later batch: still known
    assert same["process.command_line"] == SYSMON_1["CommandLine"]


def test_a_process_end_is_filled_then_forgotten() -> None:
    n = Normaliser(default_timezone="UTC")
    ended = {"RuleName": "-", "UtcTime": "2019-05-12 17:02:00.000", "ProcessGuid": GUID, "ProcessId": "2952"}
    ended["Image"] = SYSMON_1["Image"]
    _, end, after = n.normalise_batch(batch([sysmon(1, SYSMON_1), sysmon(5, ended), sysmon(3, SYSMON_3)]))
    assert end["process.command_line"] == SYSMON_1["CommandLine"]
    assert "process.command_line" not in after and len(n.processes) == 0


def test_memory_is_bounded_least_recently_seen_first() -> None:
    ctx = ProcessContext(max_processes=2)

    def created(guid: str) -> dict:
        return {"event.code": "1", "process.entity_id": guid, "host.hostname": "h", "process.command_line": guid}

    def later(guid: str) -> dict:
        ev = {"event.code": "3", "process.entity_id": guid, "host.hostname": "h"}
        ctx.apply("a|b", ev)
        return ev

    for g in ("{1}", "{2}"):
        ctx.apply("a|b", created(g))
    assert later("{1}")["process.command_line"] == "{1}"  # {1} now the most recently seen
    ctx.apply("a|b", created("{3}"))  # over the cap: {2} goes
    assert len(ctx) == 2
    assert "process.command_line" not in later("{2}")
    assert later("{1}")["process.command_line"] == "{1}" and later("{3}")["process.command_line"] == "{3}"
    off = ProcessContext(max_processes=0)
    off.apply("a|b", created("{1}"))
    ev = {"event.code": "3", "process.entity_id": "{1}", "host.hostname": "h"}
    off.apply("a|b", ev)
    assert len(off) == 0 and "process.command_line" not in ev
    with pytest.raises(ValueError):
        ProcessContext(max_processes=-1)


def test_other_channels_and_events_without_a_guid_pass_untouched() -> None:
    n = Normaliser(default_timezone="UTC")
    no_guid = {k: v for k, v in SYSMON_3.items() if k != "ProcessGuid"}
    security = SHAPES["nxlog"]("Security", "Microsoft-Windows-Security-Auditing", 4624, {"ProcessGuid": GUID})
    _, bare, sec = n.normalise_batch(batch([sysmon(1, SYSMON_1), sysmon(3, no_guid), security]))
    assert "socpipe.enriched" not in bare and "socpipe.enriched" not in sec


# A network_connection rule that needs the command line: what SigmaHQ writes for Sysmon 3
NEEDS_COMMAND_LINE = """
title: pcalua proxy execution calling out
id: 0b5e7c1a-2f4d-4e8b-9a61-3c7d2e9f1a05
status: test
logsource: {product: windows, category: network_connection}
detection:
    selection:
        Image|endswith: '\\\\pcalua.exe'
        CommandLine|contains: ' -a '
        ParentImage|endswith: '\\\\cmd.exe'
        User|contains: 'IEWIN7'
        Initiated: 'true'
    condition: selection
level: high
"""


def test_a_network_connection_rule_on_the_command_line_fires_after_the_creation(tmp_path) -> None:
    from detectors.sigma import Engine, load_rules

    (tmp_path / "r.yml").write_text(NEEDS_COMMAND_LINE)
    engine = Engine(load_rules([str(tmp_path)]).rules)
    alone = Normaliser(default_timezone="UTC").normalise_batch(batch([sysmon(3, SYSMON_3)]))
    assert not engine.matching_rules(alone[0])
    for shape in sorted(SHAPES):
        _, connected = Normaliser(default_timezone="UTC").normalise_batch(
            batch([sysmon(1, SYSMON_1, shape), sysmon(3, SYSMON_3, shape)])
        )
        assert [r.meta.title for r in engine.matching_rules(connected)] == ["pcalua proxy execution calling out"]


@pytest.mark.skipif(not WINDOWS_RULES.is_dir(), reason="../shared/sigma/rules-windows missing")
def test_sigmahq_rule_needing_commandline_on_sysmon_3_fires_end_to_end() -> None:
    """SigmaHQ's 'Suspicious Network Connection Binary No CommandLine' (rundll32 calling out with no
    arguments) filters events without CommandLine: it can fire only on an enriched Sysmon 3."""
    from detectors.sigma import Engine, load_rules

    rule = WINDOWS_RULES / "network_connection" / "net_connection_win_susp_binary_no_cmdline.yml"
    if not rule.is_file():
        pytest.skip("rule not in this SigmaHQ checkout")
    engine = Engine(load_rules([str(rule)]).rules)
    rundll = "C:\\Windows\\System32\\rundll32.exe"
    creation = {**SYSMON_1, "Image": rundll, "OriginalFileName": "RUNDLL32.EXE", "CommandLine": rundll}
    connection = {**SYSMON_3, "Image": rundll}
    n = Normaliser(default_timezone="UTC")
    (alone,) = n.normalise_batch(batch([sysmon(3, connection)]))
    assert engine.process(alone) == []
    created, connected = n.normalise_batch(batch([sysmon(1, creation), sysmon(3, connection)]))
    (hit,) = engine.process(connected)
    assert hit.rule_title == "Suspicious Network Connection Binary No CommandLine"
    assert hit.level == "high"


def test_windows_process_names_get_one_spelling_to_count_by() -> None:
    """Windows file names ignore case: the discovery burst counts distinct programs by this field."""
    n = Normaliser(default_timezone="UTC")
    upper = {**SYSMON_1, "Image": "C:\\Windows\\system32\\PCALUA.EXE"}
    a, b = n.normalise_batch(batch([sysmon(1, SYSMON_1), sysmon(1, upper)]))
    assert (a["process.name"], b["process.name"]) == ("pcalua.exe", "PCALUA.EXE")  # ECS keeps the case
    assert a["socpipe.process.name_lower"] == b["socpipe.process.name_lower"] == "pcalua.exe"


def test_socpipe_parse_of_a_forwarded_file_fills_as_the_worker_does(tmp_path) -> None:
    import orjson
    from click.testing import CliRunner

    from pipeline.cli.parse import parse_command

    path = tmp_path / "fs01-winlog.jsonl"
    path.write_text(sysmon(1, SYSMON_1) + "\n" + sysmon(3, SYSMON_3) + "\n")
    result = CliRunner().invoke(parse_command, ["--input", str(path), "--dataset", "windows", "--timezone", "UTC"])
    assert result.exit_code == 0, result.output
    events = [orjson.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    assert [e["event.code"] for e in events] == ["1", "3"]
    assert events[1]["process.command_line"] == SYSMON_1["CommandLine"]
    assert "process.command_line" in events[1]["socpipe.enriched"]


def test_a_rule_test_sequence_carries_process_context_from_line_to_line(tmp_path) -> None:
    """Rule tests (`socpipe rules test`) normalise a sequence's lines as one worker would."""
    import orjson

    from detectors.sigma.testing import run_tests

    (tmp_path / "r.yml").write_text(NEEDS_COMMAND_LINE)
    steps = [{"at": "0s", "line": sysmon(1, SYSMON_1)}, {"at": "2s", "line": sysmon(3, SYSMON_3)}]
    spec = {
        "timezone": "UTC",
        "tests": [
            {
                "name": "creation then connection",
                "sequence": steps,
                "expect": [{"rule": "pcalua proxy execution calling out"}],
            },
            {"name": "connection alone", "sequence": steps[1:], "expect": []},
        ],
    }
    (tmp_path / "r.tests.yml").write_text(orjson.dumps(spec).decode())  # JSON is YAML
    results = run_tests([tmp_path])
    assert [(r.name, r.passed) for r in results] == [("creation then connection", True), ("connection alone", True)]


def test_memory_is_bounded_in_characters_too() -> None:
    """A count alone is no bound: anyone on a host can start processes with ~32,000-character command
    lines, and 20,000 of them held over a gigabyte per worker. The oldest contexts go first."""
    ctx = ProcessContext(max_processes=1000, max_chars=100_000)

    def created(guid: str, size: int) -> dict:
        line = guid + "x" * size
        return {"event.code": "1", "process.entity_id": guid, "host.hostname": "h", "process.command_line": line}

    for i in range(10):
        ctx.apply("a|b", created(f"{{{i}}}", 30_000))
    assert len(ctx) == 3 and ctx.chars <= 100_000  # {7} {8} {9}: three of ~30,000 fit
    for i, kept in ((6, False), (7, True), (9, True)):
        ev = {"event.code": "3", "process.entity_id": f"{{{i}}}", "host.hostname": "h"}
        ctx.apply("a|b", ev)
        assert ("process.command_line" in ev) is kept, i
    ctx.apply("a|b", {"event.code": "5", "process.entity_id": "{9}", "host.hostname": "h"})
    ctx.apply("a|b", created("{8}", 10))  # the same creation again: weighed once, as it is now
    assert len(ctx) == 2 and ctx.chars == 30_003 + 13
    ctx.apply("a|b", created("{big}", 200_000))  # larger than the whole budget: not kept
    assert len(ctx) == 0 and ctx.chars == 0
