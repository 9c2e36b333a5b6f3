"""ECS fields of Sysmon events (Elastic's Windows integration, sysmon_operational): the acting
process (`process.*`, its parent and hashes on process creation), network (`source.*`,
`destination.*`, `network.*`), image and driver loads (`dll.*`, `file.*`), file, registry, pipe and
DNS events. The context of a process's creation on its later events is process_context.py's work."""

from __future__ import annotations

from detectors.normalise.ecs import is_ip
from detectors.normalise.windows_fields import Data, Event, _file, _hashes, _process, _source, _user, _v
from detectors.normalise.windows_tables import HIVES, SYSMON


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
        if _v(d, "ParentProcessGuid"):
            ev["process.parent.entity_id"] = d["ParentProcessGuid"]
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
