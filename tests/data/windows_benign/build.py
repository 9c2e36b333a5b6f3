"""Writes the benign Windows corpus (`*.jsonl` beside this file): WRITTEN BY US, not recorded.

No benign Windows event log with a licence we may use could be fetched from the registries this
project reaches (README, Windows section), so this is our own construction of an ordinary admin day
on six servers of an agency, as NXLog CE (`im_msvistalog` + `to_json()`) forwards them: routine
logons, Kerberos, SYSVOL reads, service state changes, Windows Update, Defender signature updates,
the SCCM client, GPO refresh, Server Manager, an administrator's RDP session from the jump host,
Veeam backup jobs, scheduled maintenance tasks, IIS application pool recycles and SQL Agent jobs.
Every command line is the documented or usual one of the product named. What an analyst should be
told about (an admin running PsExec, a new service from a user folder, a log cleared) is NOT in it:
this corpus is what must stay quiet.

Each host's day is split by time: events before 12:00 UTC are the **tune** half (province rules
that fire there are narrowed), events from 12:00 the **report** half (the figures in README and the
ceiling in tests/unit/test_windows_benign.py). The afternoon runs other jobs, users, task names and
updates than the morning, but it is written from the same kind of knowledge by the same people.

Run `python tests/data/windows_benign/build.py` after editing; the test checks the files match.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DAY = "2026-11-17"  # a Tuesday (Patch Tuesday)
DOMAIN = "AGENCY"
FQDN = "agency.local"
JUMP_IP = "10.20.0.15"  # the admins' jump host (ADM01)
SYSTEM_SID = "S-1-5-18"

SYSMON = ("Microsoft-Windows-Sysmon", "Microsoft-Windows-Sysmon/Operational")
SECURITY = ("Microsoft-Windows-Security-Auditing", "Security")
SCM = ("Service Control Manager", "System")


class Host:
    def __init__(self, name: str, ip: str, seed: int) -> None:
        self.name = f"{name}.{FQDN}"
        self.short = name
        self.ip = ip
        self.rng = random.Random(seed)
        self.record = 100_000 + seed * 7919
        self.pid = 3000
        self.events: list[tuple[str, dict[str, Any]]] = []

    def _base(self, t: str, provider: tuple[str, str], event_id: int) -> dict[str, Any]:
        self.record += 1
        return {
            "EventTime": f"{DAY} {t}",
            "Hostname": self.name,
            "Keywords": -9223372036854775808,
            "EventType": "INFO",
            "SeverityValue": 2,
            "Severity": "INFO",
            "EventID": event_id,
            "SourceName": provider[0],
            "Channel": provider[1],
            "RecordNumber": self.record,
            "ProcessID": 4 if provider == SECURITY else 2200,
            "ThreadID": 3100,
            "EventReceivedTime": f"{DAY} {t}",
            "SourceModuleName": "eventlog",
            "SourceModuleType": "im_msvistalog",
        }

    def emit(self, t: str, provider: tuple[str, str], event_id: int, **data: Any) -> None:
        doc = self._base(t, provider, event_id)
        doc.update({k: str(v) for k, v in data.items()})
        self.events.append((t, doc))

    def guid(self) -> str:
        return f"{{{self.rng.getrandbits(32):08x}-{0x6E3A:04x}-{0x1:04x}-0000-{self.rng.getrandbits(48):012x}}}"

    # --- process creation, in both shapes agencies run (Sysmon 1 and Security 4688) ---
    def process(
        self,
        t: str,
        image: str,
        cmd: str,
        parent: str,
        parent_cmd: str,
        user: str = "NT AUTHORITY\\SYSTEM",
        integrity: str = "System",
        cwd: str = "C:\\Windows\\system32\\",
        company: str = "Microsoft Corporation",
    ) -> None:
        self.pid += self.rng.randint(4, 60)
        name = image.rsplit("\\", 1)[-1]
        self.emit(
            t,
            SYSMON,
            1,
            RuleName="-",
            UtcTime=f"{DAY} {t}.{self.rng.randint(0, 999):03d}",
            ProcessGuid=self.guid(),
            ProcessId=self.pid,
            Image=image,
            FileVersion="10.0.20348.1",
            Description=name.rsplit(".", 1)[0],
            Product="Microsoft® Windows® Operating System" if company.startswith("Microsoft") else name,
            Company=company,
            OriginalFileName=name.upper() if name.islower() else name,
            CommandLine=cmd,
            CurrentDirectory=cwd,
            User=user,
            LogonGuid=self.guid(),
            LogonId="0x3e7" if user.endswith("SYSTEM") else "0x5c1f2a",
            TerminalSessionId=0 if user.endswith("SYSTEM") else 2,
            IntegrityLevel=integrity,
            Hashes=f"SHA256={self.rng.getrandbits(256):064X}",
            ParentProcessGuid=self.guid(),
            ParentProcessId=self.pid - 3,
            ParentImage=parent,
            ParentCommandLine=parent_cmd,
            ParentUser="NT AUTHORITY\\SYSTEM" if user.endswith("SYSTEM") else user,
        )
        acct = user.partition("\\")[2]
        system = user.endswith("SYSTEM")
        self.emit(
            t,
            SECURITY,
            4688,
            SubjectUserSid=SYSTEM_SID if system else "S-1-5-21-3623811015-3361044348-30300820-1105",
            SubjectUserName=f"{self.short}$" if system else acct,
            SubjectDomainName=DOMAIN,
            SubjectLogonId="0x3e7" if system else "0x5c1f2a",
            NewProcessId=hex(self.pid),
            NewProcessName=image,
            TokenElevationType="%%1936" if integrity in ("System", "High") else "%%1938",
            ProcessId=hex(self.pid - 3),
            CommandLine=cmd,
            TargetUserSid="S-1-0-0",
            TargetUserName="-",
            TargetDomainName="-",
            TargetLogonId="0x0",
            ParentProcessName=parent,
            MandatoryLabel={"System": "S-1-16-16384", "High": "S-1-16-12288"}.get(integrity, "S-1-16-8192"),
        )

    def logon(self, t: str, user: str, logon_type: int, ip: str = "-", package: str = "Kerberos", sid: str = "") -> str:
        lid = f"0x{self.rng.getrandbits(28):x}"
        self.emit(
            t,
            SECURITY,
            4624,
            SubjectUserSid=SYSTEM_SID if logon_type in (2, 5, 10) else "S-1-0-0",
            SubjectUserName=f"{self.short}$" if logon_type in (2, 5, 10) else "-",
            SubjectDomainName=DOMAIN if logon_type in (2, 5, 10) else "-",
            SubjectLogonId="0x3e7" if logon_type in (2, 5, 10) else "0x0",
            TargetUserSid=sid or f"S-1-5-21-3623811015-3361044348-30300820-{1100 + len(user)}",
            TargetUserName=user,
            TargetDomainName="NT AUTHORITY" if user in ("SYSTEM", "LOCAL SERVICE", "NETWORK SERVICE") else DOMAIN,
            TargetLogonId=lid,
            LogonType=logon_type,
            LogonProcessName={3: "Kerberos", 5: "Advapi  ", 10: "User32 ", 2: "User32 "}.get(logon_type, "Kerberos"),
            AuthenticationPackageName={5: "Negotiate", 10: "Negotiate", 2: "Negotiate"}.get(logon_type, package),
            WorkstationName=self.short if logon_type in (2, 10) else "-",
            LogonGuid=self.guid(),
            TransmittedServices="-",
            LmPackageName="NTLM V2" if package == "NTLM" else "-",
            KeyLength=128 if package == "NTLM" else 0,
            ProcessId="0x2c4" if logon_type != 3 else "0x0",
            ProcessName="C:\\Windows\\System32\\services.exe"
            if logon_type == 5
            else "C:\\Windows\\System32\\svchost.exe"
            if logon_type == 10
            else "-",
            IpAddress=ip,
            IpPort=str(self.rng.randint(49152, 65000)) if ip != "-" else "-",
            ImpersonationLevel="%%1833",
            RestrictedAdminMode="-" if logon_type != 10 else "%%1843",
            VirtualAccount="%%1843",
            ElevatedToken="%%1842" if user.startswith("adm-") or user == "SYSTEM" else "%%1843",
        )
        if logon_type == 3:
            self.emit(
                t,
                SECURITY,
                4634,
                TargetUserSid=f"S-1-5-21-3623811015-3361044348-30300820-{1100 + len(user)}",
                TargetUserName=user,
                TargetDomainName=DOMAIN,
                TargetLogonId=lid,
                LogonType=3,
            )
        return lid

    def service_state(self, t: str, name: str, state: str) -> None:
        self.emit(t, SCM, 7036, param1=name, param2=state, Binary="")

    def dns(self, t: str, image: str, query: str, result: str) -> None:
        self.emit(
            t,
            SYSMON,
            22,
            RuleName="-",
            UtcTime=f"{DAY} {t}.100",
            ProcessGuid=self.guid(),
            ProcessId=self.rng.randint(800, 9000),
            QueryName=query,
            QueryStatus=0,
            QueryResults=f"::ffff:{result};",
            Image=image,
            User="NT AUTHORITY\\SYSTEM",
        )

    def net(
        self, t: str, image: str, dst_ip: str, dst_port: int, dst_host: str, user: str = "NT AUTHORITY\\SYSTEM"
    ) -> None:
        self.emit(
            t,
            SYSMON,
            3,
            RuleName="-",
            UtcTime=f"{DAY} {t}.200",
            ProcessGuid=self.guid(),
            ProcessId=self.rng.randint(800, 9000),
            Image=image,
            User=user,
            Protocol="tcp",
            Initiated="true",
            SourceIsIpv6="false",
            SourceIp=self.ip,
            SourceHostname=self.name,
            SourcePort=self.rng.randint(49152, 65000),
            SourcePortName="-",
            DestinationIsIpv6="false",
            DestinationIp=dst_ip,
            DestinationHostname=dst_host,
            DestinationPort=dst_port,
            DestinationPortName="-",
        )

    def file_created(self, t: str, image: str, path: str, user: str = "NT AUTHORITY\\SYSTEM") -> None:
        self.emit(
            t,
            SYSMON,
            11,
            RuleName="-",
            UtcTime=f"{DAY} {t}.300",
            ProcessGuid=self.guid(),
            ProcessId=self.rng.randint(800, 9000),
            Image=image,
            TargetFilename=path,
            CreationUtcTime=f"{DAY} {t}.300",
            User=user,
        )

    def registry_set(self, t: str, image: str, key: str, details: str) -> None:
        self.emit(
            t,
            SYSMON,
            13,
            RuleName="-",
            EventType="SetValue",
            UtcTime=f"{DAY} {t}.400",
            ProcessGuid=self.guid(),
            ProcessId=self.rng.randint(800, 9000),
            Image=image,
            TargetObject=key,
            Details=details,
            User="NT AUTHORITY\\SYSTEM",
        )

    def share(self, t: str, user: str, ip: str, share: str, target: str) -> None:
        self.emit(
            t,
            SECURITY,
            5145,
            SubjectUserSid=f"S-1-5-21-3623811015-3361044348-30300820-{1100 + len(user)}",
            SubjectUserName=user,
            SubjectDomainName=DOMAIN,
            SubjectLogonId=f"0x{self.rng.getrandbits(24):x}",
            ObjectType="File",
            IpAddress=ip,
            IpPort=self.rng.randint(49152, 65000),
            ShareName=f"\\\\*\\{share}",
            ShareLocalPath="\\??\\C:\\Windows\\SYSVOL\\sysvol" if share == "SYSVOL" else f"\\??\\D:\\Shares\\{share}",
            RelativeTargetName=target,
            AccessMask="0x120089",
            AccessList="%%1538 %%1541 %%4416 %%4419 %%4423 ",
            AccessReason="-",
        )

    def ps_block(self, t: str, text: str, path: str = "") -> None:
        self.emit(
            t,
            ("Microsoft-Windows-PowerShell", "Microsoft-Windows-PowerShell/Operational"),
            4104,
            MessageNumber=1,
            MessageTotal=1,
            ScriptBlockText=text,
            ScriptBlockId=self.guid().strip("{}"),
            Path=path,
        )


def ts(h: int, m: int, s: int = 0) -> str:
    return f"{h:02d}:{m:02d}:{s:02d}"


SVCHOST = "C:\\Windows\\System32\\svchost.exe"
SERVICES = "C:\\Windows\\System32\\services.exe"
TASKENG = "C:\\Windows\\System32\\svchost.exe"
TASK_PARENT_CMD = "C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s Schedule"
PS = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
CMD = "C:\\Windows\\System32\\cmd.exe"
CCM = "C:\\Windows\\CCM\\CcmExec.exe"
MPCMD = "C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\4.18.24090.11-0\\MpCmdRun.exe"
MSMPENG = "C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\4.18.24090.11-0\\MsMpEng.exe"


def routine(h: Host, dc_ip: str, half: str) -> None:
    """What every member server does all day: machine logons to the DC, GPO refresh, Defender and
    Windows Update checks, the SCCM client's evaluations, DNS, maintenance tasks."""
    for hour in range(24):
        if (hour < 12) != (half == "tune"):
            continue
        m = h.rng.randint(0, 9)
        h.logon(ts(hour, m, 5), f"{h.short}$", 3, dc_ip)
        h.share(
            ts(hour, m, 6),
            f"{h.short}$",
            h.ip,
            "SYSVOL",
            f"{FQDN}\\Policies\\{{31B2F340-016D-11D2-945F-00C04FB984F9}}\\gpt.ini",
        )
        h.dns(ts(hour, m + 1), SVCHOST, f"dc01.{FQDN}", dc_ip)
        h.net(ts(hour, m + 1, 2), "C:\\Windows\\System32\\lsass.exe", dc_ip, 88, f"dc01.{FQDN}")
        h.service_state(ts(hour, m + 2), "Windows Modules Installer", "running" if hour % 2 else "stopped")
        # SCCM client: machine policy retrieval and evaluation every hour
        h.net(ts(hour, 15), CCM, "10.20.1.30", 443, f"sccm01.{FQDN}")
        h.process(
            ts(hour, 15, 20),
            "C:\\Windows\\CCM\\CcmEval.exe",
            '"C:\\Windows\\CCM\\CcmEval.exe"',
            CCM,
            '"C:\\Windows\\CCM\\CcmExec.exe"',
            cwd="C:\\Windows\\CCM\\",
        )
        # Defender: hourly signature check
        h.process(
            ts(hour, 30),
            MPCMD,
            f'"{MPCMD}" SignaturesUpdateService -ScheduleJob -UnmanagedUpdate',
            SVCHOST,
            "C:\\Windows\\system32\\svchost.exe -k netsvcs -p",
        )
        h.dns(ts(hour, 30, 5), MPCMD, "definitionupdates.microsoft.com", "13.107.4.50")
        h.net(ts(hour, 30, 6), MPCMD, "13.107.4.50", 443, "definitionupdates.microsoft.com")
        if hour % 4 == 1:
            h.emit(
                ts(hour, 31),
                ("Microsoft-Windows-Windows Defender", "Microsoft-Windows-Windows Defender/Operational"),
                2000,
                **{
                    "Product Name": "Microsoft Defender Antivirus",
                    "Product Version": "4.18.24090.11",
                    "Current security intelligence Version": f"1.421.{400 + hour}.0",
                    "Previous security intelligence Version": f"1.421.{399 + hour}.0",
                    "Update Type": "Delta",
                    "User": "NT AUTHORITY\\SYSTEM",
                    "Current Engine Version": "1.1.24090.11",
                    "Previous Engine Version": "1.1.24090.11",
                    "Domain": "NT AUTHORITY",
                    "Signature Type": "AntiVirus",
                },
            )
            h.registry_set(
                ts(hour, 31, 2),
                MSMPENG,
                "HKLM\\SOFTWARE\\Microsoft\\Windows Defender\\Signature Updates\\AVSignatureVersion",
                f"1.421.{400 + hour}.0",
            )
        # GPO background refresh (90 min +- 30)
        if hour % 2 == 0:
            h.process(
                ts(hour, 40),
                "C:\\Windows\\System32\\gpscript.exe",
                "gpscript.exe /RefreshSystemParam",
                SVCHOST,
                "C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s gpsvc",
            )
            h.emit(
                ts(hour, 40, 9),
                ("Microsoft-Windows-GroupPolicy", "System"),
                1502,
                SupportInfo1=1,
                SupportInfo2=633,
                ProcessingMode=0,
                ProcessingTimeInMilliseconds=1422,
                NumberOfGroupPolicyObjects=6,
                DCName=f"\\\\dc01.{FQDN}",
            )
        # Windows Update scan (UsoClient through its scheduled task)
        if hour % 6 == 3:
            h.process(
                ts(hour, 45),
                "C:\\Windows\\System32\\usoclient.exe",
                "C:\\Windows\\system32\\usoclient.exe StartScan",
                TASKENG,
                TASK_PARENT_CMD,
            )
            h.process(
                ts(hour, 45, 3),
                "C:\\Windows\\System32\\MoUsoCoreWorker.exe",
                "C:\\Windows\\System32\\mousocoreworker.exe -Embedding",
                SVCHOST,
                "C:\\Windows\\system32\\svchost.exe -k DcomLaunch -p",
            )
            h.net(ts(hour, 45, 8), SVCHOST, "10.20.1.31", 8530, f"wsus01.{FQDN}")
        # conhost under every console job, taskhostw under task runs
        h.process(ts(hour, 50), "C:\\Windows\\System32\\taskhostw.exe", "taskhostw.exe", TASKENG, TASK_PARENT_CMD)


def morning_maintenance(h: Host) -> None:
    h.process(
        ts(3, 0),
        "C:\\Windows\\System32\\defrag.exe",
        "C:\\Windows\\system32\\defrag.exe -c -h -o -$",
        TASKENG,
        TASK_PARENT_CMD,
    )
    h.process(
        ts(3, 5),
        "C:\\Windows\\System32\\sc.exe",
        "C:\\Windows\\system32\\sc.exe start w32time task_started",
        TASKENG,
        TASK_PARENT_CMD,
    )
    h.process(
        ts(3, 10),
        "C:\\Windows\\System32\\rundll32.exe",
        "C:\\Windows\\system32\\rundll32.exe Windows.Storage.ApplicationData.dll,CleanupTemporaryState",
        TASKENG,
        TASK_PARENT_CMD,
    )
    h.process(
        ts(3, 20),
        "C:\\Windows\\System32\\CompatTelRunner.exe",
        "C:\\Windows\\system32\\compattelrunner.exe",
        TASKENG,
        TASK_PARENT_CMD,
    )
    h.process(
        ts(4, 0), MPCMD, f'"{MPCMD}" Scan -ScheduleJob -ScanTrigger 55 -IdleScheduledJob', TASKENG, TASK_PARENT_CMD
    )
    h.process(
        ts(4, 30),
        "C:\\Windows\\System32\\cleanmgr.exe",
        "C:\\Windows\\system32\\cleanmgr.exe /autoclean /d C:",
        TASKENG,
        TASK_PARENT_CMD,
    )


def afternoon_maintenance(h: Host) -> None:
    h.process(
        ts(13, 0),
        "C:\\Windows\\System32\\wsqmcons.exe",
        "C:\\Windows\\System32\\wsqmcons.exe",
        TASKENG,
        TASK_PARENT_CMD,
    )
    h.process(
        ts(13, 15),
        "C:\\Windows\\System32\\DiskSnapshot.exe",
        "C:\\Windows\\system32\\disksnapshot.exe -z",
        TASKENG,
        TASK_PARENT_CMD,
    )
    h.process(ts(13, 20), MPCMD, f'"{MPCMD}" -IdleTask -TaskName WdCacheMaintenance', TASKENG, TASK_PARENT_CMD)
    h.process(ts(13, 21), MPCMD, f'"{MPCMD}" -IdleTask -TaskName WdVerification', TASKENG, TASK_PARENT_CMD)
    h.process(
        ts(16, 0),
        "C:\\Windows\\System32\\sc.exe",
        "C:\\Windows\\system32\\sc.exe start pushtoinstall registration",
        TASKENG,
        TASK_PARENT_CMD,
    )
    h.process(
        ts(17, 2),
        "C:\\Windows\\System32\\lpremove.exe",
        "C:\\Windows\\system32\\lpremove.exe",
        TASKENG,
        TASK_PARENT_CMD,
    )


def patch_install(h: Host, kb: str, start: int) -> None:
    """Patch Tuesday's cumulative update through SCCM: TiWorker, TrustedInstaller, a reboot request."""
    h.process(
        ts(start, 5),
        "C:\\Windows\\System32\\wusa.exe",
        f"C:\\Windows\\system32\\wusa.exe C:\\Windows\\ccmcache\\2f\\windows10.0-{kb.lower()}-x64.msu /quiet /norestart",
        CCM,
        '"C:\\Windows\\CCM\\CcmExec.exe"',
        cwd="C:\\Windows\\ccmcache\\2f\\",
    )
    h.process(
        ts(start, 6),
        "C:\\Windows\\servicing\\TrustedInstaller.exe",
        "C:\\Windows\\servicing\\TrustedInstaller.exe",
        SERVICES,
        "C:\\Windows\\system32\\services.exe",
    )
    h.process(
        ts(start, 6, 30),
        "C:\\Windows\\WinSxS\\amd64_microsoft-windows-servicingstack_31bf3856ad364e35_10.0.20348.2700_none_7a0c7c1b9e4f2f2a\\TiWorker.exe",
        "C:\\Windows\\winsxs\\amd64_microsoft-windows-servicingstack_31bf3856ad364e35_10.0.20348.2700_none_7a0c7c1b9e4f2f2a\\TiWorker.exe -Embedding",
        SVCHOST,
        "C:\\Windows\\system32\\svchost.exe -k DcomLaunch -p",
    )
    h.service_state(ts(start, 6, 1), "Windows Modules Installer", "running")
    h.emit(
        ts(start, 40),
        ("Microsoft-Windows-WindowsUpdateClient", "System"),
        19,
        updateTitle=f"2026-11 Cumulative Update for Microsoft server operating system version 21H2 for x64-based Systems ({kb})",
        updateGuid=h.guid(),
        updateRevisionNumber=1,
    )
    h.emit(
        ts(start, 41),
        ("User32", "System"),
        1074,
        param1="C:\\Windows\\CCM\\CcmExec.exe",
        param2=h.short,
        param3="Operating System: Upgrade (Planned)",
        param4="0x80020003",
        param5="restart",
        param6="",
        param7="NT AUTHORITY\\SYSTEM",
    )


def rdp_session(h: Host, admin: str, start: int, work: list[tuple[str, str, str, str]]) -> None:
    """An administrator's RDP session from the jump host, with the tools they open."""
    h.logon(ts(start, 0, 1), admin, 3, JUMP_IP, package="Kerberos")
    h.logon(ts(start, 0, 3), admin, 10, JUMP_IP)
    h.emit(
        ts(start, 0, 3),
        SECURITY,
        4672,
        SubjectUserSid="S-1-5-21-3623811015-3361044348-30300820-1190",
        SubjectUserName=admin,
        SubjectDomainName=DOMAIN,
        SubjectLogonId="0x5c1f2a",
        PrivilegeList="SeSecurityPrivilege\n\t\t\tSeBackupPrivilege\n\t\t\tSeRestorePrivilege\n\t\t\tSeTakeOwnershipPrivilege\n\t\t\tSeDebugPrivilege\n\t\t\tSeSystemEnvironmentPrivilege\n\t\t\tSeLoadDriverPrivilege\n\t\t\tSeImpersonatePrivilege",
    )
    h.emit(
        ts(start, 0, 4),
        (
            "Microsoft-Windows-TerminalServices-LocalSessionManager",
            "Microsoft-Windows-TerminalServices-LocalSessionManager/Operational",
        ),
        21,
        User=f"{DOMAIN}\\{admin}",
        SessionID=2,
        Address=JUMP_IP,
    )
    user = f"{DOMAIN}\\{admin}"
    h.process(
        ts(start, 0, 5),
        "C:\\Windows\\System32\\rdpclip.exe",
        "rdpclip",
        SVCHOST,
        "C:\\Windows\\System32\\svchost.exe -k termsvcs -s TermService",
        user=user,
        integrity="High",
    )
    h.process(
        ts(start, 0, 6),
        "C:\\Windows\\System32\\userinit.exe",
        "C:\\Windows\\system32\\userinit.exe",
        "C:\\Windows\\System32\\winlogon.exe",
        "winlogon.exe",
        user=user,
        integrity="High",
    )
    h.process(
        ts(start, 0, 7),
        "C:\\Windows\\explorer.exe",
        "C:\\Windows\\Explorer.EXE",
        "C:\\Windows\\System32\\userinit.exe",
        "C:\\Windows\\system32\\userinit.exe",
        user=user,
        integrity="High",
        cwd="C:\\Windows\\system32\\",
    )
    h.process(
        ts(start, 0, 20),
        "C:\\Windows\\System32\\ServerManager.exe",
        '"C:\\Windows\\system32\\ServerManager.exe"',
        "C:\\Windows\\explorer.exe",
        "C:\\Windows\\Explorer.EXE",
        user=user,
        integrity="High",
    )
    for i, (image, cmd, parent, parent_cmd) in enumerate(work):
        h.process(
            ts(start, 2 + 3 * i),
            image,
            cmd,
            parent,
            parent_cmd,
            user=user,
            integrity="High",
            cwd=f"C:\\Users\\{admin}\\",
        )
    h.emit(
        ts(start, 50),
        (
            "Microsoft-Windows-TerminalServices-LocalSessionManager",
            "Microsoft-Windows-TerminalServices-LocalSessionManager/Operational",
        ),
        24,
        User=f"{DOMAIN}\\{admin}",
        SessionID=2,
        Address=JUMP_IP,
    )
    h.emit(
        ts(start, 55),
        SECURITY,
        4647,
        TargetUserSid="S-1-5-21-3623811015-3361044348-30300820-1190",
        TargetUserName=admin,
        TargetDomainName=DOMAIN,
        TargetLogonId="0x5c1f2a",
    )


def troubleshoot(h: Host, admin: str, start: int, commands: list[str]) -> None:
    """An administrator's console checks in an RDP session: the ordinary discovery an admin does."""
    user = f"{DOMAIN}\\{admin}"
    parent = '"C:\\Windows\\system32\\cmd.exe"'
    h.process(ts(start, 30), CMD, parent, *EXPLORER, user=user, integrity="High", cwd=f"C:\\Users\\{admin}\\")
    for i, cmd in enumerate(commands):
        exe = cmd.split()[0]
        image = f"C:\\Windows\\System32\\{exe if exe.endswith('.exe') else exe + '.exe'}"
        h.process(
            ts(start, 31 + i // 3, (i % 3) * 17),
            image,
            cmd,
            CMD,
            parent,
            user=user,
            integrity="High",
            cwd=f"C:\\Users\\{admin}\\",
        )


def remote_powershell(h: Host, admin: str, start: int, blocks: list[str]) -> None:
    """PowerShell remoting (Enter-PSSession / Invoke-Command) from the jump host: WinRM's host process."""
    h.logon(ts(start, 0), admin, 3, JUMP_IP)
    h.process(
        ts(start, 0, 2),
        "C:\\Windows\\System32\\wsmprovhost.exe",
        "C:\\Windows\\system32\\wsmprovhost.exe -Embedding",
        SVCHOST,
        "C:\\Windows\\system32\\svchost.exe -k DcomLaunch -p",
        user=f"{DOMAIN}\\{admin}",
        integrity="High",
    )
    for i, text in enumerate(blocks):
        h.ps_block(ts(start, 1 + i), text)


def pushed_service(
    h: Host, t: tuple[int, int], account: str, src_ip: str, share_file: str, name: str, image: str
) -> None:
    """A management product installing its agent service remotely: the file over ADMIN$, then the
    service (System 7045, Security 4697), as Veeam and SCCM client push do."""
    hour, minute = t
    h.logon(ts(hour, minute), account, 3, src_ip)
    h.emit(
        ts(hour, minute, 1),
        SECURITY,
        5145,
        SubjectUserSid="S-1-5-21-3623811015-3361044348-30300820-1300",
        SubjectUserName=account,
        SubjectDomainName=DOMAIN,
        SubjectLogonId="0x7a3b11",
        ObjectType="File",
        IpAddress=src_ip,
        IpPort=51022,
        ShareName="\\\\*\\ADMIN$",
        ShareLocalPath="\\??\\C:\\Windows",
        RelativeTargetName=share_file,
        AccessMask="0x2",
        AccessList="%%4417 ",
        AccessReason="-",
    )
    h.file_created(ts(hour, minute, 2), "System", "C:\\Windows\\" + share_file)
    h.emit(
        ts(hour, minute, 3),
        SCM,
        7045,
        ServiceName=name,
        ImagePath=image,
        ServiceType="user mode service",
        StartType="auto start",
        AccountName="LocalSystem",
    )
    h.emit(
        ts(hour, minute, 3),
        SECURITY,
        4697,
        SubjectUserSid="S-1-5-21-3623811015-3361044348-30300820-1300",
        SubjectUserName=account,
        SubjectDomainName=DOMAIN,
        SubjectLogonId="0x7a3b11",
        ServiceName=name,
        ServiceFileName=image,
        ServiceType="0x10",
        ServiceStartType="2",
        ServiceAccount="LocalSystem",
    )
    h.process(
        ts(hour, minute, 4),
        image.strip('"').split('" ')[0].split(" /")[0],
        image,
        SERVICES,
        "C:\\Windows\\system32\\services.exe",
    )
    h.service_state(ts(hour, minute, 5), name, "running")


ANSIBLE_BOOTSTRAP = (
    "&chcp.com 65001 > $null\n$exec_wrapper_str = $input | Out-String\n"
    '$split_parts = $exec_wrapper_str.Split(@("`0`0`0`0"), 2, [StringSplitOptions]::RemoveEmptyEntries)\n'
    'If (-not $split_parts.Length -eq 2) { throw "invalid payload" }\n'
    "Set-Variable -Name json_raw -Value $split_parts[1]\n$exec_wrapper = [ScriptBlock]::Create($split_parts[0])\n&$exec_wrapper"
)


def ansible_run(h: Host, account: str, controller_ip: str, start: tuple[int, int], module_text: str) -> None:
    """An Ansible controller running a module over WinRM: winrshost starts the documented bootstrap
    PowerShell (-EncodedCommand of ANSIBLE_BOOTSTRAP), whose exec wrapper decodes the module."""
    import base64

    hour, minute = start
    h.logon(ts(hour, minute), account, 3, controller_ip, package="NTLM")
    encoded = base64.b64encode(ANSIBLE_BOOTSTRAP.encode("utf-16-le")).decode()
    user = f"{DOMAIN}\\{account}"
    h.process(
        ts(hour, minute, 1),
        "C:\\Windows\\System32\\winrshost.exe",
        "C:\\Windows\\system32\\WinrsHost.exe -Embedding",
        SVCHOST,
        "C:\\Windows\\system32\\svchost.exe -k DcomLaunch -p",
        user=user,
        integrity="High",
    )
    h.process(
        ts(hour, minute, 2),
        PS,
        f"PowerShell -NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand {encoded}",
        "C:\\Windows\\System32\\winrshost.exe",
        "C:\\Windows\\system32\\WinrsHost.exe -Embedding",
        user=user,
        integrity="High",
        cwd=f"C:\\Users\\{account}\\",
    )
    h.ps_block(ts(hour, minute, 2), ANSIBLE_BOOTSTRAP)
    h.ps_block(ts(hour, minute, 3), module_text)


def remote_gpupdate(h: Host, admin: str, src_ip: str, start: tuple[int, int]) -> None:
    """GPMC's 'Group Policy Update...' (Invoke-GPUpdate) on this computer: a task created over the
    network that runs gpupdate /force with a random delay, then removed."""
    hour, minute = start
    lid = h.logon(ts(hour, minute), admin, 3, src_ip)
    name = "\\" + h.guid().upper()
    content = (
        '<?xml version="1.0" encoding="UTF-16"?><Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">'
        f"<RegistrationInfo><Author>{DOMAIN}\\{admin}</Author></RegistrationInfo><Triggers><RegistrationTrigger><RandomDelay>PT10M</RandomDelay>"
        '</RegistrationTrigger></Triggers><Principals><Principal id="Author"><GroupId>S-1-5-32-545</GroupId></Principal></Principals>'
        '<Actions Context="Author"><Exec><Command>gpupdate.exe</Command><Arguments>/force</Arguments></Exec></Actions></Task>'
    )
    sid = "S-1-5-21-3623811015-3361044348-30300820-1190"
    h.emit(
        ts(hour, minute, 1),
        SECURITY,
        4698,
        SubjectUserSid=sid,
        SubjectUserName=admin,
        SubjectDomainName=DOMAIN,
        SubjectLogonId=lid,
        TaskName=name,
        TaskContent=content,
        ClientProcessStartKey="0",
        ClientProcessId="0",
        ParentProcessId="0",
        RpcCallClientLocality="0",
        FQDN=src_ip,
    )
    h.process(
        ts(hour, minute + 4), "C:\\Windows\\System32\\gpupdate.exe", "gpupdate.exe /force", TASKENG, TASK_PARENT_CMD
    )
    h.emit(
        ts(hour, minute + 6),
        SECURITY,
        4699,
        SubjectUserSid=sid,
        SubjectUserName=admin,
        SubjectDomainName=DOMAIN,
        SubjectLogonId=lid,
        TaskName=name,
        TaskContent="",
        ClientProcessStartKey="0",
        ClientProcessId="0",
        ParentProcessId="0",
        RpcCallClientLocality="0",
        FQDN=src_ip,
    )


def ldap_inventory(h: Host, admin: str, start: tuple[int, int], script: str, text: str) -> None:
    """An administrator's inventory script querying AD over LDAP with [adsisearcher]."""
    hour, minute = start
    h.process(
        ts(hour, minute),
        PS,
        f'powershell.exe -NoProfile -File "{script}"',
        TASKENG,
        TASK_PARENT_CMD,
        user=f"{DOMAIN}\\{admin}",
        integrity="High",
    )
    h.ps_block(ts(hour, minute, 1), text, path=script)
    h.net(ts(hour, minute, 2), PS, "10.20.0.10", 389, f"dc01.{FQDN}", user=f"{DOMAIN}\\{admin}")


EXPLORER = ("C:\\Windows\\explorer.exe", "C:\\Windows\\Explorer.EXE")
MMC = "C:\\Windows\\System32\\mmc.exe"


def dc01(half: str) -> Host:
    h = Host("DC01", "10.20.0.10", 1)
    routine(h, "10.20.0.11", half)
    users = [
        "jsmith",
        "mtremblay",
        "lgagnon",
        "svc-veeam",
        "svc-sql",
        "svc-sccm",
        "FS01$",
        "APP01$",
        "SQL01$",
        "SCCM01$",
    ]
    for hour in range(24):
        if (hour < 12) != (half == "tune"):
            continue
        for i in range(12 if 7 <= hour <= 17 else 3):
            u = h.rng.choice(users)
            t = ts(hour, h.rng.randint(0, 59), h.rng.randint(0, 59))
            h.emit(
                t,
                SECURITY,
                4769,
                TargetUserName=f"{u}@{FQDN.upper()}",
                TargetDomainName=FQDN.upper(),
                ServiceName=h.rng.choice(["FS01$", "APP01$", "SQL01$", "krbtgt", "DC01$"]),
                ServiceSid="S-1-5-21-3623811015-3361044348-30300820-1001",
                TicketOptions="0x40810000",
                TicketEncryptionType="0x12",
                IpAddress=f"::ffff:10.20.{h.rng.randint(0, 3)}.{h.rng.randint(10, 200)}",
                IpPort=h.rng.randint(49152, 65000),
                Status="0x0",
                LogonGuid=h.guid(),
                TransmittedServices="-",
            )
            if i % 4 == 0:
                h.emit(
                    t,
                    SECURITY,
                    4768,
                    TargetUserName=u,
                    TargetDomainName=DOMAIN,
                    TargetSid="S-1-5-21-3623811015-3361044348-30300820-1104",
                    ServiceName="krbtgt",
                    ServiceSid="S-1-5-21-3623811015-3361044348-30300820-502",
                    TicketOptions="0x40810010",
                    Status="0x0",
                    TicketEncryptionType="0x12",
                    PreAuthType=2,
                    IpAddress=f"::ffff:10.20.{h.rng.randint(0, 3)}.{h.rng.randint(10, 200)}",
                    IpPort=0,
                    CertIssuerName="",
                    CertSerialNumber="",
                    CertThumbprint="",
                )
        # Azure AD Connect's sync account replicates directory changes every 30 minutes
        for m in (5, 35):
            h.emit(
                ts(hour, m),
                SECURITY,
                4662,
                SubjectUserSid="S-1-5-21-3623811015-3361044348-30300820-1601",
                SubjectUserName="MSOL_3f6a2c9e1b70",
                SubjectDomainName=DOMAIN,
                SubjectLogonId="0x1b2c3d",
                ObjectServer="DS",
                ObjectType="%{19195a5b-6da0-11d0-afd3-00c04fd930c9}",
                ObjectName="%{5c3a2f1e-0b7d-4a9e-8f51-3c2d1e0f9a8b}",
                OperationType="Object Access",
                HandleId="0x0",
                AccessList="%%7688",
                AccessMask="0x100",
                Properties="%%7688\n\t\t{1131f6ad-9c07-11d1-f79f-00c04fc2dcd2}\n\t{19195a5b-6da0-11d0-afd3-00c04fd930c9}",
                AdditionalInfo="-",
                AdditionalInfo2="",
            )
    if half == "tune":
        rdp_session(
            h,
            "adm-jsmith",
            9,
            [
                (MMC, '"C:\\Windows\\system32\\mmc.exe" "C:\\Windows\\system32\\dsa.msc"', *EXPLORER),
                (MMC, '"C:\\Windows\\system32\\mmc.exe" "C:\\Windows\\system32\\gpmc.msc"', *EXPLORER),
                (PS, '"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"', *EXPLORER),
                (
                    "C:\\Windows\\System32\\repadmin.exe",
                    "repadmin /replsummary",
                    PS,
                    '"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"',
                ),
                (
                    "C:\\Windows\\System32\\dcdiag.exe",
                    '"C:\\Windows\\system32\\dcdiag.exe" /q',
                    PS,
                    '"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"',
                ),
            ],
        )
        h.ps_block(
            ts(9, 8),
            "Get-ADUser -Identity mtremblay -Properties LockedOut,LastLogonDate | Select-Object Name,LockedOut,LastLogonDate",
        )
        h.ps_block(ts(9, 9), "Unlock-ADAccount -Identity mtremblay")
        morning_maintenance(h)
    else:
        rdp_session(
            h,
            "adm-lgagnon",
            14,
            [
                (MMC, '"C:\\Windows\\system32\\mmc.exe" "C:\\Windows\\system32\\dnsmgmt.msc"', *EXPLORER),
                (MMC, '"C:\\Windows\\system32\\mmc.exe" "C:\\Windows\\system32\\dhcpmgmt.msc"', *EXPLORER),
                (PS, '"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"', *EXPLORER),
                (
                    "C:\\Windows\\System32\\gpupdate.exe",
                    "gpupdate /force",
                    PS,
                    '"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"',
                ),
                (
                    "C:\\Windows\\System32\\w32tm.exe",
                    '"C:\\Windows\\system32\\w32tm.exe" /query /status',
                    PS,
                    '"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"',
                ),
            ],
        )
        h.ps_block(ts(14, 8), "Get-ADGroupMember -Identity 'GG-Finance-RW' | Select-Object Name, SamAccountName")
        h.ps_block(ts(14, 9), "Get-DnsServerZone | Where-Object { -not $_.IsAutoCreated }")
        afternoon_maintenance(h)
    return h


def fs01(half: str) -> Host:
    h = Host("FS01", "10.20.0.20", 2)
    routine(h, "10.20.0.10", half)
    staff = ["jsmith", "mtremblay", "lgagnon", "pcote", "sroy", "nbouchard", "kleblanc", "agirard"]
    for hour in range(24):
        if (hour < 12) != (half == "tune"):
            continue
        for _ in range(15 if 8 <= hour <= 16 else 1):
            u = h.rng.choice(staff)
            ip = f"10.20.3.{h.rng.randint(20, 220)}"
            t = ts(hour, h.rng.randint(0, 59), h.rng.randint(0, 59))
            h.logon(t, u, 3, ip)
            h.share(
                t,
                u,
                ip,
                h.rng.choice(["Finance", "RH", "Commun"]),
                h.rng.choice(["Budget\\2027\\previsions.xlsx", "Commun\\Procedures\\acces.docx", "Rapports\\T3.pdf"]),
            )
    if half == "tune":
        # Veeam agent backup at 01:00 (VSS snapshot, Veeam's own processes)
        h.logon(ts(1, 0), "svc-veeam", 3, "10.20.1.40", package="Kerberos")
        h.process(
            ts(1, 0, 5),
            "C:\\Program Files (x86)\\Veeam\\Backup Transport\\VeeamTransportSvc.exe",
            '"C:\\Program Files (x86)\\Veeam\\Backup Transport\\VeeamTransportSvc.exe"',
            SERVICES,
            "C:\\Windows\\system32\\services.exe",
            company="Veeam Software Group GmbH",
        )
        h.process(
            ts(1, 0, 9),
            "C:\\Program Files (x86)\\Veeam\\Backup Transport\\x64\\VeeamAgent.exe",
            '"C:\\Program Files (x86)\\Veeam\\Backup Transport\\x64\\VeeamAgent.exe" -l startup;C:\\ProgramData\\Veeam\\Backup\\Agent.FS01_Backup.Target.log -s 2 -f 1 -t 1 -e 2500:3300',
            "C:\\Program Files (x86)\\Veeam\\Backup Transport\\VeeamTransportSvc.exe",
            '"C:\\Program Files (x86)\\Veeam\\Backup Transport\\VeeamTransportSvc.exe"',
            company="Veeam Software Group GmbH",
        )
        h.process(
            ts(1, 1),
            "C:\\Windows\\System32\\VSSVC.exe",
            "C:\\Windows\\system32\\vssvc.exe",
            SERVICES,
            "C:\\Windows\\system32\\services.exe",
        )
        h.service_state(ts(1, 1, 1), "Volume Shadow Copy", "running")
        h.emit(ts(1, 1, 2), ("VSS", "Application"), 8224, param1="")
        h.service_state(ts(1, 40), "Volume Shadow Copy", "stopped")
        remote_gpupdate(h, "adm-jsmith", "10.20.0.10", (9, 40))
        rdp_session(
            h,
            "adm-jsmith",
            10,
            [(MMC, '"C:\\Windows\\system32\\mmc.exe" "C:\\Windows\\system32\\compmgmt.msc"', *EXPLORER)],
        )
        troubleshoot(
            h,
            "adm-jsmith",
            10,
            [
                "ipconfig /all",
                "whoami /groups",
                "nltest /dsgetdc:agency.local",
                "net use",
                "quser",
                "tasklist /svc",
                "netstat -ano",
                "ping -n 2 dc01",
                "nslookup fs01.agency.local",
            ],
        )
        morning_maintenance(h)
    else:
        rdp_session(
            h,
            "adm-mtremblay",
            13,
            [
                (MMC, '"C:\\Windows\\system32\\mmc.exe" "C:\\Windows\\system32\\fsmgmt.msc"', *EXPLORER),
                (
                    "C:\\Windows\\System32\\icacls.exe",
                    'icacls "D:\\Shares\\Finance\\Budget\\2027" /grant "AGENCY\\GG-Finance-RW:(OI)(CI)M"',
                    CMD,
                    '"C:\\Windows\\system32\\cmd.exe"',
                ),
                ("C:\\Windows\\System32\\net.exe", "net share", CMD, '"C:\\Windows\\system32\\cmd.exe"'),
                (
                    "C:\\Windows\\System32\\robocopy.exe",
                    'robocopy "D:\\Shares\\Commun\\Archives\\2024" "E:\\Archives\\2024" /E /COPY:DAT /R:1 /W:1 /LOG:C:\\Temp\\archives2024.log',
                    CMD,
                    '"C:\\Windows\\system32\\cmd.exe"',
                ),
            ],
        )
        ldap_inventory(
            h,
            "adm-mtremblay",
            (20, 15),
            "C:\\Scripts\\Report-StaleAccounts.ps1",
            '$cutoff = (Get-Date).AddDays(-90).ToFileTime(); $s = New-Object System.DirectoryServices.DirectorySearcher; $s.Filter = "(&(objectCategory=person)(objectClass=user)(lastLogonTimestamp<=$cutoff))"; $s.FindAll() | ForEach-Object { $_.Properties.samaccountname }',
        )
        troubleshoot(
            h,
            "adm-mtremblay",
            13,
            [
                "whoami",
                "hostname",
                "systeminfo",
                "net localgroup Administrators",
                "ipconfig /flushdns",
                "net session",
                "openfiles /query /s FS01",
                "sc query LanmanServer",
                "route print",
            ],
        )
        patch_install(h, "KB5046616", 19)
        afternoon_maintenance(h)
    return h


def app01(half: str) -> Host:
    """IIS: application pool recycles, the WAS events, an admin restarting a site."""
    h = Host("APP01", "10.20.0.30", 3)
    routine(h, "10.20.0.10", half)
    pools = (
        ["DefaultAppPool", "PortailCitoyen", "ApiPermis"]
        if half == "tune"
        else ["PortailEmployes", "ApiPermis", "Rapports"]
    )
    for hour in range(24):
        if (hour < 12) != (half == "tune"):
            continue
        if hour % 4 == 2:
            for pool in pools:
                t = ts(hour, 29)
                h.emit(t, ("Microsoft-Windows-WAS", "System"), 5074, AppPoolID=pool, ProcessID=h.pid)
                h.process(
                    t,
                    "C:\\Windows\\System32\\inetsrv\\w3wp.exe",
                    f'c:\\windows\\system32\\inetsrv\\w3wp.exe -ap "{pool}" -v "v4.0" -l "webengine4.dll" -a \\\\.\\pipe\\iisipm{h.guid().strip("{}")} -h "C:\\inetpub\\temp\\apppools\\{pool}\\{pool}.config" -w "" -m 0 -t 20 -ta 0',
                    SVCHOST,
                    "C:\\Windows\\system32\\svchost.exe -k iissvcs",
                    user=f"IIS APPPOOL\\{pool}",
                    integrity="Medium",
                    cwd="C:\\Windows\\system32\\",
                    company="Microsoft Corporation",
                )
                h.process(
                    t,
                    "C:\\Windows\\System32\\conhost.exe",
                    "\\??\\C:\\Windows\\system32\\conhost.exe 0xffffffff -ForceV1",
                    "C:\\Windows\\System32\\inetsrv\\w3wp.exe",
                    f'c:\\windows\\system32\\inetsrv\\w3wp.exe -ap "{pool}"',
                    user=f"IIS APPPOOL\\{pool}",
                    integrity="Medium",
                )
        for _ in range(4):
            h.net(
                ts(hour, h.rng.randint(0, 59)),
                "C:\\Windows\\System32\\inetsrv\\w3wp.exe",
                "10.20.0.40",
                1433,
                f"sql01.{FQDN}",
                user="IIS APPPOOL\\PortailCitoyen",
            )
    if half == "tune":
        h.process(
            ts(2, 0),
            CMD,
            'C:\\Windows\\system32\\cmd.exe /c ""D:\\Scripts\\purge-iislogs.cmd""',
            TASKENG,
            TASK_PARENT_CMD,
            cwd="D:\\Scripts\\",
        )
        ansible_run(
            h,
            "svc-ansible",
            "10.20.1.50",
            (6, 0),
            "#Requires -Module Ansible.ModuleUtils.Legacy\n$params = Parse-Args $args -supports_check_mode $true\n$name = Get-AnsibleParam -obj $params -name 'name' -type 'str' -failifempty $true\n$svc = Get-Service -Name $name\nExit-Json @{ changed = $false; state = $svc.Status.ToString() }",
        )
        remote_powershell(
            h,
            "adm-jsmith",
            9,
            [
                "Get-Service W3SVC, WAS | Select-Object Name, Status",
                "Import-Module WebAdministration; Restart-WebAppPool -Name PortailCitoyen",
                "Get-ChildItem C:\\inetpub\\logs\\LogFiles\\W3SVC1 | Sort-Object LastWriteTime | Select-Object -Last 3",
            ],
        )
        h.process(
            ts(2, 0, 1),
            "C:\\Windows\\System32\\forfiles.exe",
            'forfiles /p "C:\\inetpub\\logs\\LogFiles" /s /m *.log /d -30 /c "cmd /c del @path"',
            CMD,
            'C:\\Windows\\system32\\cmd.exe /c ""D:\\Scripts\\purge-iislogs.cmd""',
            cwd="D:\\Scripts\\",
        )
        morning_maintenance(h)
    else:
        rdp_session(
            h,
            "adm-jsmith",
            15,
            [
                (MMC, '"C:\\Windows\\system32\\mmc.exe" "C:\\Windows\\system32\\inetsrv\\inetmgr.exe"', *EXPLORER),
                (
                    "C:\\Windows\\System32\\inetsrv\\appcmd.exe",
                    'C:\\Windows\\system32\\inetsrv\\appcmd.exe recycle apppool /apppool.name:"PortailEmployes"',
                    CMD,
                    '"C:\\Windows\\system32\\cmd.exe"',
                ),
                ("C:\\Windows\\System32\\iisreset.exe", "iisreset /status", CMD, '"C:\\Windows\\system32\\cmd.exe"'),
            ],
        )
        remote_gpupdate(h, "adm-lgagnon", JUMP_IP, (12, 20))
        remote_powershell(
            h,
            "adm-lgagnon",
            17,
            [
                "Get-WebAppPoolState -Name PortailEmployes",
                "Get-EventLog -LogName System -Source WAS -Newest 20",
                "Test-NetConnection -ComputerName sql01 -Port 1433",
            ],
        )
        afternoon_maintenance(h)
    return h


def sql01(half: str) -> Host:
    """SQL Server Agent jobs: backups, index maintenance, an SSIS package, a CmdExec cleanup step."""
    h = Host("SQL01", "10.20.0.40", 4)
    routine(h, "10.20.0.10", half)
    agent = "C:\\Program Files\\Microsoft SQL Server\\MSSQL15.MSSQLSERVER\\MSSQL\\Binn\\SQLAGENT.EXE"
    agent_cmd = f'"{agent}" -i MSSQLSERVER'
    sqluser = f"{DOMAIN}\\svc-sql"
    for hour in range(24):
        if (hour < 12) != (half == "tune"):
            continue
        h.logon(ts(hour, 2), "svc-sql", 5, sid="S-1-5-21-3623811015-3361044348-30300820-1207")
        h.emit(
            ts(hour, 2, 5),
            ("MSSQLSERVER", "Application"),
            18265,
            param1="Database backed up. Database: Permis, creation date(time): 2024/03/02(10:14:55), pages dumped: 18211, first LSN: 412:2207:1, last LSN: 412:2290:1, number of dump devices: 1, device information: (FILE=1, TYPE=DISK: {'\\\\backup01\\sql\\Permis_log.trn'}). This is an informational message only. No user action is required.",
        )
        for _ in range(6):
            h.logon(ts(hour, h.rng.randint(0, 59)), "APP01$", 3, "10.20.0.30")
    if half == "tune":
        h.process(
            ts(1, 0),
            CMD,
            'C:\\Windows\\system32\\cmd.exe /c "D:\\Jobs\\purge_exports.cmd"',
            agent,
            agent_cmd,
            user=sqluser,
            integrity="High",
            cwd="C:\\Windows\\system32\\",
            company="Microsoft Corporation",
        )
        h.process(
            ts(1, 0, 2),
            "C:\\Windows\\System32\\forfiles.exe",
            'forfiles /p "D:\\Exports" /m *.csv /d -14 /c "cmd /c del @path"',
            CMD,
            'C:\\Windows\\system32\\cmd.exe /c "D:\\Jobs\\purge_exports.cmd"',
            user=sqluser,
            integrity="High",
        )
        pushed_service(
            h,
            (0, 50),
            "svc-veeam",
            "10.20.1.40",
            "Veeam\\Backup\\VeeamDeploymentSvc.exe",
            "VeeamDeploySvc",
            '"C:\\Windows\\Veeam\\Backup\\VeeamDeploymentSvc.exe"',
        )
        h.process(
            ts(2, 0),
            "C:\\Program Files\\Microsoft SQL Server\\150\\DTS\\Binn\\DTExec.exe",
            '"C:\\Program Files\\Microsoft SQL Server\\150\\DTS\\Binn\\DTExec.exe" /ISSERVER "\\"\\SSISDB\\Permis\\Chargement\\ImportNuit.dtsx\\"" /SERVER "\\"SQL01\\"" /Par "\\"$ServerOption::SYNCHRONIZED(Boolean)\\"";True /REPORTING E',
            agent,
            agent_cmd,
            user=sqluser,
            integrity="High",
        )
        h.process(
            ts(3, 0),
            PS,
            'powershell.exe -NoProfile -NonInteractive -File "D:\\Jobs\\Export-Statistiques.ps1"',
            agent,
            agent_cmd,
            user=sqluser,
            integrity="High",
        )
        h.ps_block(
            ts(3, 0, 5),
            "Invoke-Sqlcmd -ServerInstance SQL01 -Database Permis -Query 'EXEC dbo.usp_ExportStatistiques' | Export-Csv -Path D:\\Exports\\stats.csv -NoTypeInformation",
            path="D:\\Jobs\\Export-Statistiques.ps1",
        )
        morning_maintenance(h)
    else:
        h.process(
            ts(13, 30),
            "C:\\Program Files\\Microsoft SQL Server\\Client SDK\\ODBC\\170\\Tools\\Binn\\SQLCMD.EXE",
            "SQLCMD.EXE -S SQL01 -E -Q \"EXECUTE dbo.IndexOptimize @Databases = 'USER_DATABASES', @LogToTable = 'Y'\" -b",
            agent,
            agent_cmd,
            user=sqluser,
            integrity="High",
        )
        h.process(
            ts(18, 0),
            "C:\\Windows\\System32\\robocopy.exe",
            'robocopy "D:\\Backup" "\\\\backup01\\sql\\SQL01" *.bak /MOV /R:2 /W:5',
            CMD,
            'C:\\Windows\\system32\\cmd.exe /c "D:\\Jobs\\copy_backups.cmd"',
            user=sqluser,
            integrity="High",
        )
        h.process(
            ts(18, 0, 1),
            CMD,
            'C:\\Windows\\system32\\cmd.exe /c "D:\\Jobs\\copy_backups.cmd"',
            agent,
            agent_cmd,
            user=sqluser,
            integrity="High",
        )
        rdp_session(
            h,
            "adm-lgagnon",
            16,
            [
                (
                    "C:\\Program Files (x86)\\Microsoft SQL Server Management Studio 20\\Common7\\IDE\\Ssms.exe",
                    '"C:\\Program Files (x86)\\Microsoft SQL Server Management Studio 20\\Common7\\IDE\\Ssms.exe"',
                    *EXPLORER,
                ),
                (MMC, '"C:\\Windows\\system32\\mmc.exe" "C:\\Windows\\system32\\eventvwr.msc" /s', *EXPLORER),
            ],
        )
        ansible_run(
            h,
            "svc-ansible",
            "10.20.1.50",
            (22, 0),
            "#AnsibleRequires -CSharpUtil Ansible.Basic\n$spec = @{ options = @{ path = @{ type = 'path'; required = $true } } }\n$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)\n$module.Result.exists = Test-Path -LiteralPath $module.Params.path\n$module.ExitJson()",
        )
        pushed_service(
            h,
            (21, 0),
            "svc-veeam",
            "10.20.1.40",
            "VeeamVssSupport\\VeeamGuestHelper.exe",
            "VeeamVssSupport",
            '"C:\\Windows\\VeeamVssSupport\\VeeamGuestHelper.exe" -Service',
        )
        patch_install(h, "KB5046616", 20)
        afternoon_maintenance(h)
    return h


def sccm01(half: str) -> Host:
    """The SCCM site server with WSUS: its components and the content library jobs."""
    h = Host("SCCM01", "10.20.1.30", 5)
    routine(h, "10.20.0.10", half)
    smsexec = "C:\\Program Files\\Microsoft Configuration Manager\\bin\\x64\\smsexec.exe"
    for hour in range(24):
        if (hour < 12) != (half == "tune"):
            continue
        h.net(
            ts(hour, 7),
            "C:\\Program Files\\Update Services\\Services\\WsusService.exe",
            "20.72.235.82",
            443,
            "sws.update.microsoft.com",
            user="NT AUTHORITY\\NETWORK SERVICE",
        )
        h.logon(ts(hour, 8), "svc-sccm", 3, "10.20.1.30")
        h.process(
            ts(hour, 20),
            "C:\\Windows\\System32\\wbem\\WmiPrvSE.exe",
            "C:\\Windows\\system32\\wbem\\wmiprvse.exe -secured -Embedding",
            SVCHOST,
            "C:\\Windows\\system32\\svchost.exe -k DcomLaunch -p",
        )
    if half == "tune":
        h.process(
            ts(2, 0),
            "C:\\Program Files\\Update Services\\Tools\\WsusUtil.exe",
            '"C:\\Program Files\\Update Services\\Tools\\WsusUtil.exe" postinstall CONTENT_DIR=E:\\WSUS',
            smsexec,
            f'"{smsexec}"',
        )
        h.process(
            ts(5, 0),
            PS,
            'powershell.exe -NoProfile -ExecutionPolicy Bypass -File "E:\\Scripts\\Invoke-WSUSMaintenance.ps1"',
            TASKENG,
            TASK_PARENT_CMD,
            cwd="E:\\Scripts\\",
        )
        ldap_inventory(
            h,
            "svc-sccm",
            (6, 30),
            "E:\\Scripts\\Get-ServerInventory.ps1",
            "$s = [adsisearcher]'(&(objectCategory=computer)(operatingSystem=*Server*))'; $s.PageSize = 500; $s.FindAll() | ForEach-Object { $_.Properties['dnshostname'] }",
        )
        h.ps_block(
            ts(5, 0, 3),
            "Get-WsusServer | Invoke-WsusServerCleanup -CleanupObsoleteUpdates -CleanupUnneededContentFiles -DeclineExpiredUpdates",
            path="E:\\Scripts\\Invoke-WSUSMaintenance.ps1",
        )
        morning_maintenance(h)
    else:
        rdp_session(
            h,
            "adm-jsmith",
            13,
            [
                (
                    "C:\\Program Files (x86)\\Microsoft Endpoint Manager\\AdminConsole\\bin\\Microsoft.ConfigurationManagement.exe",
                    '"C:\\Program Files (x86)\\Microsoft Endpoint Manager\\AdminConsole\\bin\\Microsoft.ConfigurationManagement.exe"',
                    *EXPLORER,
                ),
                (
                    MMC,
                    '"C:\\Windows\\system32\\mmc.exe" "C:\\Program Files\\Update Services\\administrationsnapin\\wsus.msc"',
                    *EXPLORER,
                ),
            ],
        )
        h.process(
            ts(17, 0),
            "C:\\Program Files\\Microsoft Configuration Manager\\bin\\x64\\ExtractContent.exe",
            '"C:\\Program Files\\Microsoft Configuration Manager\\bin\\x64\\ExtractContent.exe" /P:E:\\SCCMContentLib /S',
            smsexec,
            f'"{smsexec}"',
        )
        afternoon_maintenance(h)
    return h


def ws_clients(half: str) -> Host:
    """An agency workstation managed by SCCM: the client's configuration baseline scripts."""
    h = Host("PC-FIN-0142", "10.20.3.42", 6)
    routine(h, "10.20.0.10", half)
    user = f"{DOMAIN}\\pcote"
    if half == "tune":
        pushed_service(
            h,
            (7, 10),
            "svc-sccm",
            "10.20.1.30",
            "ccmsetup\\ccmsetup.exe",
            "ccmsetup",
            '"C:\\Windows\\ccmsetup\\ccmsetup.exe" /source:"\\\\SCCM01.agency.local\\SMS_P01\\Client" SMSSITECODE=P01',
        )
        h.logon(ts(8, 2), "pcote", 2)
        h.process(
            ts(8, 2, 10),
            "C:\\Windows\\explorer.exe",
            "C:\\Windows\\Explorer.EXE",
            "C:\\Windows\\System32\\userinit.exe",
            "C:\\Windows\\system32\\userinit.exe",
            user=user,
            integrity="Medium",
        )
        h.process(
            ts(8, 3),
            "C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE",
            '"C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE"',
            *EXPLORER,
            user=user,
            integrity="Medium",
        )
        h.process(
            ts(8, 30),
            "C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE",
            '"C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE" "\\\\FS01\\Finance\\Budget\\2027\\previsions.xlsx"',
            *EXPLORER,
            user=user,
            integrity="Medium",
        )
        h.process(
            ts(10, 0),
            PS,
            "powershell.exe -NoLogo -Noninteractive -NoProfile -ExecutionPolicy Bypass \"& 'C:\\Windows\\CCM\\SystemTemp\\3b0a8b4e-5f55-4b5a-9a0c-5c8e2b6d71f3.ps1'\"",
            CCM,
            '"C:\\Windows\\CCM\\CcmExec.exe"',
            cwd="C:\\Windows\\CCM\\SystemTemp\\",
        )
        h.ps_block(
            ts(10, 0, 2),
            "$bl = Get-BitLockerVolume -MountPoint C: ; if ($bl.ProtectionStatus -eq 'On') { 'Compliant' } else { 'NonCompliant' }",
            path="C:\\Windows\\CCM\\SystemTemp\\3b0a8b4e-5f55-4b5a-9a0c-5c8e2b6d71f3.ps1",
        )
    else:
        h.process(
            ts(13, 5),
            "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE",
            '"C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE" /n "\\\\FS01\\Commun\\Procedures\\acces.docx"',
            *EXPLORER,
            user=user,
            integrity="Medium",
        )
        h.process(
            ts(14, 0),
            PS,
            "powershell.exe -NoLogo -Noninteractive -NoProfile -ExecutionPolicy Bypass \"& 'C:\\Windows\\CCM\\SystemTemp\\9c41e0d2-7a3b-4f0e-b6d8-2e5f1a9c4b70.ps1'\"",
            CCM,
            '"C:\\Windows\\CCM\\CcmExec.exe"',
            cwd="C:\\Windows\\CCM\\SystemTemp\\",
        )
        h.ps_block(
            ts(14, 0, 2),
            "(Get-ItemProperty 'HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows Defender' -Name DisableAntiSpyware -ErrorAction SilentlyContinue) -eq $null",
            path="C:\\Windows\\CCM\\SystemTemp\\9c41e0d2-7a3b-4f0e-b6d8-2e5f1a9c4b70.ps1",
        )
        h.process(
            ts(15, 0),
            "C:\\Windows\\System32\\msiexec.exe",
            '"C:\\Windows\\system32\\msiexec.exe" /i "C:\\Windows\\ccmcache\\1k\\AdobeAcrobatReader.msi" /qn /norestart TRANSFORMS="AcroRead.mst"',
            CCM,
            '"C:\\Windows\\CCM\\CcmExec.exe"',
            cwd="C:\\Windows\\ccmcache\\1k\\",
        )
        h.process(
            ts(16, 45),
            "C:\\Windows\\System32\\shutdown.exe",
            'shutdown.exe /r /t 600 /c "Redemarrage planifie par le service informatique"',
            CCM,
            '"C:\\Windows\\CCM\\CcmExec.exe"',
        )
    return h


HOSTS = (dc01, fs01, app01, sql01, sccm01, ws_clients)


def corpus() -> dict[str, list[str]]:
    """File name -> its lines (sorted by time), for both halves."""
    out: dict[str, list[str]] = {}
    for build in HOSTS:
        for half in ("tune", "report"):
            h = build(half)
            name = f"{half}-{h.short.lower()}.jsonl"
            out[name] = [
                json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
                for _, doc in sorted(h.events, key=lambda e: e[0])
            ]
    return out


if __name__ == "__main__":
    for name, lines in corpus().items():
        (HERE / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(name, len(lines))
