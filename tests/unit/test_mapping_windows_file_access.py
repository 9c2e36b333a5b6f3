"""Security 4663 (an audited object accessed) read by SigmaHQ's file_access rules (written for the
Kernel-File ETW provider: FileName, Image) through detectors/mappings/windows.yml, in every forwarder
shape: the accessed file's path and the accessing program; other object types never match."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors.normalise import parse_line
from detectors.sigma import Engine, load_mappings, load_rules
from tests.unit.factories import engine_of
from tests.unit.test_normalise_windows import SHAPES

SECURITY = ("Security", "Microsoft-Windows-Security-Auditing")
WINDOWS_RULES = Path(__file__).resolve().parents[2].parent / "shared" / "sigma" / "rules-windows"
MASTER_KEY = (
    "C:\\Users\\bob\\AppData\\Roaming\\Microsoft\\Protect\\S-1-5-21-1-2-3-1104\\0b1c2d3e-aaaa-bbbb-cccc-111122223333"
)


def _4663(**over: str) -> dict[str, str]:
    d = {
        "SubjectUserSid": "S-1-5-21-1-2-3-1104",
        "SubjectUserName": "bob",
        "SubjectDomainName": "AGENCY",
        "SubjectLogonId": "0x3c004",
        "ObjectServer": "Security",
        "ObjectType": "File",
        "ObjectName": MASTER_KEY,
        "HandleId": "0x4a8",
        "AccessList": "%%4416",
        "AccessMask": "0x1",
        "ProcessId": "0x1f30",
        "ProcessName": "C:\\Users\\bob\\AppData\\Local\\Temp\\sd.exe",
        "ResourceAttributes": "S:AI",
    }
    d.update(over)
    return d


def _engine(tmp_path: Path, detection: dict) -> Engine:
    doc = {
        "title": "t file_access",
        "id": "00000000-0000-4000-8000-000000000003",
        "status": "test",
        "level": "medium",
        "logsource": {"product": "windows", "category": "file_access"},
        "detection": {**detection, "condition": "sel"},
    }
    return engine_of(tmp_path, doc)


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("FileName|contains", "\\Microsoft\\Protect\\S-1-5-21-"),
        ("FileName|endswith", "-111122223333"),
        ("Image|endswith", "\\sd.exe"),
    ],
)
def test_4663_file_fields(tmp_path, shape: str, field: str, value: str) -> None:
    engine = _engine(tmp_path, {"sel": {field: value}})
    ev = parse_line(SHAPES[shape](*SECURITY, 4663, _4663()), timezone="UTC")
    assert engine.matching_rules(ev), f"{field} did not match"
    other = _4663(ObjectName="C:\\Data\\report.docx", ProcessName="C:\\Program Files\\Office\\WINWORD.EXE")
    assert not engine.matching_rules(parse_line(SHAPES[shape](*SECURITY, 4663, other), timezone="UTC"))


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_4663_of_a_key_or_process_is_no_file(tmp_path, shape: str) -> None:
    engine = _engine(tmp_path, {"sel": {"FileName|contains": "\\Microsoft\\Protect\\"}})
    key = _4663(ObjectType="Key", ObjectName="\\REGISTRY\\USER\\S-1-5-21-1-2-3-1104\\Software\\Microsoft\\Protect\\x")
    assert not engine.matching_rules(parse_line(SHAPES[shape](*SECURITY, 4663, key), timezone="UTC"))


def test_4663_derives_file_access_only() -> None:
    ls = load_mappings().derive(parse_line(SHAPES["nxlog"](*SECURITY, 4663, _4663()), timezone="UTC"))
    assert ls.admits({"product": "windows", "category": "file_access"})
    assert not ls.admits({"product": "windows", "category": "file_event"})
    other = load_mappings().derive(parse_line(SHAPES["nxlog"](*SECURITY, 4656, _4663()), timezone="UTC"))
    assert not other.admits({"product": "windows", "category": "file_access"})


@pytest.mark.skipif(not WINDOWS_RULES.is_dir(), reason="../shared/sigma/rules-windows missing")
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_sigmahq_dpapi_rule_fires_on_4663(shape: str) -> None:
    """SigmaHQ's 'Access To Windows DPAPI Master Keys By Uncommon Applications' (file_access), unchanged, on an audited 4663."""
    res = load_rules([str(WINDOWS_RULES / "file" / "file_access" / "file_access_win_susp_dpapi_master_key_access.yml")])
    assert not res.errors and res.rules
    engine = Engine(res.rules)
    assert engine.matching_rules(parse_line(SHAPES[shape](*SECURITY, 4663, _4663()), timezone="UTC"))
    lsass = _4663(ProcessName="C:\\Windows\\System32\\lsass.exe")  # DPAPI's own reads: filtered by the rule
    assert not engine.matching_rules(parse_line(SHAPES[shape](*SECURITY, 4663, lsass), timezone="UTC"))
