"""ECS fields of Windows events, per channel, following Elastic's Windows/System integrations.

`enrich(ev, kind, event_id, data)` adds to a flat event what Elastic's ingest pipelines derive
from the raw EventData: Security logons and account management, process creation (4688 and
Sysmon 1), Sysmon's network, file, registry, image-load, DNS and process-access events,
PowerShell script blocks and module logging, System service installs and log clears, Defender
detections and protection changes. Raw values stay in `winlog.event_data.*` (windows.py); the
lookup tables (event actions, logon types, access rights, registry hives) are in windows_tables.py,
the field helpers in windows_fields.py, Sysmon's events in windows_sysmon.py.
"""

from __future__ import annotations

import re

from detectors.normalise.windows_fields import (
    Data,
    Event,
    _access_list,
    _basename,
    _file,
    _pid,
    _process,
    _source,
    _user,
    _v,
)
from detectors.normalise.windows_registry import registry_value_rendered
from detectors.normalise.windows_sysmon import _sysmon
from detectors.normalise.windows_tables import (
    DEFENDER_ACTIONS,
    LOGON_TYPES,
    SECURITY_ACTIONS,
    process_creation_rendered,
)


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
            ev.update(registry_value_rendered(d))


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
