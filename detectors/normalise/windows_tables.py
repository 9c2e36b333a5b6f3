"""Lookup tables of the Windows ECS enrichment (windows_ecs.py): what Elastic's Windows/System
integrations call each event (action, category, type, outcome), logon types, Security's rendered
access-right codes, registry hive names and Defender's actions. Data only."""

from __future__ import annotations

LOGON_TYPES = {
    "0": "System",
    "2": "Interactive",
    "3": "Network",
    "4": "Batch",
    "5": "Service",
    "7": "Unlock",
    "8": "NetworkCleartext",
    "9": "NewCredentials",
    "10": "RemoteInteractive",
    "11": "CachedInteractive",
    "12": "CachedRemoteInteractive",
    "13": "CachedUnlock",
}


SECURITY_ACTIONS: dict[int, tuple[str, list[str], list[str], str | None]] = {
    # event id: (event.action, event.category, event.type, event.outcome)
    4624: ("logged-in", ["authentication"], ["start"], "success"),
    4625: ("logon-failed", ["authentication"], ["start"], "failure"),
    4634: ("logged-out", ["authentication"], ["end"], "success"),
    4647: ("logged-out", ["authentication"], ["end"], "success"),
    4648: ("logged-in-explicit", ["authentication"], ["start"], "success"),
    4672: ("logged-in-special", ["iam"], ["admin"], "success"),
    4768: ("kerberos-authentication-ticket-requested", ["authentication"], ["start"], None),
    4769: ("kerberos-service-ticket-requested", ["authentication"], ["start"], None),
    4771: ("kerberos-preauth-failed", ["authentication"], ["start"], "failure"),
    4776: ("credential-validated", ["authentication"], ["start"], None),
    4778: ("session-reconnected", ["authentication"], ["start"], "success"),
    4779: ("session-disconnected", ["authentication"], ["end"], "success"),
    4688: ("created-process", ["process"], ["start"], "success"),
    4689: ("exited-process", ["process"], ["end"], "success"),
    4720: ("added-user-account", ["iam"], ["user", "creation"], "success"),
    4722: ("enabled-user-account", ["iam"], ["user", "change"], "success"),
    4723: ("changed-password", ["iam"], ["user", "change"], "success"),
    4724: ("reset-password", ["iam"], ["user", "change"], "success"),
    4725: ("disabled-user-account", ["iam"], ["user", "change"], "success"),
    4726: ("deleted-user-account", ["iam"], ["user", "deletion"], "success"),
    4738: ("modified-user-account", ["iam"], ["user", "change"], "success"),
    4728: ("added-member-to-group", ["iam"], ["group", "change"], "success"),
    4732: ("added-member-to-group", ["iam"], ["group", "change"], "success"),
    4756: ("added-member-to-group", ["iam"], ["group", "change"], "success"),
    4729: ("removed-member-from-group", ["iam"], ["group", "change"], "success"),
    4733: ("removed-member-from-group", ["iam"], ["group", "change"], "success"),
    4757: ("removed-member-from-group", ["iam"], ["group", "change"], "success"),
    1102: ("audit-log-cleared", ["iam"], ["admin", "change"], "success"),
    4697: ("service-installed", ["iam", "configuration"], ["admin", "change"], "success"),
    4698: ("scheduled-task-created", ["iam", "configuration"], ["creation", "admin"], "success"),
    4699: ("scheduled-task-deleted", ["iam", "configuration"], ["deletion", "admin"], "success"),
    4702: ("scheduled-task-updated", ["iam", "configuration"], ["change", "admin"], "success"),
    4657: ("registry-value-modified", ["configuration"], ["change"], "success"),
    4663: ("object-access-attempt", ["file"], ["access"], "success"),
    5140: ("network-share-object-accessed", ["network", "file"], ["access"], "success"),
    5145: ("network-share-object-access-checked", ["network", "file"], ["access"], None),
    5156: ("windows-firewall-connection", ["network"], ["connection", "allowed"], "success"),
}


SYSMON: dict[int, tuple[str, list[str], list[str]]] = {
    1: ("Process Create", ["process"], ["start"]),
    2: ("File creation time changed", ["file"], ["change"]),
    3: ("Network connection detected", ["network"], ["connection", "start"]),
    5: ("Process terminated", ["process"], ["end"]),
    6: ("Driver loaded", ["driver"], ["start"]),
    7: ("Image loaded", ["process"], ["change"]),
    8: ("CreateRemoteThread detected", ["process"], ["change"]),
    9: ("RawAccessRead detected", ["file"], ["access"]),
    10: ("Process accessed", ["process"], ["access"]),
    11: ("File created", ["file"], ["creation"]),
    12: ("Registry object added or deleted", ["configuration", "registry"], ["change"]),
    13: ("Registry value set", ["configuration", "registry"], ["change"]),
    14: ("Registry object renamed", ["configuration", "registry"], ["change"]),
    15: ("File stream created", ["file"], ["creation"]),
    17: ("Pipe Created", ["file"], ["creation"]),
    18: ("Pipe Connected", ["file"], ["access"]),
    19: ("WmiEventFilter activity detected", ["process"], ["change"]),
    20: ("WmiEventConsumer activity detected", ["process"], ["change"]),
    21: ("WmiEventConsumerToFilter activity detected", ["process"], ["change"]),
    22: ("Dns query", ["network"], ["connection", "protocol", "info"]),
    23: ("File Delete archived", ["file"], ["deletion"]),
    24: ("Clipboard changed", ["process"], ["change"]),
    25: ("Process tampering", ["process"], ["change"]),
    26: ("File Delete logged", ["file"], ["deletion"]),
    27: ("File Block Executable", ["file"], ["denied"]),
    28: ("File Block Shredding", ["file"], ["denied"]),
    29: ("File Executable Detected", ["file"], ["creation"]),
}


# Object access rights as Windows renders their message-table codes (%%NNNN) in AccessList
ACCESS_RIGHTS = {
    "%%1537": "DELETE",
    "%%1538": "READ_CONTROL",
    "%%1539": "WRITE_DAC",
    "%%1540": "WRITE_OWNER",
    "%%1541": "SYNCHRONIZE",
    "%%1542": "ACCESS_SYS_SEC",
    "%%4416": "ReadData (or ListDirectory)",
    "%%4417": "WriteData (or AddFile)",
    "%%4418": "AppendData (or AddSubdirectory or CreatePipeInstance)",
    "%%4419": "ReadEA",
    "%%4420": "WriteEA",
    "%%4421": "Execute/Traverse",
    "%%4422": "DeleteChild",
    "%%4423": "ReadAttributes",
    "%%4424": "WriteAttributes",
    "%%4432": "Query key value",
    "%%4433": "Set key value",
    "%%4434": "Create sub-key",
    "%%4435": "Enumerate sub-keys",
    "%%4436": "Notify about changes to keys",
    "%%4437": "Create Link",
}


# Mandatory integrity labels (Security 4688's MandatoryLabel) by the names Sysmon writes in IntegrityLevel
INTEGRITY_LEVELS = {
    "S-1-16-0": "Untrusted",
    "S-1-16-4096": "Low",
    "S-1-16-8192": "Medium",
    "S-1-16-8448": "MediumPlus",
    "S-1-16-12288": "High",
    "S-1-16-16384": "System",
    "S-1-16-20480": "ProtectedProcess",
}

HIVES = {
    "HKLM": "HKLM",
    "HKU": "HKU",
    "HKCR": "HKCR",
    "HKCU": "HKCU",
    "HKEY_LOCAL_MACHINE": "HKLM",
    "HKEY_USERS": "HKU",
    "HKEY_CURRENT_USER": "HKCU",
}


DEFENDER_ACTIONS = {
    1006: "malware-detected",
    1015: "suspicious-behavior-detected",
    1116: "malware-detected",
    1117: "malware-action-taken",
    1118: "malware-action-failed",
    1119: "malware-action-critical-failure",
    5001: "realtime-protection-disabled",
    5004: "realtime-protection-config-changed",
    5007: "configuration-changed",
    5010: "antispyware-disabled",
    5012: "antivirus-disabled",
    5013: "tamper-protection-blocked-change",
    5101: "antimalware-platform-expired",
}


_SERVICE_ACCOUNTS = {"S-1-5-18": "SYSTEM", "S-1-5-19": "LOCAL SERVICE", "S-1-5-20": "NETWORK SERVICE"}


def process_creation_rendered(d: dict[str, object]) -> dict[str, str]:
    """Security 4688 in Sysmon 1's terms, rendered beside its raw fields (SigmaHQ's process_creation
    rules name Sysmon's): MandatoryLabelName 'High' for the label S-1-16-12288, and NewProcessUser
    'DOMAIN\\name', the new process's account (4688 v2's Target*, else its creator's, the Subject*,
    whose token it inherits; the machine account of SYSTEM as 'NT AUTHORITY\\SYSTEM', as Sysmon writes),
    and NewProcessLogonId, its logon session, chosen alike (Sysmon's LogonId: TargetLogonId when the
    new process got another account's token - a DCOM server started for a remote caller -, else the
    creator's SubjectLogonId)."""

    def v(key: str) -> str | None:
        x = d.get(key)
        return x if type(x) is str and x not in ("", "-", "NULL", "null") else None

    out: dict[str, str] = {}
    label = v("MandatoryLabel")
    if label and label.upper() in INTEGRITY_LEVELS:
        out["winlog.event_data.MandatoryLabelName"] = INTEGRITY_LEVELS[label.upper()]
    name, domain, sid = v("TargetUserName"), v("TargetDomainName"), v("TargetUserSid")
    logon = v("TargetLogonId") if name else None
    if not name:
        name, domain, sid = v("SubjectUserName"), v("SubjectDomainName"), v("SubjectUserSid")
    if not logon or logon in ("0x0", "0"):
        logon = v("SubjectLogonId")
    if logon:
        out["winlog.event_data.NewProcessLogonId"] = logon
    if sid in _SERVICE_ACCOUNTS:
        domain, name = "NT AUTHORITY", _SERVICE_ACCOUNTS[sid]
    if name:
        out["winlog.event_data.NewProcessUser"] = f"{domain}\\{name}" if domain else name
    return out
