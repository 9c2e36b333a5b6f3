"""ECS fields of Windows events, per channel, following Elastic's Windows/System integrations.

`enrich(ev, kind, event_id, data)` adds to a flat event what Elastic's ingest pipelines derive
from the raw EventData: Security logons and account management, process creation (4688 and
Sysmon 1), Sysmon's network, file, registry, image-load, DNS and process-access events,
PowerShell script blocks and module logging, System service installs and log clears, Defender
detections and protection changes. Raw values stay in `winlog.event_data.*` (windows.py); the
lookup tables (event actions, logon types, access rights, registry hives) are in windows_tables.py.
"""

from __future__ import annotations

import re
from typing import Any

from detectors.normalise.ecs import clean_ip, is_ip
from detectors.normalise.windows_tables import (
    ACCESS_RIGHTS,
    DEFENDER_ACTIONS,
    HIVES,
    LOGON_TYPES,
    SECURITY_ACTIONS,
    SYSMON,
    process_creation_rendered,
)

Event = dict[str, Any]
Data = dict[str, Any]

_EMPTY = frozenset(("", "-", "%%1793", "null", "NULL"))


def _access_list(ev: Event, raw: str) -> None:
    """Keep the raw codes (rules match '%%4417'), add their rendering (rules match 'WriteData')."""
    codes = raw.split()
    if codes and any(c in ACCESS_RIGHTS for c in codes):
        ev["winlog.event_data.AccessListDescription"] = [ACCESS_RIGHTS.get(c, c) for c in codes]


def _v(data: Data, key: str) -> str | None:
    """A present, meaningful value ('-' and empty are Windows for 'none')."""
    v = data.get(key)
    if type(v) is str:
        return None if v in _EMPTY else v
    return None


def _pid(v: str | None) -> int | None:
    """Windows writes process ids in decimal (Sysmon) or hex (Security: '0x1a4')."""
    if not v:
        return None
    try:
        return int(v, 16) if v[:2] in ("0x", "0X") else int(v)
    except ValueError:
        return None


def _basename(path: str) -> str:
    return path.replace("/", "\\").rsplit("\\", 1)[-1]


def _file(ev: Event, prefix: str, path: str) -> None:
    ev[prefix + ".path"] = path
    name = _basename(path)
    ev[prefix + ".name"] = name
    if len(name) < len(path):
        ev[prefix + ".directory"] = path[: len(path) - len(name) - 1]
    if "." in name:
        ev[prefix + ".extension"] = name.rsplit(".", 1)[1].lower()


def _process(ev: Event, prefix: str, image: str | None, pid: str | None = None) -> None:
    if image:
        ev[prefix + ".executable"] = image
        ev[prefix + ".name"] = _basename(image)
    n = _pid(pid)
    if n is not None:
        ev[prefix + ".pid"] = n


def _user(ev: Event, prefix: str, name: str | None, domain: str | None = None, sid: str | None = None) -> None:
    """'DOMAIN\\name' or name + domain."""
    if name and "\\" in name and not domain:
        domain, name = name.split("\\", 1)
    if name:
        ev[prefix + ".name"] = name
        related = ev.setdefault("related.user", [])
        if name not in related:
            related.append(name)
    if domain:
        ev[prefix + ".domain"] = domain
    if sid:
        ev[prefix + ".id"] = sid


def _source(ev: Event, ip: str | None, port: str | None = None, prefix: str = "source") -> None:
    if ip:
        ip = clean_ip(ip.strip("[]"))
        if is_ip(ip):
            ev[prefix + ".ip"] = ip
            related = ev.setdefault("related.ip", [])
            if ip not in related:
                related.append(ip)
        else:
            ev[prefix + ".domain"] = ip
    n = _pid(port)
    if n:
        ev[prefix + ".port"] = n


def _hashes(ev: Event, prefix: str, hashes: str | None) -> None:
    """Sysmon 'SHA1=..,MD5=..,SHA256=..,IMPHASH=..' -> <prefix>.hash.* and <prefix>.pe.imphash."""
    if not hashes:
        return
    for part in hashes.split(","):
        algo, _, value = part.partition("=")
        algo = algo.strip().lower()
        if not value:
            continue
        if algo == "imphash":
            ev[prefix + ".pe.imphash"] = value.lower()
        elif algo in ("md5", "sha1", "sha256"):
            ev[f"{prefix}.hash.{algo}"] = value.lower()


def enrich(ev: Event, kind: str, event_id: int | None, data: Data) -> None:
    if event_id is None:
        return
    fn = _BY_KIND.get(kind)
    if fn is not None:
        fn(ev, event_id, data)


# --- Security --------------------------------------------------------------------------------
def _security(ev: Event, eid: int, d: Data) -> None:
    meta = SECURITY_ACTIONS.get(eid)
    if meta is not None:
        ev["event.action"], ev["event.category"], ev["event.type"], outcome = meta
        if outcome:
            ev["event.outcome"] = outcome
    if eid in (4624, 4625, 4634, 4647, 4648, 4672, 4768, 4769, 4771, 4776, 4778, 4779):
        _logon(ev, eid, d)
    elif eid in (4688, 4689):
        if eid == 4688:
            _process(ev, "process", _v(d, "NewProcessName"), _v(d, "NewProcessId"))
            _process(ev, "process.parent", _v(d, "ParentProcessName"), _v(d, "ProcessId"))
            if _v(d, "CommandLine"):
                ev["process.command_line"] = d["CommandLine"]
            ev.update(process_creation_rendered(d))
        else:
            _process(ev, "process", _v(d, "ProcessName"), _v(d, "ProcessId"))
        _user(ev, "user", _v(d, "SubjectUserName"), _v(d, "SubjectDomainName"), _v(d, "SubjectUserSid"))
    elif 4720 <= eid <= 4767 or eid == 4781:
        _user(ev, "user", _v(d, "SubjectUserName"), _v(d, "SubjectDomainName"), _v(d, "SubjectUserSid"))
        if eid in (4728, 4729, 4732, 4733, 4756, 4757):
            ev["group.name"] = _v(d, "TargetUserName") or ""
            if _v(d, "TargetDomainName"):
                ev["group.domain"] = d["TargetDomainName"]
            if _v(d, "TargetSid"):
                ev["group.id"] = d["TargetSid"]
            member = _v(d, "MemberName")
            if member and member.upper().startswith("CN="):
                member = member[3:].split(",", 1)[0]
            _user(ev, "user.target", member, None, _v(d, "MemberSid"))
        else:
            _user(ev, "user.target", _v(d, "TargetUserName"), _v(d, "TargetDomainName"), _v(d, "TargetSid"))
    else:
        _user(ev, "user", _v(d, "SubjectUserName"), _v(d, "SubjectDomainName"), _v(d, "SubjectUserSid"))
        if _v(d, "AccessList"):
            _access_list(ev, d["AccessList"])
        if eid in (5140, 5145, 5156):
            _source(ev, _v(d, "IpAddress") or _v(d, "SourceAddress"), _v(d, "IpPort") or _v(d, "SourcePort"))
            if eid == 5156:
                _source(ev, _v(d, "DestAddress"), _v(d, "DestPort"), prefix="destination")
                _process(ev, "process", _v(d, "Application"), _v(d, "ProcessID"))
        elif eid == 4697:
            if _v(d, "ServiceName"):
                ev["service.name"] = d["ServiceName"]
        elif eid in (4663, 4656) and _v(d, "ObjectType") == "File" and _v(d, "ObjectName"):
            _file(ev, "file", d["ObjectName"])
            _process(ev, "process", _v(d, "ProcessName"), _v(d, "ProcessId"))
        elif eid == 4657 and _v(d, "ObjectName"):
            value = _v(d, "ObjectValueName")
            ev["registry.path"] = d["ObjectName"] + ("\\" + value if value else "")
            if value:
                ev["registry.value"] = value
            _process(ev, "process", _v(d, "ProcessName"), _v(d, "ProcessId"))


def _logon(ev: Event, eid: int, d: Data) -> None:
    target = _v(d, "TargetUserName")
    if target and eid not in (4648, 4672):
        _user(ev, "user", target, _v(d, "TargetDomainName"), _v(d, "TargetUserSid") or _v(d, "TargetSid"))
    else:
        _user(ev, "user", _v(d, "SubjectUserName"), _v(d, "SubjectDomainName"), _v(d, "SubjectUserSid"))
        if eid == 4648 and target:
            _user(ev, "user.target", target, _v(d, "TargetDomainName"))
    _source(ev, _v(d, "IpAddress") or _v(d, "ClientAddress"), _v(d, "IpPort"))
    ws = _v(d, "WorkstationName") or _v(d, "Workstation")
    if ws and "source.domain" not in ev:
        ev["source.domain"] = ws
    lt = _v(d, "LogonType")
    if lt:
        ev["winlog.logon.type"] = LOGON_TYPES.get(lt, lt)
    if _v(d, "TargetLogonId"):
        ev["winlog.logon.id"] = d["TargetLogonId"]
    _process(ev, "process", _v(d, "ProcessName"), _v(d, "ProcessId"))
    status = _v(d, "Status")
    if eid == 4625:
        sub = _v(d, "SubStatus")
        if status:
            ev["winlog.logon.failure.status"] = status
        if sub:
            ev["winlog.logon.failure.sub_status"] = sub
        if _v(d, "FailureReason"):
            ev["winlog.logon.failure.reason"] = d["FailureReason"]
    elif eid in (4768, 4769, 4776) and status:
        ev["event.outcome"] = "success" if status in ("0x0", "0") else "failure"


# --- Sysmon ----------------------------------------------------------------------------------
def _sysmon(ev: Event, eid: int, d: Data) -> None:
    meta = SYSMON.get(eid)
    if meta is not None:
        ev["event.action"], ev["event.category"], ev["event.type"] = meta
    if _v(d, "RuleName"):
        ev["rule.name"] = d["RuleName"]
    if eid in (8, 10):  # the acting process is the source; the target stays in event_data
        _process(ev, "process", _v(d, "SourceImage"), _v(d, "SourceProcessId"))
        if _v(d, "SourceProcessGuid"):
            ev["process.entity_id"] = d["SourceProcessGuid"]
    else:
        _process(ev, "process", _v(d, "Image"), _v(d, "ProcessId"))
        if _v(d, "ProcessGuid"):
            ev["process.entity_id"] = d["ProcessGuid"]
    _user(ev, "user", _v(d, "User"))
    if eid == 1:
        if _v(d, "CommandLine"):
            ev["process.command_line"] = d["CommandLine"]
        if _v(d, "CurrentDirectory"):
            ev["process.working_directory"] = d["CurrentDirectory"]
        if _v(d, "OriginalFileName"):
            ev["process.pe.original_file_name"] = d["OriginalFileName"]
        _hashes(ev, "process", _v(d, "Hashes"))
        _process(ev, "process.parent", _v(d, "ParentImage"), _v(d, "ParentProcessId"))
        if _v(d, "ParentCommandLine"):
            ev["process.parent.command_line"] = d["ParentCommandLine"]
    elif eid == 3:
        _source(ev, _v(d, "SourceIp"), _v(d, "SourcePort"))
        _source(ev, _v(d, "DestinationIp"), _v(d, "DestinationPort"), prefix="destination")
        if _v(d, "DestinationHostname"):
            ev["destination.domain"] = d["DestinationHostname"]
        if _v(d, "Protocol"):
            ev["network.transport"] = d["Protocol"].lower()
        initiated = _v(d, "Initiated")
        if initiated:
            ev["network.direction"] = "egress" if initiated.lower() == "true" else "ingress"
    elif eid in (6, 7):
        loaded = _v(d, "ImageLoaded")
        if loaded:
            _file(ev, "file" if eid == 6 else "dll", loaded)
        _hashes(ev, "file" if eid == 6 else "dll", _v(d, "Hashes"))
    elif eid in (2, 11, 15, 23, 26, 27, 28, 29):
        if _v(d, "TargetFilename"):
            _file(ev, "file", d["TargetFilename"])
        _hashes(ev, "file", _v(d, "Hashes"))
    elif eid in (12, 13, 14):
        _registry(ev, _v(d, "TargetObject"), _v(d, "Details"))
    elif eid in (17, 18):
        if _v(d, "PipeName"):
            ev["file.name"] = d["PipeName"]
    elif eid == 22:
        if _v(d, "QueryName"):
            ev["dns.question.name"] = d["QueryName"]
        if _v(d, "QueryResults"):
            ips = [x.strip() for x in d["QueryResults"].split(";") if is_ip(x.strip().removeprefix("::ffff:"))]
            if ips:
                ev["dns.resolved_ip"] = ips


def _registry(ev: Event, path: str | None, details: str | None) -> None:
    if not path:
        return
    ev["registry.path"] = path
    head, _, rest = path.partition("\\")
    hive = HIVES.get(head.upper())
    if hive:
        ev["registry.hive"] = hive
        key, _, value = rest.rpartition("\\")
        ev["registry.key"] = key
        ev["registry.value"] = value
    if details:
        ev["registry.data.strings"] = [details]


# --- PowerShell ------------------------------------------------------------------------------
_KV_LINE = re.compile(r"^\s*([A-Za-z][A-Za-z ]*?)\s*=\s*(.*?)\s*$", re.M)


def _pairs(text: str | None) -> dict[str, str]:
    """'Host Application = powershell.exe ...' / 'HostApplication=...' lines -> {name: value}."""
    if not text:
        return {}
    return {m.group(1).replace(" ", ""): m.group(2) for m in _KV_LINE.finditer(text)}


def _ps_context(ev: Event, ctx: dict[str, str]) -> None:
    if ctx.get("HostApplication"):
        ev["process.command_line"] = ctx["HostApplication"]
        first = ctx["HostApplication"].strip().strip('"').split(" ", 1)[0].strip('"')
        if first:
            ev["process.name"] = _basename(first)
    for key, target in (
        ("HostName", "powershell.process.executable_version"),
        ("EngineVersion", "powershell.engine.version"),
        ("RunspaceId", "powershell.runspace_id"),
        ("PipelineId", "powershell.pipeline_id"),
        ("CommandName", "powershell.command.name"),
        ("CommandType", "powershell.command.type"),
        ("CommandPath", "powershell.command.path"),
        ("ScriptName", "file.path"),
        ("NewEngineState", "powershell.engine.new_state"),
        ("PreviousEngineState", "powershell.engine.previous_state"),
        ("ProviderName", "powershell.provider.name"),
        ("NewProviderState", "powershell.provider.new_state"),
    ):
        if ctx.get(key):
            ev[target] = ctx[key]
    if ctx.get("User"):
        _user(ev, "user", ctx["User"])
    if ctx.get("ConnectedUser"):
        _user(ev, "user.effective", ctx["ConnectedUser"])
    if "powershell.process.executable_version" in ev:  # HostName is the host's name, not a version
        ev["powershell.host.name"] = ev.pop("powershell.process.executable_version")
    if ctx.get("HostVersion"):
        ev["powershell.process.executable_version"] = ctx["HostVersion"]


def _powershell(ev: Event, eid: int, d: Data) -> None:
    if eid == 4104:
        ev["event.action"], ev["event.category"], ev["event.type"] = "execute-remote-command", ["process"], ["info"]
        if _v(d, "ScriptBlockText"):
            ev["powershell.file.script_block_text"] = d["ScriptBlockText"]
        if _v(d, "ScriptBlockId"):
            ev["powershell.file.script_block_id"] = d["ScriptBlockId"]
        seq, total = _pid(_v(d, "MessageNumber")), _pid(_v(d, "MessageTotal"))
        if seq is not None:
            ev["powershell.sequence"] = seq
        if total is not None:
            ev["powershell.total"] = total
        if _v(d, "Path"):
            _file(ev, "file", d["Path"])
    elif eid == 4103:
        ev["event.action"], ev["event.category"], ev["event.type"] = "execute-pipeline", ["process"], ["info"]
        _ps_context(ev, _pairs(_v(d, "ContextInfo")))
        if _v(d, "Payload"):
            ev["powershell.command.invocation_details"] = d["Payload"]
    elif eid in (4105, 4106):
        ev["event.category"], ev["event.type"] = ["process"], ["start" if eid == 4105 else "end"]


def _powershell_classic(ev: Event, eid: int, d: Data) -> None:
    """'Windows PowerShell' channel: the third unnamed Data item holds 'Key=Value' lines."""
    actions = {400: "engine-started", 403: "engine-stopped", 600: "provider-started", 800: "pipeline-executed"}
    if eid in actions:
        ev["event.action"] = actions[eid]
        ev["event.category"], ev["event.type"] = ["process"], ["start" if eid in (400, 600) else "info"]
    blob = "\n".join(v for k, v in d.items() if type(v) is str and "=" in v and k.startswith("param"))
    _ps_context(ev, _pairs(blob))


# --- System, Defender ------------------------------------------------------------------------
def _system(ev: Event, eid: int, d: Data) -> None:
    if eid == 7045:
        ev["event.action"], ev["event.category"], ev["event.type"] = (
            "service-installed",
            ["configuration"],
            ["creation"],
        )
        if _v(d, "ServiceName"):
            ev["service.name"] = d["ServiceName"]
        if _v(d, "ImagePath"):
            ev["service.type"] = _v(d, "ServiceType") or ""
            ev["file.path"] = d["ImagePath"]
        if _v(d, "AccountName"):
            _user(ev, "user", d["AccountName"])
    elif eid == 104:
        ev["event.action"], ev["event.category"], ev["event.type"] = "log-cleared", ["iam"], ["admin", "change"]
        _user(ev, "user", _v(d, "SubjectUserName"), _v(d, "SubjectDomainName"))
    elif eid in (7036, 7040):
        ev["event.action"] = "service-state-changed" if eid == 7036 else "service-start-type-changed"
        ev["event.category"], ev["event.type"] = ["configuration"], ["change"]
        name = _v(d, "param1")
        if name:
            ev["service.name"] = name


def _defender(ev: Event, eid: int, d: Data) -> None:
    action = DEFENDER_ACTIONS.get(eid)
    if action is None:
        return
    ev["event.action"] = action
    if eid in (1006, 1015, 1116, 1117, 1118, 1119):
        ev["event.category"], ev["event.type"] = ["malware"], ["info"]
        if _v(d, "Threat Name"):
            ev["threat.indicator.description"] = ev["winlog.threat.name"] = d["Threat Name"]
        path = _v(d, "Path")
        if path:
            path = path.split(";", 1)[0].removeprefix("file:_")
            _file(ev, "file", path)
        _process(ev, "process", _v(d, "Process Name"))
        _user(ev, "user", _v(d, "Detection User"))
    else:
        ev["event.category"], ev["event.type"] = ["configuration"], ["change"]
        if eid == 5007 and _v(d, "New Value"):
            ev["registry.path"] = d["New Value"].split(" = ", 1)[0]


_BY_KIND = {
    "security": _security,
    "sysmon": _sysmon,
    "powershell": _powershell,
    "powershell_classic": _powershell_classic,
    "system": _system,
    "defender": _defender,
}
