"""Explicit mappings for alert and event indices (the contract Kibana saved objects are tested against).

Alerts are `dynamic: strict`: a field the builder invents by mistake is rejected (dead-letter, with
the reason) instead of silently becoming an unsearchable or wrongly-typed field. Free-form parts
(evidence events, group-by values, anomaly entity) are `flattened`: searchable as keywords, no
mapping explosion, no type conflicts from hostile logs.
"""

from __future__ import annotations

from typing import Any

KW = {"type": "keyword", "ignore_above": 1024}
TEXT_KW = {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 1024}}}
DATE = {"type": "date"}
LONG = {"type": "long"}
FLOAT = {"type": "float"}
IP = {"type": "ip"}
BOOL = {"type": "boolean"}
FLAT = {"type": "flattened", "ignore_above": 2048}


def obj(**props: Any) -> dict[str, Any]:
    return {"properties": props}


_ENDPOINT = obj(ip=IP, port=LONG, address=KW, domain=KW)

ALERT_PROPERTIES: dict[str, Any] = {
    "@timestamp": DATE,
    "tags": KW,
    "message": {"type": "text"},
    "event": obj(
        kind=KW,
        module=KW,
        dataset=KW,
        id=KW,
        start=DATE,
        end=DATE,
        created=DATE,
        ingested=DATE,
        severity=LONG,
        risk_score=FLOAT,
        duration=LONG,
    ),
    "rule": obj(
        id=KW,
        uuid=KW,
        name=TEXT_KW,
        description={"type": "text"},
        reference=KW,
        author=KW,
        ruleset=KW,
        category=KW,
        version=KW,
    ),
    "threat": obj(
        framework=KW,
        tactic=obj(id=KW, name=KW, reference=KW),
        technique=obj(id=KW, name=KW, reference=KW, subtechnique=obj(id=KW, name=KW, reference=KW)),
    ),
    "kibana": obj(alert=obj(severity=KW, risk_score=FLOAT, workflow_status=KW, rule=obj(name=KW, uuid=KW))),
    "organization": obj(id=KW, name=KW),
    "host": obj(name=KW, hostname=KW, id=KW, ip=IP),
    "source": _ENDPOINT,
    "destination": _ENDPOINT,
    "user": obj(name=KW, id=KW, domain=KW, target=obj(name=KW)),
    "process": obj(name=KW, executable=KW),
    "url": obj(domain=KW, path=KW),
    "socpipe": obj(
        kind=KW,
        level=KW,
        agency=obj(id=KW, name=KW, tier=KW),
        agencies=KW,
        datasets=KW,
        evidence=FLAT,
        evidence_count=LONG,
        evidence_fields=KW,
        suppression=obj(count=LONG, first_seen=DATE, last_seen=DATE),
        incident=obj(id=KW),  # the incident the alert belongs to (pipeline/elastic/incidents.py)
        # one alert per episode (detectors/alerts/episodes.py); `state` is for merging, not searching
        episode=obj(
            quiet_s=FLOAT,
            detections=LONG,
            events=LONG,
            first_seen=DATE,
            last_seen=DATE,
            distinct=FLAT,
            state={"type": "object", "enabled": False},
        ),
        detection=obj(kind=KW, count=LONG, dedup_key=KW, id=KW, group=FLAT, metric=FLAT, falsepositives=KW),
        rule=obj(level=KW, status=KW, path=KW),
        anomaly=obj(
            model=KW,
            model_version=KW,
            profile=KW,
            score=FLOAT,
            threshold=FLOAT,
            entity=FLAT,
            event_count=LONG,
            top_features=obj(name=KW, value=FLOAT, baseline=FLOAT, deviation=FLOAT),
            reasons=obj(parameter=KW, property=KW, points=FLOAT, observed=KW, expected=KW),
        ),
        workflow=obj(
            status=KW,
            assignee=KW,
            closing_reason=KW,
            updated_at=DATE,
            updated_by=KW,
            acknowledged_at=DATE,
            acknowledged_by=KW,
            closed_at=DATE,
            closed_by=KW,
            notes=obj(at=DATE, author=KW, text={"type": "text"}),
            history=obj(
                at=DATE,
                actor=KW,
                action=KW,
                outcome=KW,
                from_status=KW,
                to_status=KW,
                detail={"type": "text"},
                seq_no=LONG,
            ),
        ),
    ),
}

ALERT_MAPPINGS: dict[str, Any] = {"dynamic": "strict", "properties": ALERT_PROPERTIES}

# Incidents (detectors/alerts/incidents.py): alerts of one agency sharing an entity, own indices
INCIDENT_PROPERTIES: dict[str, Any] = {
    "@timestamp": DATE,
    "event": obj(kind=KW, start=DATE, end=DATE, severity=LONG),
    "organization": ALERT_PROPERTIES["organization"],
    "socpipe": obj(
        incident=obj(
            title=TEXT_KW,
            level=KW,
            severity=KW,
            alerts=KW,
            alert_count=LONG,
            events=LONG,
            tactics=KW,
            rules=KW,
            entities=FLAT,
            entity_keys=KW,
            timeline=FLAT,
        ),
        workflow=ALERT_PROPERTIES["socpipe"]["properties"]["workflow"],
    ),
}
INCIDENT_MAPPINGS: dict[str, Any] = {"dynamic": "strict", "properties": INCIDENT_PROPERTIES}

# Events: the ECS fields analysts pivot on are typed; anything else a parser emits becomes a keyword
# (strings) so one odd log line can never fix a field's type for the whole day.
EVENT_PROPERTIES: dict[str, Any] = {
    "@timestamp": DATE,
    "message": {"type": "text"},
    "tags": KW,
    "event": obj(
        kind=KW,
        category=KW,
        type=KW,
        action=KW,
        outcome=KW,
        dataset=KW,
        module=KW,
        id=KW,
        original={"type": "text", "index": False},
        created=DATE,
        ingested=DATE,
        severity=LONG,
    ),
    "organization": obj(id=KW, name=KW),
    "agent": obj(id=KW, name=KW, type=KW, version=KW),
    "host": obj(name=KW, hostname=KW, id=KW, ip=IP),
    "source": _ENDPOINT,
    "destination": _ENDPOINT,
    "client": _ENDPOINT,
    "user": obj(name=KW, id=KW, domain=KW, target=obj(name=KW)),
    "process": obj(name=KW, pid=LONG, executable=KW, command_line=KW),
    "url": obj(original=KW, domain=KW, path=KW, query=KW),
    "http": obj(request=obj(method=KW), response=obj(status_code=LONG, bytes=LONG)),
    "log": obj(file=obj(path=KW), offset=LONG),
    # Windows: each provider names its own EventData fields (hundreds across channels); flattened keeps
    # them searchable as keywords without one mapped field each (the index's field limit)
    "winlog": obj(
        channel=KW,
        provider_name=KW,
        event_id=KW,
        computer_name=KW,
        record_id=LONG,
        event_data=FLAT,
        user_data=FLAT,
    ),
}

EVENT_MAPPINGS: dict[str, Any] = {
    "dynamic": True,
    "dynamic_templates": [
        {"strings_as_keyword": {"match_mapping_type": "string", "mapping": {"type": "keyword", "ignore_above": 1024}}},
        {"longs_as_float": {"match_mapping_type": "long", "mapping": {"type": "double"}}},
    ],
    "properties": EVENT_PROPERTIES,
}


def leaf_fields(properties: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Every mapped leaf field (dotted) with its type, multi-fields included (`rule.name.keyword`)."""
    out: dict[str, str] = {}
    for name, spec in properties.items():
        dotted = f"{prefix}{name}"
        if "properties" in spec:
            out.update(leaf_fields(spec["properties"], dotted + "."))
            continue
        out[dotted] = spec.get("type", "object")
        for sub, sub_spec in (spec.get("fields") or {}).items():
            out[f"{dotted}.{sub}"] = sub_spec["type"]
    return out
