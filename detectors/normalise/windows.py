"""Windows events -> ECS, as Elastic's Windows and System integrations name them.

Every event keeps the raw record under `winlog.*` (`winlog.channel`, `winlog.provider_name`,
`winlog.event_id`, `winlog.computer_name`, `winlog.record_id`, `winlog.event_data.<Name>`,
`winlog.user_data.<Name>`, `winlog.process.pid`, `winlog.user.identifier`) and gets `event.code`,
`event.provider`, `event.dataset`/`event.module` (Elastic's data streams: `system.security`,
`system.system`, `system.application`, `windows.sysmon_operational`, `windows.powershell`,
`windows.powershell_operational`, `windows.windows_defender`, else `windows.forwarded`) and
`host.hostname` (the Windows computer, which the Normaliser makes `host.name`). The ECS fields of
each channel's commonest events (`process.*`, `user.*`, `source.*`, `destination.*`, `file.*`,
`registry.*`, `dns.*`, `powershell.*`, `group.*`, `service.*`, `threat.*`) are filled in
`windows_ecs.py`. Sigma rules read the raw `winlog.event_data.*` names through
`detectors/mappings/windows.yml`, so no ECS conversion can change what a SigmaHQ rule sees.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from detectors.normalise import windows_ecs, windows_remote
from detectors.normalise.winlog import WinRecord, record_of

ParseTime = Callable[[object, str], str | None]

# lower-cased channel -> (event.dataset, kind used to pick the ECS enrichment)
CHANNELS = {
    "security": ("system.security", "security"),
    "system": ("system.system", "system"),
    "application": ("system.application", "application"),
    "microsoft-windows-sysmon/operational": ("windows.sysmon_operational", "sysmon"),
    "microsoft-windows-powershell/operational": ("windows.powershell_operational", "powershell"),
    "powershellcore/operational": ("windows.powershell_operational", "powershell"),
    "windows powershell": ("windows.powershell", "powershell_classic"),
    "microsoft-windows-windows defender/operational": ("windows.windows_defender", "defender"),
    # remote access: RDP's transport and session channels, WinRM (source address, user, action)
    "microsoft-windows-remotedesktopservices-rdpcorets/operational": ("windows.forwarded", "rdpcorets"),
    "microsoft-windows-terminalservices-remoteconnectionmanager/operational": ("windows.forwarded", "rdp_auth"),
    "microsoft-windows-terminalservices-localsessionmanager/operational": ("windows.forwarded", "rdp_session"),
    "microsoft-windows-winrm/operational": ("windows.forwarded", "winrm"),
}
FORWARDED = ("windows.forwarded", "other")


def from_doc(doc: dict[str, Any], original: str, parse_time: ParseTime, tz: str) -> dict[str, Any] | None:
    """One forwarded Windows JSON document -> one flat ECS event; None if it is not one."""
    rec = record_of(doc)
    if rec is None:
        return None
    return to_ecs(rec, original, parse_time, tz)


def to_ecs(rec: WinRecord, original: str, parse_time: ParseTime, tz: str) -> dict[str, Any]:
    dataset, kind = CHANNELS.get(rec.channel.lower(), FORWARDED)
    code = "" if rec.event_id is None else str(rec.event_id)
    ev: dict[str, Any] = {}
    if rec.extra:  # a Winlogbeat document's own ECS fields (agent, ecs, host ...) stay; ours win
        _flatten(rec.extra, "", ev)
    ev.update(
        {
            "message": rec.message or _summary(rec, code),
            "event.original": original,
            "event.kind": "event",
            "event.code": code,
            "event.provider": rec.provider,
            "event.dataset": dataset,
            "event.module": dataset.partition(".")[0],
            "winlog.channel": rec.channel,
            "winlog.provider_name": rec.provider,
            "winlog.event_id": code,
            "winlog.computer_name": rec.computer,
            "winlog.api": "wineventlog",
        }
    )
    ts = parse_time(rec.time, tz) if rec.time is not None else None
    ev["@timestamp"] = ts  # None: the read time, tagged
    if rec.computer:
        ev["host.hostname"] = rec.computer
    if rec.record_id is not None:
        ev["winlog.record_id"] = rec.record_id
    if rec.pid is not None:
        ev["winlog.process.pid"] = rec.pid
    if rec.thread_id is not None:
        ev["winlog.process.thread.id"] = rec.thread_id
    if rec.user_sid:
        ev["winlog.user.identifier"] = rec.user_sid
    if rec.level:
        ev["log.level"] = ev["winlog.level"] = rec.level
    if rec.task:
        ev["winlog.task"] = rec.task
    if rec.opcode:
        ev["winlog.opcode"] = rec.opcode
    if rec.version is not None:
        ev["winlog.version"] = rec.version
    for k, v in rec.event_data.items():
        ev["winlog.event_data." + k] = v
    for k, v in rec.user_data.items():
        ev["winlog.user_data." + k] = v
    data = rec.event_data if not rec.user_data else {**rec.user_data, **rec.event_data}
    try:
        (windows_remote if kind in windows_remote.KINDS else windows_ecs).enrich(ev, kind, rec.event_id, data)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        ev["tags"] = ["_socpipe_windows_enrich_failure"]  # the raw winlog.* fields are still there
    name = ev.get("process.name")
    if type(name) is str:  # Windows file names ignore case: one spelling to count distinct programs by
        ev["socpipe.process.name_lower"] = name.lower()
    return ev


MESSAGE_CHARS = 8192


def _summary(rec: WinRecord, code: str) -> str:
    """A forwarder that sends no rendered message (Winlogbeat without it, WEF XML): the event's
    values as text, so people can read it and Sigma keyword rules can search it."""
    parts = [f"{rec.provider or rec.channel} event {code}:"]
    size = len(parts[0])
    for data in (rec.event_data, rec.user_data):
        for k, v in data.items():
            if v in ("", "-") or type(v) is not str:
                continue
            part = f"{k}={v}"
            size += len(part) + 1
            if size > MESSAGE_CHARS:
                return " ".join(parts)[:MESSAGE_CHARS]
            parts.append(part)
    return " ".join(parts)


def _flatten(obj: dict[str, Any], prefix: str, out: dict[str, Any], depth: int = 0) -> None:
    for k, v in obj.items():
        if type(v) is dict and v and depth < 6:
            _flatten(v, f"{prefix}{k}.", out, depth + 1)
        else:
            out[prefix + k] = v
