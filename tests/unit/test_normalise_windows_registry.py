"""Security 4657 (a registry value created, modified or deleted) rendered in Sysmon 12/13's terms
(detectors/normalise/windows_registry.py) and read by SigmaHQ-style registry rules through
detectors/mappings/windows.yml, field by field, in every forwarder shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors.normalise import parse_line
from detectors.normalise.windows_registry import registry_value_rendered, sysmon_details, sysmon_key
from detectors.sigma import Engine, load_mappings, load_rules
from tests.unit.factories import engine_of
from tests.unit.test_normalise_windows import SHAPES

SECURITY = ("Security", "Microsoft-Windows-Security-Auditing")
WINDOWS_RULES = Path(__file__).resolve().parents[2].parent / "shared" / "sigma" / "rules-windows"


def _4657(**over: str) -> dict[str, str]:
    d = {
        "SubjectUserSid": "S-1-5-21-1-2-3-1104",
        "SubjectUserName": "bob",
        "SubjectDomainName": "AGENCY",
        "SubjectLogonId": "0x3c004",
        "ObjectName": "\\REGISTRY\\MACHINE\\SYSTEM\\ControlSet001\\Control\\SecurityProviders\\WDigest",
        "ObjectValueName": "UseLogonCredential",
        "HandleId": "0x2a4",
        "OperationType": "%%1904",
        "OldValueType": "-",
        "OldValue": "-",
        "NewValueType": "%%1876",
        "NewValue": "1",
        "ProcessId": "0x1a2c",
        "ProcessName": "C:\\Windows\\System32\\reg.exe",
    }
    d.update(over)
    return d


@pytest.mark.parametrize(
    ("kernel", "sysmon"),
    [
        (
            "\\REGISTRY\\MACHINE\\SYSTEM\\ControlSet001\\Services\\EventLog",
            "HKLM\\SYSTEM\\CurrentControlSet\\Services\\EventLog",
        ),
        ("\\REGISTRY\\MACHINE\\SYSTEM\\ControlSet002", "HKLM\\SYSTEM\\CurrentControlSet"),
        ("\\REGISTRY\\MACHINE\\SOFTWARE\\Microsoft\\Windows", "HKLM\\SOFTWARE\\Microsoft\\Windows"),
        ("\\REGISTRY\\USER\\S-1-5-21-1-2-3-1104\\Software\\x", "HKU\\S-1-5-21-1-2-3-1104\\Software\\x"),
        ("\\REGISTRY\\USER\\S-1-5-21-1-2-3-1104_Classes\\CLSID", "HKU\\S-1-5-21-1-2-3-1104_Classes\\CLSID"),
        ("\\Registry\\Machine\\System\\ControlSet001\\x", "HKLM\\System\\CurrentControlSet\\x"),
        # only the SYSTEM hive's control sets; a key merely named like one elsewhere stays
        ("\\REGISTRY\\MACHINE\\SOFTWARE\\ControlSet001", "HKLM\\SOFTWARE\\ControlSet001"),
        ("\\REGISTRY\\MACHINEX\\y", "\\REGISTRY\\MACHINEX\\y"),
    ],
)
def test_key_in_sysmon_form(kernel: str, sysmon: str) -> None:
    assert sysmon_key(kernel) == sysmon


@pytest.mark.parametrize(
    ("vtype", "value", "details"),
    [
        ("%%1876", "1", "DWORD (0x00000001)"),
        ("%%1876", "65536", "DWORD (0x00010000)"),
        ("%%1876", "0x4", "DWORD (0x00000004)"),
        ("%%1876", "4294967295", "DWORD (0xffffffff)"),
        ("%%1876", "4294967296", None),  # not a DWORD: nothing rather than a wrong rendering
        ("%%1876", "x", None),
        ("%%1883", "4294967297", "QWORD (0x00000001-0x00000001)"),
        ("%%1873", "C:\\ProgramData\\a.exe", "C:\\ProgramData\\a.exe"),
        ("%%1874", "%SystemRoot%\\x.dll", "%SystemRoot%\\x.dll"),
        ("%%1873", "", "(Empty)"),
        ("%%1875", "01 02 03", "Binary Data"),
        ("REG_DWORD", "0", "DWORD (0x00000000)"),  # an already rendered type name
    ],
)
def test_details_in_sysmon_form(vtype: str, value: str, details: str | None) -> None:
    assert sysmon_details(vtype, value) == details


def test_rendered_fields_per_operation() -> None:
    wd = "HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\WDigest\\UseLogonCredential"
    assert registry_value_rendered(_4657()) == {
        "winlog.event_data.RegistrySetPath": wd,
        "winlog.event_data.RegistrySetDetails": "DWORD (0x00000001)",
        "winlog.event_data.RegistryEventType": "SetValue",
    }
    assert registry_value_rendered(_4657(OperationType="%%1905"))["winlog.event_data.RegistrySetPath"] == wd
    assert registry_value_rendered(_4657(OperationType="%%1906", NewValueType="-", NewValue="-")) == {
        "winlog.event_data.RegistryDeletePath": wd,
        "winlog.event_data.RegistryEventType": "DeleteValue",
    }
    default = registry_value_rendered(_4657(ObjectValueName="", NewValueType="%%1873", NewValue="x"))
    assert default["winlog.event_data.RegistrySetPath"].endswith("\\WDigest\\(Default)")
    assert registry_value_rendered(_4657(OperationType="%%1907")) == {}  # not a value operation
    assert registry_value_rendered(_4657(ObjectName="-")) == {}


def _engine(tmp_path: Path, category: str, field: str, value: str) -> Engine:
    doc = {
        "title": f"t {field}",
        "id": "00000000-0000-4000-8000-000000000002",
        "status": "test",
        "level": "medium",
        "logsource": {"product": "windows", "category": category},
        "detection": {"sel": {field: value}, "condition": "sel"},
    }
    return engine_of(tmp_path, doc)


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize(
    ("category", "field", "value"),
    [
        (
            "registry_set",
            "TargetObject|endswith",
            "\\CurrentControlSet\\Control\\SecurityProviders\\WDigest\\UseLogonCredential",
        ),
        ("registry_set", "TargetObject|startswith", "HKLM\\SYSTEM\\"),
        ("registry_set", "Details", "DWORD (0x00000001)"),
        ("registry_set", "EventType", "SetValue"),
        ("registry_set", "Image|endswith", "\\reg.exe"),
        ("registry_event", "TargetObject|endswith", "\\WDigest\\UseLogonCredential"),
        ("registry_event", "Details", "DWORD (0x00000001)"),
    ],
)
def test_4657_set_matches_sysmon_named_rule(tmp_path, shape: str, category: str, field: str, value: str) -> None:
    engine = _engine(tmp_path, category, field, value)
    hit = parse_line(SHAPES[shape](*SECURITY, 4657, _4657()), timezone="UTC")
    assert engine.matching_rules(hit), f"{category} {field} did not match"
    other = _4657(ObjectValueName="Negotiate", NewValue="0", ProcessName="C:\\Windows\\regedit.exe")
    other["ObjectName"] = "\\REGISTRY\\USER\\S-1-5-21-1-2-3-1104\\Software\\Vendor"
    if field == "EventType":  # every other set is a SetValue too: the other value is a deletion
        other.update(OperationType="%%1906", NewValueType="-", NewValue="-")
    assert not engine.matching_rules(parse_line(SHAPES[shape](*SECURITY, 4657, other), timezone="UTC"))


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_4657_deletion_is_a_delete_not_a_set(tmp_path, shape: str) -> None:
    gone = _4657(OperationType="%%1906", NewValueType="-", NewValue="-")
    ev = parse_line(SHAPES[shape](*SECURITY, 4657, gone), timezone="UTC")
    as_set = _engine(tmp_path, "registry_set", "TargetObject|endswith", "\\WDigest\\UseLogonCredential")
    assert not as_set.matching_rules(ev)
    as_delete = _engine(tmp_path, "registry_delete", "TargetObject|endswith", "\\WDigest\\UseLogonCredential")
    assert as_delete.matching_rules(ev)
    deleted = _engine(tmp_path, "registry_delete", "EventType", "DeleteValue")
    assert deleted.matching_rules(ev)


def test_4657_derives_the_registry_categories() -> None:
    ev = parse_line(SHAPES["nxlog"](*SECURITY, 4657, _4657()), timezone="UTC")
    ls = load_mappings().derive(ev)
    for category in ("registry_set", "registry_delete", "registry_event"):
        assert ls.admits({"product": "windows", "category": category})
    assert not ls.admits({"product": "windows", "category": "registry_add"})
    assert not ls.admits({"product": "windows", "category": "process_creation"})


@pytest.mark.skipif(not WINDOWS_RULES.is_dir(), reason="../shared/sigma/rules-windows missing")
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_sigmahq_registry_rule_fires_on_4657(shape: str) -> None:
    """SigmaHQ's 'Wdigest Enable UseLogonCredential' (registry_set), unchanged, on a server without Sysmon."""
    res = load_rules(
        [str(WINDOWS_RULES / "registry" / "registry_set" / "registry_set_wdigest_enable_uselogoncredential.yml")]
    )
    assert not res.errors and res.rules
    engine = Engine(res.rules)
    assert engine.matching_rules(parse_line(SHAPES[shape](*SECURITY, 4657, _4657()), timezone="UTC"))
    off = _4657(NewValue="0")
    assert not engine.matching_rules(parse_line(SHAPES[shape](*SECURITY, 4657, off), timezone="UTC"))
