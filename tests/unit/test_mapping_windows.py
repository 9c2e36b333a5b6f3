"""detectors/mappings/windows.yml, field by field: a SigmaHQ-style rule naming one Windows field (the
raw EventData name) under its logsource matches a forwarded event carrying that value, in every
forwarder shape, and does not match another value or another logsource."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors.normalise import parse_line
from detectors.sigma import Engine, load_mappings
from tests.unit.factories import engine_of
from tests.unit.test_normalise_windows import SHAPES

SYSMON = ("Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-Sysmon")
SECURITY = ("Security", "Microsoft-Windows-Security-Auditing")
SYSTEM = ("System", "Service Control Manager")
PS = ("Microsoft-Windows-PowerShell/Operational", "Microsoft-Windows-PowerShell")
DEFENDER = ("Microsoft-Windows-Windows Defender/Operational", "Microsoft-Windows-Windows Defender")
APPLICATION = ("Application", "ESENT")
RDPCORETS = (
    "Microsoft-Windows-RemoteDesktopServices-RdpCoreTS/Operational",
    "Microsoft-Windows-RemoteDesktopServices-RdpCoreTS",
)
RCM = (
    "Microsoft-Windows-TerminalServices-RemoteConnectionManager/Operational",
    "Microsoft-Windows-TerminalServices-RemoteConnectionManager",
)
WINRM = ("Microsoft-Windows-WinRM/Operational", "Microsoft-Windows-WinRM")
WS2HELP = ("Microsoft-Windows-Winsock-WS2HELP/Operational", "Microsoft-Windows-Winsock-WS2HELP")
PCA = (
    "Microsoft-Windows-Application-Experience/Program-Compatibility-Assistant",
    "Microsoft-Windows-Application-Experience",
)

# (logsource, channel+provider, event id, Sigma field, value written by Windows, value in the rule)
CASES = [
    ({"category": "process_creation"}, SYSMON, 1, "Image", "C:\\Windows\\System32\\certutil.exe", "\\certutil.exe"),
    ({"category": "process_creation"}, SYSMON, 1, "CommandLine", "certutil -urlcache -f http://x a", "-urlcache"),
    (
        {"category": "process_creation"},
        SYSMON,
        1,
        "ParentImage",
        "C:\\Program Files\\Office\\WINWORD.EXE",
        "\\winword.exe",
    ),
    ({"category": "process_creation"}, SYSMON, 1, "ParentCommandLine", "winword.exe /n doc.docm", ".docm"),
    ({"category": "process_creation"}, SYSMON, 1, "OriginalFileName", "CertUtil.exe", "certutil.exe"),
    ({"category": "process_creation"}, SYSMON, 1, "User", "NT AUTHORITY\\SYSTEM", "AUTHORI"),
    ({"category": "process_creation"}, SYSMON, 1, "IntegrityLevel", "High", "High"),
    ({"category": "process_creation"}, SYSMON, 1, "Hashes", "SHA1=AB,IMPHASH=CEEFB55F", "IMPHASH=CEEFB55F"),
    ({"category": "process_creation"}, SYSMON, 1, "CurrentDirectory", "C:\\Users\\Public\\", "\\Public\\"),
    (
        {"category": "process_creation"},
        SECURITY,
        4688,
        "Image",
        "C:\\Windows\\System32\\certutil.exe",
        "\\certutil.exe",
    ),
    ({"category": "process_creation"}, SECURITY, 4688, "CommandLine", "certutil -urlcache -f http://x a", "-urlcache"),
    ({"category": "process_creation"}, SECURITY, 4688, "ParentImage", "C:\\Windows\\System32\\cmd.exe", "\\cmd.exe"),
    ({"category": "network_connection"}, SYSMON, 3, "DestinationIp", "198.51.100.9", "198.51.100.9"),
    ({"category": "network_connection"}, SYSMON, 3, "DestinationPort", "4444", 4444),
    ({"category": "network_connection"}, SYSMON, 3, "DestinationHostname", "x.ngrok.io", ".ngrok.io"),
    ({"category": "network_connection"}, SYSMON, 3, "Initiated", "true", "true"),
    ({"category": "file_event"}, SYSMON, 11, "TargetFilename", "C:\\Windows\\Temp\\evil.ps1", ".ps1"),
    ({"category": "file_delete"}, SYSMON, 23, "TargetFilename", "C:\\x\\backup.vhd", ".vhd"),
    (
        {"category": "registry_set"},
        SYSMON,
        13,
        "TargetObject",
        "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\x",
        "\\CurrentVersion\\Run\\",
    ),
    ({"category": "registry_set"}, SYSMON, 13, "Details", "DWORD (0x00000001)", "DWORD (0x00000001)"),
    ({"category": "registry_event"}, SYSMON, 12, "EventType", "DeleteKey", "DeleteKey"),
    (
        {"category": "registry_delete"},
        SYSMON,
        12,
        "TargetObject",
        "HKU\\S-1\\Software\\Microsoft\\Windows\\CurrentVersion\\Explorer\\RunMRU",
        "\\RunMRU",
    ),
    ({"category": "image_load"}, SYSMON, 7, "ImageLoaded", "C:\\Users\\x\\AppData\\version.dll", "\\version.dll"),
    ({"category": "image_load"}, SYSMON, 7, "Signed", "false", "false"),
    ({"category": "process_access"}, SYSMON, 10, "TargetImage", "C:\\Windows\\system32\\lsass.exe", "\\lsass.exe"),
    ({"category": "process_access"}, SYSMON, 10, "GrantedAccess", "0x1010", "0x1010"),
    (
        {"category": "process_access"},
        SYSMON,
        10,
        "CallTrace",
        "C:\\Windows\\SYSTEM32\\ntdll.dll+9d4c4|UNKNOWN(x)",
        "UNKNOWN",
    ),
    ({"category": "create_remote_thread"}, SYSMON, 8, "StartModule", "C:\\x\\kernel32.dll", "kernel32.dll"),
    ({"category": "driver_load"}, SYSMON, 6, "ImageLoaded", "C:\\x\\RTCore64.sys", "\\RTCore64.sys"),
    ({"category": "dns_query"}, SYSMON, 22, "QueryName", "x.ngrok.io", "ngrok.io"),
    ({"category": "pipe_created"}, SYSMON, 17, "PipeName", "\\msagent_12", "\\msagent_"),
    ({"category": "wmi_event"}, SYSMON, 20, "Destination", "powershell -enc x", "powershell"),
    (
        {"category": "create_stream_hash"},
        SYSMON,
        15,
        "TargetFilename",
        "C:\\x\\a.exe:Zone.Identifier",
        "Zone.Identifier",
    ),
    ({"category": "ps_script"}, PS, 4104, "ScriptBlockText", "Invoke-Mimikatz -DumpCreds", "Invoke-Mimikatz"),
    ({"category": "ps_module"}, PS, 4103, "ContextInfo", "Host Application = powershell -enc x", "-enc"),
    ({"category": "ps_module"}, PS, 4103, "Payload", "CommandInvocation(Get-ADUser)", "Get-ADUser"),
    ({"service": "security"}, SECURITY, 4625, "LogonType", "10", 10),
    ({"service": "security"}, SECURITY, 4625, "TargetUserName", "administrator", "administrator"),
    ({"service": "security"}, SECURITY, 4625, "IpAddress", "203.0.113.7", "203.0.113.7"),
    ({"service": "security"}, SECURITY, 4624, "AuthenticationPackageName", "NTLM", "NTLM"),
    ({"service": "security"}, SECURITY, 5145, "RelativeTargetName", "svcctl", "svcctl"),
    ({"service": "security"}, SECURITY, 5145, "AccessList", "%%1538\r\n\t\t\t\t%%4417\r\n", "%%4417"),
    ({"service": "security"}, SECURITY, 5145, "AccessList", "%%1538\r\n\t\t\t\t%%4417\r\n", "WriteData"),
    ({"service": "system"}, SYSTEM, 7045, "ServiceName", "PSEXESVC", "PSEXESVC"),
    ({"service": "system"}, SYSTEM, 7045, "ImagePath", "%COMSPEC% /c echo x > \\\\.\\pipe\\x", "\\\\.\\pipe\\"),
    ({"service": "system"}, SYSTEM, 7045, "Provider_Name", "", "Service Control Manager"),
    (
        {"service": "windefend"},
        DEFENDER,
        5007,
        "New Value",
        "HKLM\\SOFTWARE\\Microsoft\\Windows Defender\\Exclusions\\Paths\\C:\\x = 0x0",
        "\\Exclusions\\",
    ),
    ({"service": "sysmon"}, SYSMON, 1, "Channel", "", "Microsoft-Windows-Sysmon/Operational"),
    # SigmaHQ's `Data` is all of an event's unnamed items: ESENT writes the database path fifth
    ({"service": "application"}, APPLICATION, 325, "Data", "C:\\ifm\\Active Directory\\ntds.dit", "\\ntds.dit"),
    # the channels only province rules name (mappings/windows.yml)
    ({"service": "rdpcorets"}, RDPCORETS, 131, "ClientIP", "127.0.0.1:50934", "127.0.0.1:"),
    ({"service": "rdpcorets"}, RDPCORETS, 148, "ChannelName", "ms_t120", "MS_T120"),
    ({"service": "terminalservices-remoteconnectionmanager"}, RCM, 1149, "Param3", "127.0.0.1", "127.0.0.1"),
    ({"service": "winrm"}, WINRM, 91, "resourceUri", "http://schemas.microsoft.com/powershell/x", "/powershell/"),
    ({"service": "winsock-ws2help"}, WS2HELP, 1, "LSPName", "PROXYCAP LSP", "PROXYCAP LSP"),
    ({"service": "winsock-ws2help"}, WS2HELP, 1, "Installer", "C:\\Windows\\System32\\MsiExec.exe", "\\MsiExec.exe"),
    ({"service": "program-compatibility-assistant"}, PCA, 17, "ExePath", "C:\\Users\\bob\\Downloads\\x.cpl", ".cpl"),
    (
        {"service": "program-compatibility-assistant"},
        PCA,
        17,
        "ResolverName",
        "ControlPanelApplet",
        "ControlPanelApplet",
    ),
    ({"service": "security"}, SECURITY, 4625, "Computer", "", "FS01.agency.local"),
]


def _rule(logsource: dict, field: str, value: object, event_id: int) -> dict:
    op = "" if isinstance(value, int) or not isinstance(value, str) else "|contains"
    return {
        "title": f"t {field}",
        "id": "00000000-0000-4000-8000-000000000001",
        "status": "test",
        "level": "medium",
        "logsource": {"product": "windows", **logsource},
        "detection": {"sel": {"EventID": event_id, f"{field}{op}": value}, "condition": "sel"},
    }


def _engine(tmp_path, doc: dict) -> Engine:
    return engine_of(tmp_path, doc)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[2]}-{c[3]}")
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_field_matches_its_raw_value(tmp_path, case, shape: str) -> None:
    logsource, (channel, provider), eid, field, raw, rule_value = case
    data = {field: raw} if raw else {"Image": "C:\\x.exe"}
    engine = _engine(tmp_path, _rule(logsource, field, rule_value, eid))
    hit = parse_line(SHAPES[shape](channel, provider, eid, data), timezone="UTC")
    assert engine.matching_rules(hit), f"{field} did not match {raw!r}"
    if raw:
        miss = parse_line(SHAPES[shape](channel, provider, eid, {field: "zzz-other"}), timezone="UTC")
        assert not engine.matching_rules(miss)
    other = SECURITY if channel != "Security" else SYSMON
    elsewhere = parse_line(SHAPES[shape](*other, 9999, data), timezone="UTC")
    assert not engine.matching_rules(elsewhere), "a rule must not see another channel's events"


def test_resolver_keeps_raw_names_and_ecs_names() -> None:
    m = load_mappings()
    r = m.resolver({"product": "windows", "category": "process_creation"})
    assert r("Image") == ("winlog.event_data.Image", "winlog.event_data.NewProcessName")
    assert r("CommandLine") == ("winlog.event_data.CommandLine", "winlog.user_data.CommandLine")
    assert r("EventID") == ("event.code",)
    assert r("process.executable") == ("process.executable",)  # dotted: already an event field
    linux = m.resolver({"product": "linux", "category": "process_creation"})
    assert linux("Image") == ("process.executable",)


@pytest.mark.parametrize(
    ("channel", "eid", "logsource"),
    [
        (
            "Microsoft-Windows-Sysmon/Operational",
            1,
            {"product": "windows", "category": "process_creation", "service": "sysmon"},
        ),
        ("Security", 4688, {"product": "windows", "category": "process_creation", "service": "security"}),
        ("Microsoft-Windows-Sysmon/Operational", 13, {"category": "registry_set"}),
        ("Microsoft-Windows-Sysmon/Operational", 13, {"category": "registry_event"}),
        ("Microsoft-Windows-PowerShell/Operational", 4104, {"service": "powershell", "category": "ps_script"}),
        ("Windows PowerShell", 400, {"service": "powershell-classic", "category": "ps_classic_start"}),
        ("Microsoft-Windows-Windows Defender/Operational", 5001, {"service": "windefend"}),
        ("System", 7045, {"service": "system"}),
        ("Application", 1000, {"service": "application"}),
        ("Microsoft-Windows-TaskScheduler/Operational", 106, {"service": "taskscheduler"}),
        ("Microsoft-Windows-RemoteDesktopServices-RdpCoreTS/Operational", 131, {"service": "rdpcorets"}),
        (
            "Microsoft-Windows-TerminalServices-RemoteConnectionManager/Operational",
            1149,
            {"service": "terminalservices-remoteconnectionmanager"},
        ),
        (
            "Microsoft-Windows-TerminalServices-LocalSessionManager/Operational",
            21,
            {"service": "terminalservices-localsessionmanager"},
        ),
        ("Microsoft-Windows-WinRM/Operational", 91, {"service": "winrm"}),
        ("Microsoft-Windows-Winsock-WS2HELP/Operational", 1, {"service": "winsock-ws2help"}),
        (
            "Microsoft-Windows-Application-Experience/Program-Compatibility-Assistant",
            17,
            {"service": "program-compatibility-assistant"},
        ),
    ],
)
def test_logsource_derivation(channel: str, eid: int, logsource: dict) -> None:
    ev = parse_line(SHAPES["nxlog"](channel, "P", eid, {"a": "b"}), timezone="UTC")
    ls = load_mappings().derive(ev)
    assert ls.admits({"product": "windows", **logsource}), (ls, logsource)
    assert not ls.admits({"product": "linux"})


def test_linux_events_are_not_windows() -> None:
    ev = parse_line("Nov 27 10:00:01 web1 sshd[311]: Failed password for root from 203.0.113.9 port 4022 ssh2")
    ls = load_mappings().derive(ev)
    assert ls.admits({"product": "linux"}) and not ls.admits({"product": "windows"})


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize(
    ("sigma", "raw", "value"),
    [
        ("NewValue", "New Value", "HKLM\\SOFTWARE\\Microsoft\\Windows Defender\\Exclusions\\Paths\\C:\\x = 0x0"),
        ("OldValue", "Old Value", "HKLM\\SOFTWARE\\Microsoft\\Windows Defender\\Exclusions\\Paths\\C:\\x = 0x0"),
        ("ProcessName", "Process Name", "C:\\Windows\\explorer.exe"),
    ],
)
def test_defender_names_with_spaces(tmp_path, shape: str, sigma: str, raw: str, value: str) -> None:
    engine = _engine(tmp_path, _rule({"service": "windefend"}, sigma, value[-12:], 5007))
    hit = parse_line(SHAPES[shape](*DEFENDER, 5007, {raw: value}), timezone="UTC")
    assert engine.matching_rules(hit)
    miss = parse_line(SHAPES[shape](*DEFENDER, 5007, {raw: "other"}), timezone="UTC")
    assert not engine.matching_rules(miss)


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize(
    ("field", "rule_value", "data", "matches"),
    [
        ("IntegrityLevel", "High", {"MandatoryLabel": "S-1-16-12288"}, True),
        ("IntegrityLevel", "S-1-16-12288", {"MandatoryLabel": "S-1-16-12288"}, True),  # SigmaHQ lists SIDs too
        ("IntegrityLevel", "System", {"MandatoryLabel": "S-1-16-8192"}, False),
        ("User", "NT AUTHORITY\\SYSTEM", {"SubjectUserSid": "S-1-5-18", "SubjectUserName": "SRV01$"}, True),
        ("User", "AGENCY\\bob", {"SubjectUserName": "bob", "SubjectDomainName": "AGENCY"}, True),
        # 4688 v2: the new process runs as another account than its creator's
        (
            "User",
            "AGENCY\\svc_sql",
            {
                "SubjectUserName": "bob",
                "SubjectDomainName": "AGENCY",
                "TargetUserName": "svc_sql",
                "TargetDomainName": "AGENCY",
            },
            True,
        ),
        (
            "User",
            "AGENCY\\bob",
            {"SubjectUserName": "bob", "SubjectDomainName": "AGENCY", "TargetUserName": "svc_sql"},
            False,
        ),
        # Sysmon's LogonId is the new process's session: the creator's, or 4688 v2's target session
        # when the process got another account's token (a DCOM server started for a remote caller)
        ("LogonId", "0x3e7", {"SubjectUserSid": "S-1-5-18", "SubjectLogonId": "0x3e7"}, True),
        ("LogonId", "0x1c2f3", {"SubjectLogonId": "0x3e7", "TargetUserName": "bob", "TargetLogonId": "0x1c2f3"}, True),
        ("LogonId", "0x3e7", {"SubjectLogonId": "0x3e7", "TargetUserName": "bob", "TargetLogonId": "0x1c2f3"}, False),
        ("LogonId", "0x4d2", {"SubjectLogonId": "0x4d2", "TargetUserName": "-", "TargetLogonId": "0x0"}, True),
    ],
)
def test_security_4688_integrity_and_user_in_sysmon_terms(tmp_path, shape, field, rule_value, data, matches) -> None:
    engine = _engine(tmp_path, _rule({"category": "process_creation"}, field, rule_value, 4688))
    event = {"NewProcessName": "C:\\Windows\\System32\\cmd.exe", **data}
    hit = parse_line(SHAPES[shape](*SECURITY, 4688, event), timezone="UTC")
    assert bool(engine.matching_rules(hit)) is matches, (field, rule_value, data)


SHARED_RULES = Path(__file__).resolve().parents[2].parent / "shared" / "sigma" / "rules-windows"
SIGMAHQ_WMIPRVSE = SHARED_RULES / "process_creation" / "proc_creation_win_wmiprvse_spawning_process.yml"


@pytest.mark.skipif(not SIGMAHQ_WMIPRVSE.is_file(), reason="needs ../shared/sigma/rules-windows")
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_sigmahq_rule_on_logon_id_works_on_4688(shape: str) -> None:
    """SigmaHQ's 'WmiPrvSE Spawned A Process' drops events whose LogonId is absent (`LogonId: null`):
    without the 4688 session rendered as LogonId it could never fire where only 4688 is logged."""
    from detectors.sigma import load_rules

    engine = Engine(load_rules([str(SIGMAHQ_WMIPRVSE)]).rules)
    child = {
        "NewProcessName": "C:\\Windows\\System32\\cmd.exe",
        "ParentProcessName": "C:\\Windows\\System32\\wbem\\WmiPrvSE.exe",
        "CommandLine": "cmd.exe /c whoami",
        "SubjectUserName": "bob",
        "SubjectDomainName": "AGENCY",
        "SubjectUserSid": "S-1-5-21-1-2-3-1104",
        "SubjectLogonId": "0x5c1e2",
    }
    assert engine.matching_rules(parse_line(SHAPES[shape](*SECURITY, 4688, child), timezone="UTC"))
    system = {**child, "SubjectUserName": "SRV01$", "SubjectUserSid": "S-1-5-18", "SubjectLogonId": "0x3e7"}
    assert not engine.matching_rules(parse_line(SHAPES[shape](*SECURITY, 4688, system), timezone="UTC"))
