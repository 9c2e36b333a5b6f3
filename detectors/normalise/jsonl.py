"""JSON lines: fields that are ECS are kept (flattened to dotted keys); everything else is nested
under the source's own name (the configured dataset's module, else the file's stem), so an
application's `level` or `user` never collides with ECS meaning.

An ECS document that names its own module (`event.module`, else the prefix of `event.dataset`) keeps
that module's namespace and socpipe's own fields where they are: `auditd.log.a0` of an auditd event
(as `socpipe parse` writes it, or Filebeat's auditd module) stays `auditd.log.a0`, so `parse | scan`
raises what `scan` raises on the raw file.

Decoding is orjson (~4x the stdlib); the stdlib decoder is the fallback for what orjson refuses
(NaN, integers beyond 64 bits). Flattening is iterative and bounded to MAX_DEPTH levels.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import PurePath
from typing import Any

import orjson

from detectors.normalise.ecs import epoch_iso, utc_iso, zone_of
from detectors.normalise.winlog import shape_of

ECS_ROOTS = frozenset(
    (
        "agent",
        "as",
        "client",
        "cloud",
        "container",
        "data_stream",
        "destination",
        "dll",
        "dns",
        "ecs",
        "email",
        "error",
        "event",
        "faas",
        "file",
        "group",
        "host",
        "http",
        "log",
        "network",
        "observer",
        "orchestrator",
        "organization",
        "package",
        "process",
        "registry",
        "related",
        "rule",
        "server",
        "service",
        "source",
        "threat",
        "tls",
        "trace",
        "transaction",
        "span",
        "url",
        "user",
        "user_agent",
        "vulnerability",
        "labels",
        "message",
        "tags",
        "@timestamp",
    )
)
_TIME_KEYS = ("@timestamp", "timestamp", "time", "ts", "date", "datetime", "eventTime")
_ISO = re.compile(r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?\s*(Z|[+-]\d\d:?\d\d)?")
_NAME = re.compile(r"[^A-Za-z0-9_]+")
MAX_DEPTH = 8


# own namespace (None: none declared) -> top-level keys seen that stay where they are; bounded, as
# keys come from the logs
_IN_PLACE: dict[str | None, set[str]] = {}
_KEY_CACHE = 4096


@lru_cache(maxsize=1024)
def source_name(dataset: str | None, path: str | None) -> str:
    if dataset and dataset not in ("json",):
        return _NAME.sub("_", dataset.partition(".")[0]) or "json"
    if path:
        stem = PurePath(path).name.partition(".")[0]
        name = _NAME.sub("_", stem).strip("_")
        if name and not name[0].isdigit():
            return name.lower()
    return "json"


def _flatten_into(obj: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    """Dotted keys of `obj` under `prefix` into `out`, in document order; iterative, depth-bounded
    (an object nested deeper than MAX_DEPTH is kept whole as the value of its key)."""
    stack = [(iter(obj.items()), prefix)]
    while stack:
        items, pre = stack[-1]
        for k, v in items:
            if type(v) is dict and v and len(stack) < MAX_DEPTH:
                stack.append((iter(v.items()), f"{pre}{k}."))
                break
            out[pre + k] = v
        else:
            stack.pop()


def _own_namespace(doc: dict[str, Any]) -> str | None:
    """The module an ECS document declares for itself (flat or nested `event.module`/`event.dataset`)."""
    event = doc.get("event")
    module = doc.get("event.module")
    if module is None and type(event) is dict:
        module = event.get("module")
    if module is None:
        dataset = doc.get("event.dataset")
        if dataset is None and type(event) is dict:
            dataset = event.get("dataset")
        if type(dataset) is str:
            module = dataset.partition(".")[0]
    return module if type(module) is str and module else None


def decode(text: str | bytes) -> Any:
    """One JSON value, or raise ValueError."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass  # NaN/Infinity, integers beyond 64 bits, nesting beyond orjson's limit: the stdlib decides
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def parse_time(value: object, tz: str) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        v = float(value)
        if v > 1e14:  # microseconds / nanoseconds
            v = v / 1e9 if v > 1e17 else v / 1e6
        elif v > 1e11:  # milliseconds
            v = v / 1000
        return epoch_iso(v)
    if isinstance(value, str):
        m = _ISO.match(value)
        if m is None:
            return None
        y, mo, d, hh, mm, ss, frac, off = m.groups()
        zone = zone_of(off, tz)
        return utc_iso(zone, int(y), int(mo), int(d), int(hh), int(mm), int(ss), frac or "")
    return None


def _all_in_place(doc: dict[str, Any], own: str | None) -> bool:
    """Every top-level key is ECS (or the document's own module / socpipe's): no key moves."""
    known = _IN_PLACE.get(own)
    if known is None:
        if len(_IN_PLACE) >= _KEY_CACHE:
            _IN_PLACE.clear()
        known = _IN_PLACE[own] = set()
    unknown = doc.keys() - known
    for k in unknown:
        root = k.partition(".")[0]
        if root in ECS_ROOTS or (own is not None and (root == own or root == "socpipe")):
            if len(known) < _KEY_CACHE:
                known.add(k)
        else:
            return False
    return True


def _place(doc: dict[str, Any], own: str | None, ev: dict[str, Any], dataset: str | None, path: str | None) -> None:
    name = None
    for k, v in doc.items():
        root = k.partition(".")[0]
        if root in ECS_ROOTS or (own is not None and (root == own or root == "socpipe")):
            prefix = ""
        else:
            if name is None:
                name = source_name(dataset, path)
            prefix = f"{name}."
        if type(v) is dict and v:
            _flatten_into(v, f"{prefix}{k}.", ev)
        else:
            ev[prefix + k] = v


def parse_json(text: str, dataset: str | None, tz: str, path: str | None) -> dict[str, Any] | None:
    try:
        doc = decode(text)
    except ValueError:
        return None
    if type(doc) is not dict:
        return None
    if shape_of(doc) is not None:  # a forwarded Windows event (NXLog, Winlogbeat, rendered XML)
        from detectors.normalise import windows  # imported on the first one: `rules lint` never needs it

        return windows.from_doc(doc, text, parse_time, tz)
    ev: dict[str, Any] = {"event.original": text, "event.kind": "event"}
    ts = None
    for key in _TIME_KEYS:
        if key in doc:
            ts = parse_time(doc[key], tz)
            if ts is not None:
                break
    own = _own_namespace(doc)
    if dict not in map(type, doc.values()) and _all_in_place(doc, own):
        ev.update(doc)  # a flat ECS document (`socpipe parse` output): every key stays where it is
    else:
        _place(doc, own, ev, dataset, path)
    ev["@timestamp"] = ts if ts is not None else ("" if not any(k in doc for k in _TIME_KEYS) else None)
    if ev["@timestamp"] == "":
        del ev["@timestamp"]
    if "message" not in ev:
        for key in ("msg", "log", "message"):
            if isinstance(doc.get(key), str):
                ev["message"] = doc[key]
                break
        else:
            ev["message"] = text
    if "tags" in ev and not isinstance(ev["tags"], list):
        ev[f"{source_name(dataset, path)}.tags"] = ev.pop("tags")
    if not isinstance(ev.get("event.category", []), list):
        ev["event.category"] = [ev["event.category"]]
    if not isinstance(ev.get("event.type", []), list):
        ev["event.type"] = [ev["event.type"]]
    if "event.dataset" not in ev:
        ev["event.dataset"] = dataset or f"{source_name(dataset, path)}.log"
    ev.setdefault("event.module", ev["event.dataset"].partition(".")[0])
    return ev
