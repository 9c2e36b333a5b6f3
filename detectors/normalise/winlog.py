"""Forwarded Windows events: the three JSON shapes a collector receives, told apart, as one record.

Agencies forward Windows event logs to the socpipe agent on their network; the agent ships each
JSON document as a line. Three shapes arrive, recognised from their keys alone:

- **NXLog CE** (`im_msvistalog` + `to_json()`): flat. System fields under NXLog's own names
  (`EventTime`, `Hostname`, `EventID`, `SourceName`, `Channel`, `RecordNumber`, `ProcessID`, ...)
  and every EventData/UserData field beside them at the top level.
- **Winlogbeat** (and Elastic Agent's raw `winlog`): `winlog.{channel, event_id, provider_name,
  computer_name, record_id, event_data, user_data, process, user}` plus ECS `@timestamp`, `event`.
- **Rendered event XML** (Windows Event Forwarding to a collector, an EVTX export through
  pyevtx-rs): `{"Event": {"System": {...}, "EventData": {...} | "UserData": {...}}}`.

`record_of(doc)` returns a `WinRecord` (the shape's names resolved) or None when the document is
not a Windows event. Values of EventData stay text, as Windows renders them (Elastic keeps them as
keyword strings too); unnamed `<Data>` items become `param1..N`, as Winlogbeat names them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# NXLog CE im_msvistalog's own fields: everything else at the top level is EventData/UserData.
NXLOG_CORE = frozenset(
    (
        "EventTime",
        "EventReceivedTime",
        "Hostname",
        "Keywords",
        "EventType",
        "SeverityValue",
        "Severity",
        "EventID",
        "SourceName",
        "ProviderGuid",
        "Version",
        "Task",
        "OpcodeValue",
        "RecordNumber",
        "ActivityID",
        "RelatedActivityID",
        "ProcessID",
        "ThreadID",
        "Channel",
        "Domain",
        "AccountName",
        "UserID",
        "AccountType",
        "Category",
        "Opcode",
        "Message",
        "SourceModuleName",
        "SourceModuleType",
        "MessageSourceAddress",
    )
)
NXLOG_EVENT_TYPES = frozenset(("CRITICAL", "ERROR", "WARNING", "INFO", "AUDIT_SUCCESS", "AUDIT_FAILURE", "VERBOSE"))
_NXLOG_LEVELS = {"1": "verbose", "2": "information", "3": "warning", "4": "error", "5": "critical"}
_EVT_LEVELS = {0: "information", 1: "critical", 2: "error", 3: "warning", 4: "information", 5: "verbose"}
WINLOGBEAT_KEPT = ("host", "agent", "ecs", "labels", "observer", "cloud")
MAX_FIELDS = 512  # an event with more EventData fields than this keeps the first ones


@dataclass
class WinRecord:
    shape: str  # "nxlog" | "winlogbeat" | "xml"
    channel: str
    provider: str
    event_id: int | None
    computer: str
    time: object = None  # text or number as the shape carries it (None: no time)
    record_id: int | None = None
    event_data: dict[str, Any] = field(default_factory=dict)
    user_data: dict[str, Any] = field(default_factory=dict)
    message: str | None = None
    level: str | None = None
    pid: int | None = None
    thread_id: int | None = None
    user_sid: str | None = None
    task: str | None = None
    opcode: str | None = None
    keywords: object = None
    version: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # a Winlogbeat document's own ECS fields


def shape_of(doc: dict[str, Any]) -> str | None:
    """'winlogbeat' | 'xml' | 'nxlog' | None, from the top-level keys only."""
    w = doc.get("winlog")
    if type(w) is dict and ("event_id" in w or "channel" in w):
        return "winlogbeat"
    e = doc.get("Event")
    if type(e) is dict and type(e.get("System")) is dict:
        return "xml"
    if "EventID" in doc and ("SourceName" in doc or "Channel" in doc) and ("Hostname" in doc or "EventTime" in doc):
        return "nxlog"
    return None


def record_of(doc: dict[str, Any]) -> WinRecord | None:
    shape = shape_of(doc)
    if shape == "winlogbeat":
        return _winlogbeat(doc)
    if shape == "xml":
        return _xml(doc["Event"])
    if shape == "nxlog":
        return _nxlog(doc)
    return None


def text(v: object) -> str:
    """An EventData value as Windows renders it."""
    if type(v) is str:
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return ""
    return str(v)


def _int(v: object) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        s = v.strip()
        if s.isdigit() and len(s) <= 18:
            return int(s)
    return None


def _obj(v: object) -> dict[str, Any]:
    """A JSON object as it is, anything else as an empty one (a shipper's field of another shape)."""
    return v if type(v) is dict else {}


def _str(v: object) -> str:
    return v if type(v) is str else ("" if v is None else str(v))


def _data(values: dict[str, Any]) -> dict[str, Any]:
    """EventData as text; lists stay lists of text (rare multi-valued items)."""
    if len(values) <= MAX_FIELDS:
        for v in values.values():
            if type(v) is not str:
                break
        else:
            return values  # the common case: every value already text (JSON keys always are)
    out: dict[str, Any] = {}
    for k, v in values.items():
        if len(out) >= MAX_FIELDS:
            break
        if type(v) is list:
            out[str(k)] = [text(x) for x in v]
        elif type(v) is dict:
            out[str(k)] = text(v.get("#text", ""))  # an XML element with attributes
        else:
            out[str(k)] = text(v)
    return out


def _nxlog(doc: dict[str, Any]) -> WinRecord:
    data = {k: v for k, v in doc.items() if k not in NXLOG_CORE}
    event_type = doc.get("EventType")
    if type(event_type) is str and event_type not in NXLOG_EVENT_TYPES:  # Sysmon's own EventType wrote over it
        data["EventType"] = event_type
    level = _NXLOG_LEVELS.get(_str(doc.get("SeverityValue")))
    return WinRecord(
        shape="nxlog",
        channel=_str(doc.get("Channel")),
        provider=_str(doc.get("SourceName")),
        event_id=_int(doc.get("EventID")),
        computer=_str(doc.get("Hostname")),
        time=doc.get("EventTime"),
        record_id=_int(doc.get("RecordNumber")),
        event_data=_data(data),
        message=doc["Message"] if type(doc.get("Message")) is str else None,
        level=level or (doc["Severity"].lower() if type(doc.get("Severity")) is str else None),
        pid=_int(doc.get("ProcessID")),
        thread_id=_int(doc.get("ThreadID")),
        user_sid=doc["UserID"] if type(doc.get("UserID")) is str else None,
        task=_str(doc.get("Category")) or None,
        opcode=_str(doc.get("Opcode")) or None,
        keywords=doc.get("Keywords"),
        version=_int(doc.get("Version")),
    )


def _winlogbeat(doc: dict[str, Any]) -> WinRecord:
    w: dict[str, Any] = doc["winlog"]
    event, log, host = _obj(doc.get("event")), _obj(doc.get("log")), _obj(doc.get("host"))
    proc, user = _obj(w.get("process")), _obj(w.get("user"))
    thread = _obj(proc.get("thread"))
    event_data, user_data = _obj(w.get("event_data")), _obj(w.get("user_data"))
    # the shipper's own ECS context; never its organization/socpipe claims (the batch says who sent it)
    extra = {k: doc[k] for k in WINLOGBEAT_KEPT if type(doc.get(k)) is dict}
    if type(doc.get("tags")) is list:
        extra["tags"] = [str(t) for t in doc["tags"]]
    return WinRecord(
        shape="winlogbeat",
        channel=_str(w.get("channel")),
        provider=_str(w.get("provider_name") or event.get("provider")),
        event_id=_int(w.get("event_id") if "event_id" in w else event.get("code")),
        computer=_str(w.get("computer_name") or host.get("name") or host.get("hostname")),
        time=doc.get("@timestamp") or event.get("created"),
        record_id=_int(w.get("record_id")),
        event_data=_data(event_data),
        user_data=_data(user_data),
        message=doc["message"] if type(doc.get("message")) is str else None,
        level=_str(log.get("level")).lower() or None,
        pid=_int(proc.get("pid")),
        thread_id=_int(thread.get("id")),
        user_sid=user["identifier"] if type(user.get("identifier")) is str else None,
        task=_str(w.get("task")) or None,
        opcode=_str(w.get("opcode")) or None,
        keywords=w.get("keywords"),
        version=_int(w.get("version")),
        extra=extra,
    )


def _attrs(node: object) -> dict[str, Any]:
    if type(node) is dict:
        a = node.get("#attributes")
        if type(a) is dict:
            return a
    return {}


def _xml_data(node: object) -> dict[str, Any]:
    """`EventData`/`UserData` of rendered XML: named items by name, unnamed `<Data>` as param1..N,
    the children of UserData's one wrapper element (`<LogFileCleared>`) by their names."""
    if type(node) is not dict:
        return {}
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k == "#attributes":
            continue
        if k == "Data":
            items = v.get("#text") if type(v) is dict else v
            for i, x in enumerate(items if type(items) is list else [items], 1):
                out[f"param{i}"] = x
        elif type(v) is dict and "#text" not in v:
            out.update((kk, vv) for kk, vv in v.items() if kk != "#attributes")
        else:
            out[k] = v
    return _data(out)


def _xml(event: dict[str, Any]) -> WinRecord:
    system: dict[str, Any] = event["System"]
    provider = _attrs(system.get("Provider"))
    eid = system.get("EventID")
    if type(eid) is dict:
        eid = eid.get("#text")
    execution = _attrs(system.get("Execution"))
    security = _attrs(system.get("Security"))
    level = _int(system.get("Level"))
    return WinRecord(
        shape="xml",
        channel=_str(system.get("Channel")),
        provider=_str(provider.get("Name") or provider.get("EventSourceName")),
        event_id=_int(eid),
        computer=_str(system.get("Computer")),
        time=_attrs(system.get("TimeCreated")).get("SystemTime"),
        record_id=_int(system.get("EventRecordID")),
        event_data=_xml_data(event.get("EventData")),
        user_data=_xml_data(event.get("UserData")),
        message=None,
        level=_EVT_LEVELS.get(level) if level is not None else None,
        pid=_int(execution.get("ProcessID")),
        thread_id=_int(execution.get("ThreadID")),
        user_sid=security["UserID"] if type(security.get("UserID")) is str else None,
        task=_str(system.get("Task")) or None,
        opcode=_str(system.get("Opcode")) or None,
        keywords=system.get("Keywords"),
        version=_int(system.get("Version")),
    )
