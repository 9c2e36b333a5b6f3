"""JSON lines: fields that are ECS are kept (flattened to dotted keys); everything else is nested
under the source's own name (the configured dataset's module, else the file's stem), so an
application's `level` or `user` never collides with ECS meaning."""

from __future__ import annotations

import json
import re
from pathlib import PurePath

from detectors.normalise.ecs import epoch_iso, offset_minutes, utc_iso

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


def source_name(dataset: str | None, path: str | None) -> str:
    if dataset and dataset not in ("json",):
        return _NAME.sub("_", dataset.partition(".")[0]) or "json"
    if path:
        stem = PurePath(path).name.partition(".")[0]
        name = _NAME.sub("_", stem).strip("_")
        if name and not name[0].isdigit():
            return name.lower()
    return "json"


def _flatten(obj: dict, prefix: str, out: dict, depth: int = 0) -> None:
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and depth < MAX_DEPTH:
            _flatten(v, key + ".", out, depth + 1)
        else:
            out[key] = v


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
        zone: str | int = tz
        if off:
            minutes = offset_minutes(off)
            if minutes is not None:
                zone = minutes
        return utc_iso(zone, int(y), int(mo), int(d), int(hh), int(mm), int(ss), frac or "")
    return None


def parse_json(text: str, dataset: str | None, tz: str, path: str | None) -> dict | None:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    name = source_name(dataset, path)
    flat: dict = {}
    _flatten(doc, "", flat)
    ev: dict = {"event.original": text, "event.kind": "event"}
    ts = None
    for key in _TIME_KEYS:
        if key in doc:
            ts = parse_time(doc[key], tz)
            if ts is not None:
                break
    for k, v in flat.items():
        root = k.partition(".")[0]
        if root in ECS_ROOTS:
            ev[k] = v
        else:
            ev[f"{name}.{k}"] = v
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
        ev[f"{name}.tags"] = ev.pop("tags")
    if not isinstance(ev.get("event.category", []), list):
        ev["event.category"] = [ev["event.category"]]
    if not isinstance(ev.get("event.type", []), list):
        ev["event.type"] = [ev["event.type"]]
    ev.setdefault("event.dataset", dataset or f"{name}.log")
    ev.setdefault("event.module", ev["event.dataset"].partition(".")[0])
    return ev
