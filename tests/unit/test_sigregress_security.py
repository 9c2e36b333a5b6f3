"""tests/sigregress.py: a Sysmon event and the Security event Windows' auditing logs for the same action
read the same through the Windows mapping (each field a SigmaHQ rule tests), and the cross-check
counts rules firing on both forms."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from detectors.sigma.regression import sample_events
from tests.sigregress import as_4657, as_4688, cross_check
from tests.unit.factories import engine_of

SYSMON_1 = {
    "System": {
        "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}},
        "EventID": 1,
        "Level": 4,
        "TimeCreated": {"#attributes": {"SystemTime": "2026-11-30T10:00:00.000000Z"}},
        "Channel": "Microsoft-Windows-Sysmon/Operational",
        "Computer": "app01.agency.example",
    },
    "EventData": {
        "ProcessId": 4242,
        "Image": "C:\\Windows\\System32\\cmd.exe",
        "CommandLine": "cmd.exe /c whoami /all",
        "User": "AGENCY\\bob",
        "LogonId": "0x5c1e2",
        "IntegrityLevel": "High",
        "ParentProcessId": 4100,
        "ParentImage": "C:\\Windows\\System32\\wbem\\WmiPrvSE.exe",
    },
}
SYSMON_13 = {
    "System": {**SYSMON_1["System"], "EventID": 13},
    "EventData": {
        "EventType": "SetValue",
        "ProcessId": 4242,
        "Image": "C:\\Windows\\System32\\reg.exe",
        "TargetObject": "HKLM\\System\\CurrentControlSet\\Control\\SecurityProviders\\WDigest\\UseLogonCredential",
        "Details": "DWORD (0x00000001)",
    },
}


def _rule(category: str, event_id: int, field: str, value: str) -> dict:
    return {
        "title": f"{field} equals",
        "id": "00000000-0000-4000-8000-00000000000a",
        "status": "test",
        "level": "low",
        "logsource": {"product": "windows", "category": category},
        "detection": {"sel": {"EventID": event_id, field: value}, "condition": "sel"},
    }


def _events(event: dict) -> list[dict]:
    """An `Event` (a Sysmon one here) or a converted `{"Event": ...}` document through the normaliser."""
    return sample_events([orjson.dumps(event if "Event" in event else {"Event": event}).decode()])


@pytest.mark.parametrize("field", ["Image", "ParentImage", "CommandLine", "User", "LogonId", "IntegrityLevel"])
def test_a_4688_reads_as_its_sysmon_1(tmp_path: Path, field: str) -> None:
    value = str(SYSMON_1["EventData"][field])
    sysmon = engine_of(tmp_path, _rule("process_creation", 1, field, value))
    (tmp_path / "s").mkdir()
    security = engine_of(tmp_path / "s", _rule("process_creation", 4688, field, value))
    assert [bool(sysmon.matching_rules(e)) for e in _events(SYSMON_1)] == [True]
    assert [bool(security.matching_rules(e)) for e in _events(as_4688(SYSMON_1))] == [True], field


def test_a_system_process_is_the_machine_account_in_4688_and_system_again_through_the_mapping(tmp_path: Path) -> None:
    system = {**SYSMON_1, "EventData": {**SYSMON_1["EventData"], "User": "NT AUTHORITY\\SYSTEM", "LogonId": "0x3e7"}}
    data = as_4688(system)["Event"]["EventData"]
    assert (data["SubjectUserSid"], data["SubjectUserName"]) == ("S-1-5-18", "SRV01$")
    engine = engine_of(tmp_path, _rule("process_creation", 4688, "User", "NT AUTHORITY\\SYSTEM"))
    assert engine.matching_rules(_events(as_4688(system))[0])


@pytest.mark.parametrize("field", ["TargetObject", "Details", "Image", "EventType"])
def test_a_4657_reads_as_its_sysmon_13(tmp_path: Path, field: str) -> None:
    value = str(SYSMON_13["EventData"][field])
    engine = engine_of(tmp_path, _rule("registry_set", 4657, field, value))
    converted = as_4657(SYSMON_13)["Event"]["EventData"]
    assert converted["ObjectName"] == "\\REGISTRY\\MACHINE\\System\\ControlSet001\\Control\\SecurityProviders\\WDigest"
    assert (converted["NewValueType"], converted["NewValue"]) == ("%%1876", "1")
    assert engine.matching_rules(_events(as_4657(SYSMON_13))[0]), field


def test_cross_check_counts_rules_on_both_forms_and_names_what_4688_lacks(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    both_id, sysmon_only_id = "00000000-0000-4000-8000-0000000000b1", "00000000-0000-4000-8000-0000000000b2"
    both = {**_rule("process_creation", 1, "CommandLine|contains", "whoami"), "id": both_id, "title": "both"}
    both["detection"] = {"sel": {"CommandLine|contains": "whoami"}, "condition": "sel"}
    only = {**_rule("process_creation", 1, "OriginalFileName", "Cmd.Exe"), "id": sysmon_only_id, "title": "only"}
    only["detection"] = {"sel": {"Image|endswith": "\\cmd.exe", "OriginalFileName": "Cmd.Exe"}, "condition": "sel"}
    (rules / "both.yml").write_text(json.dumps(both))
    (rules / "only.yml").write_text(json.dumps(only))
    event = {**SYSMON_1, "EventData": {**SYSMON_1["EventData"], "OriginalFileName": "Cmd.Exe"}}
    for rid in (both_id, sysmon_only_id):
        d = tmp_path / "samples" / rid
        d.mkdir(parents=True)
        (d / f"{rid}.json").write_text(json.dumps({"Event": event}))
    counts, lost = cross_check(tmp_path / "samples", [str(rules)])[1]
    assert counts == {("fired", "fired"): 1, ("fired", "silent"): 1}
    assert lost == ["only.yml: originalfilename"]
