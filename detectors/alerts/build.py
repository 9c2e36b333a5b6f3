"""Alert documents (nested ECS, Elastic Security-like) from Sigma detections and anomaly findings.

Pure: no I/O. The `_id` comes from the detection's deterministic id and `@timestamp` from event
time (the detection's last event / the anomaly window's end), never from the wall clock, so a
replay lands in the same daily index with the same `_id` and `op_type=create` turns it into a 409.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from detectors.alerts.attack import threat_from_tags
from detectors.alerts.evidence import bound_evidence
from detectors.alerts.nested import to_nested
from detectors.anomaly.finding import AnomalyFinding
from detectors.common.severity import Severity
from detectors.common.times import epoch_us, iso_ms, to_datetime, to_epoch
from detectors.finding import Finding
from detectors.sigma.detection import Detection

STATUSES = ("open", "acknowledged", "closed")

# Entity fields copied to the top of the alert, with the type their mapping has.
ENTITY_FIELDS: dict[str, str] = {
    "host.name": "keyword",
    "host.hostname": "keyword",
    "host.id": "keyword",
    "host.ip": "ip",
    "source.ip": "ip",
    "source.port": "port",
    "source.address": "keyword",
    "source.domain": "keyword",
    "destination.ip": "ip",
    "destination.port": "port",
    "destination.address": "keyword",
    "user.name": "keyword",
    "user.id": "keyword",
    "user.domain": "keyword",
    "user.target.name": "keyword",
    "process.name": "keyword",
    "process.executable": "keyword",
    "url.domain": "keyword",
    "url.path": "keyword",
}


@dataclass(frozen=True, slots=True)
class AgencyInfo:
    """The agency an alert belongs to (organization.* in ECS, plus our service tier)."""

    id: str
    name: str = ""
    tier: str = ""


def alert_index_name(doc_or_time: Mapping[str, Any] | str | datetime, prefix: str = "socpipe") -> str:
    """Daily index from the alert's own @timestamp: `<prefix>-alerts-YYYY.MM.DD`."""
    return _daily(prefix, "alerts", doc_or_time)


def event_index_name(doc_or_time: Mapping[str, Any] | str | datetime, prefix: str = "socpipe") -> str:
    """Daily index for normalised events: `<prefix>-events-YYYY.MM.DD`."""
    return _daily(prefix, "events", doc_or_time)


def _daily(prefix: str, kind: str, doc_or_time: Any) -> str:
    ts = doc_or_time.get("@timestamp") if isinstance(doc_or_time, Mapping) else doc_or_time
    dt = to_datetime(ts)
    if dt is None:
        raise ValueError(f"no readable @timestamp to name the {kind} index: {ts!r}")
    return f"{prefix}-{kind}-{dt.astimezone(UTC):%Y.%m.%d}"


def build_alert(
    item: Finding, agency: AgencyInfo | None = None, now: float | datetime | str | None = None
) -> dict[str, Any]:
    """A nested alert document with `_id`, from a `Detection` or an `AnomalyFinding` (`detectors.finding`)."""
    created = time.time() if now is None else to_epoch(now)
    if created is None:
        raise ValueError(f"unreadable `now`: {now!r}")
    if isinstance(item, Detection):
        doc = _from_detection(item)
    elif isinstance(item, AnomalyFinding):
        doc = _from_finding(item)
    else:
        raise TypeError(f"cannot build an alert from {type(item).__name__}")
    created_s = iso_ms(created)
    doc["event"]["created"] = created_s
    doc["event"]["ingested"] = created_s
    _set_agency(doc, agency)
    doc["socpipe"]["workflow"] = new_workflow(created_s)
    doc["kibana"]["alert"]["workflow_status"] = "open"
    return doc


def new_workflow(at: str) -> dict[str, Any]:
    return {
        "status": "open",
        "updated_at": at,
        "updated_by": "socpipe",
        "notes": [],
        "history": [{"at": at, "actor": "socpipe", "action": "create", "outcome": "applied", "to_status": "open"}],
    }


def _base(
    item: Finding,
    level: Severity,
    rule: dict[str, Any],
    tags: list[str],
    kind: str,
    entities: Mapping[str, Any],
) -> dict[str, Any]:
    """The parts every alert has, from the fields every finding has."""
    start_ts, end_ts = item.start_ts, item.end_ts
    start_s, end_s = iso_ms(start_ts), iso_ms(end_ts)
    severity = level.score
    evidence = item.evidence
    event: dict[str, Any] = {
        "kind": "alert",
        "module": "socpipe",
        "dataset": "socpipe.alerts",
        "id": item.alert_id,
        "start": start_s,
        "end": end_s,
        "severity": severity,
        "risk_score": float(severity),
        "duration": max(0, (epoch_us(end_ts) // 1000 - epoch_us(start_ts) // 1000) * 1_000_000),  # ns, of the ms shown
    }
    kept, fields = bound_evidence(evidence)
    datasets = sorted({str(e.get("event.dataset")) for e in evidence if e.get("event.dataset")})
    doc: dict[str, Any] = {
        "_id": item.alert_id,
        "@timestamp": end_s,
        "event": event,
        "rule": rule,
        "tags": [str(t) for t in tags],
        "kibana": {
            "alert": {
                "severity": level.kibana,
                "risk_score": float(severity),
                "rule": {"name": rule.get("name", ""), "uuid": rule.get("id", "")},
            }
        },
        "socpipe": {
            "kind": kind,
            "level": str(level),
            "evidence": kept,
            "evidence_count": len(evidence),
            "evidence_fields": fields,
            "datasets": datasets,
            "suppression": {"count": 0, "first_seen": start_s, "last_seen": end_s},
        },
    }
    threat = threat_from_tags(tags)
    if threat:
        doc["threat"] = threat
    doc.update(to_nested(entity_fields([entities, *evidence])))
    return doc


def _from_detection(det: Detection) -> dict[str, Any]:
    level = det.severity
    rule = {
        "id": det.rule_id,
        "uuid": det.rule_id,
        "name": det.rule_title or det.rule_id,
        "description": det.description,
        "reference": [str(r) for r in det.references],
        "author": det.author,
        "ruleset": "sigma",
        "category": det.kind,
    }
    doc = _base(det, level, rule, det.tags, "sigma", det.group)
    doc["socpipe"]["detection"] = {
        "kind": det.kind,
        "count": det.count,
        "dedup_key": det.dedup_key,
        "id": det.detection_id,
        "group": _strings(det.group),
        "metric": _strings(det.metric),
        "falsepositives": [str(f) for f in det.falsepositives],
    }
    doc["socpipe"]["rule"] = {"level": str(level), "status": det.status, "path": det.rule_path}
    doc["socpipe"]["agencies"] = [str(a) for a in det.agencies]
    return doc


def _from_finding(f: AnomalyFinding) -> dict[str, Any]:
    level = f.severity
    rule = {
        "id": f"anomaly:{f.model}",
        "uuid": f"anomaly:{f.model}",
        "name": f"Anomaly: {f.model}",
        "description": f"Anomaly model {f.model} v{f.model_version} ({f.profile}): score "
        f"{f.score:.3f} >= threshold {f.threshold:.3f}",
        "reference": [],
        "author": "socpipe",
        "ruleset": "anomaly",
        "category": f.profile,
        "version": f.model_version,
    }
    doc = _base(f, level, rule, [], "anomaly", f.entity)
    anomaly: dict[str, Any] = {
        "model": f.model,
        "model_version": f.model_version,
        "profile": f.profile,
        "score": float(f.score),
        "threshold": float(f.threshold),
        "entity": _strings(f.entity),
        "top_features": [
            {"name": str(n), "value": float(v), "baseline": float(b), "deviation": float(z)}
            for n, v, b, z in f.top_features
        ],
        "event_count": f.event_count,
    }
    reasons = [  # per-request models: which parameter, which property, seen vs expected
        {
            "parameter": str(r.get("parameter", "")),
            "property": str(r.get("property", "")),
            "points": float(r.get("points", 0.0)),
            "observed": str(r.get("observed", ""))[:256],
            "expected": str(r.get("expected", ""))[:256],
        }
        for r in f.reasons
    ]
    if reasons:
        anomaly["reasons"] = reasons
        top = reasons[0]
        doc["rule"]["description"] += f"; top reason: {top['property']} of parameter {top['parameter']}"
    doc["socpipe"]["anomaly"] = anomaly
    doc["socpipe"]["detection"] = {
        "kind": "anomaly",
        "count": f.event_count,
        "dedup_key": f.dedup_key,
        "id": f.finding_id,
        "group": _strings(f.entity),
        "metric": {},
        "falsepositives": [],
    }
    doc["socpipe"]["agencies"] = f.agencies
    return doc


def _set_agency(doc: dict[str, Any], agency: AgencyInfo | None) -> None:
    agencies = doc["socpipe"].get("agencies") or []
    if agency is None and len(agencies) == 1:
        agency = AgencyInfo(id=agencies[0])
    if agency is None:
        return
    doc["organization"] = {"id": agency.id, **({"name": agency.name} if agency.name else {})}
    doc["socpipe"]["agency"] = {"id": agency.id, "name": agency.name or agency.id, "tier": str(agency.tier or "")}
    if agency.id not in agencies:
        doc["socpipe"]["agencies"] = sorted([*agencies, agency.id])


def entity_fields(sources: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """First valid value of each entity field over the sources, in order (group-by values first)."""
    out: dict[str, Any] = {}
    for src in sources:
        for key in _ENTITY_KEYS.intersection(src):  # C-level: the few entity fields this source has
            if key in out:
                continue
            value = _valid(src[key], ENTITY_FIELDS[key])
            if value is not None:
                out[key] = value
    return out


_ENTITY_KEYS = frozenset(ENTITY_FIELDS)


def _valid(value: Any, kind: str) -> Any:
    """A value its mapping accepts, or None: a bad IP in one event must not reject the whole alert."""
    if isinstance(value, list):
        vals = [v for v in (_valid(x, kind) for x in value[:16]) if v is not None]
        return vals or None
    if value is None or isinstance(value, (dict, bool)):
        return None
    if kind == "ip":
        text = value if type(value) is str else str(value)
        hit = _IPS.get(text)
        if hit is None:
            try:
                hit = str(ipaddress.ip_address(text.strip()))
            except ValueError:
                hit = ""
            if len(_IPS) >= 4096:
                _IPS.clear()
            _IPS[text] = hit
        return hit or None
    if kind == "port":
        try:
            port = int(value)
        except (TypeError, ValueError):
            return None
        return port if 0 <= port <= 65535 else None
    text = str(value)
    return text[:1024] if text else None


_IPS: dict[str, str] = {}  # text -> canonical address ("" = not one); bounded


def _strings(d: Mapping[str, Any]) -> dict[str, Any]:
    """Values as strings (or lists of strings): these land in `flattened` fields."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, (list, tuple)):
            out[str(k)] = [str(x) for x in v]
        elif v is not None:
            out[str(k)] = str(v)
    return out
