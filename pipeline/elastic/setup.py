"""`socpipe es setup`: index templates (alerts, events) and ILM delete policies; idempotent.

A template shapes only indices created after it, and alert indices are `dynamic: strict`: on upgrade
day the current daily index would reject every alert carrying a new field. So setup also puts the
alert template's mapping onto the alert indices that already exist (new fields are added; a field
whose type changed is a `MappingConflict` naming the index and the field, never a silent skip).

What the cluster offers is detected, not assumed: ILM (absent from Elastic's integration-test
distribution and API-compatible servers) and the mapper-extras module (`match_only_text`, used for
event messages where present: no positions or norms, about half the index size of `text`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import ApiError, Elasticsearch

from pipeline.config import ElasticsearchConfig
from pipeline.elastic.indexer import error_reason
from pipeline.elastic.mappings import ALERT_MAPPINGS, EVENT_MAPPINGS, INCIDENT_MAPPINGS

log = logging.getLogger("socpipe.elastic")

TEMPLATE_PRIORITY = 200


@dataclass
class SetupReport:
    templates: list[str] = field(default_factory=list)
    ilm_policies: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=list)
    updated_indices: list[str] = field(default_factory=list)  # existing alert indices given the mapping


class MappingConflict(RuntimeError):
    """An existing index maps a field differently from the template (the index and field are named)."""

    def __init__(self, index: str, field_name: str, reason: str):
        super().__init__(
            f"index {index}: field {field_name} conflicts with the socpipe alert mapping ({reason}); "
            "reindex it or let it age out, then run `socpipe es setup` again"
        )
        self.index, self.field = index, field_name


@dataclass(frozen=True)
class Capabilities:
    """Optional server features the templates may use."""

    ilm: bool = False
    match_only_text: bool = False

    def names(self) -> list[str]:
        return [name for name, on in (("ilm", self.ilm), ("match_only_text", self.match_only_text)) if on]


def alerts_pattern(prefix: str) -> str:
    return f"{prefix}-alerts-*"


def events_pattern(prefix: str) -> str:
    return f"{prefix}-events-*"


def template_bodies(cfg: ElasticsearchConfig, prefix: str, caps: Capabilities | bool) -> dict[str, dict[str, Any]]:
    """Template name -> put_index_template kwargs (pure, so tests can inspect them)."""
    if isinstance(caps, bool):
        caps = Capabilities(ilm=caps)

    def settings(kind: str, refresh: str | None) -> dict[str, Any]:
        # Alerts get one replica as soon as a second node exists (green on a single node, safe on a cluster).
        s: dict[str, Any] = {"number_of_shards": 1}
        if kind == "events":
            s["number_of_replicas"] = 0
        else:
            s["auto_expand_replicas"] = "0-1"
        if refresh:
            s["refresh_interval"] = refresh
        if caps.ilm:
            s["index.lifecycle.name"] = f"{prefix}-{kind}"
        return s

    return {
        f"{prefix}-alerts": {
            "index_patterns": [alerts_pattern(prefix)],
            "priority": TEMPLATE_PRIORITY,
            "template": {"settings": settings("alerts", cfg.alerts_refresh_interval), "mappings": ALERT_MAPPINGS},
            "_meta": {"managed_by": "socpipe", "what": "alerts"},
        },
        f"{prefix}-incidents": {
            "index_patterns": [f"{prefix}-incidents-*"],
            "priority": TEMPLATE_PRIORITY,
            # same retention as alerts (their ILM policy)
            "template": {"settings": settings("alerts", cfg.alerts_refresh_interval), "mappings": INCIDENT_MAPPINGS},
            "_meta": {"managed_by": "socpipe", "what": "incidents"},
        },
        f"{prefix}-events": {
            "index_patterns": [events_pattern(prefix)],
            "priority": TEMPLATE_PRIORITY,
            "template": {"settings": settings("events", None), "mappings": event_mappings(caps)},
            "_meta": {"managed_by": "socpipe", "what": "events"},
        },
    }


def event_mappings(caps: Capabilities) -> dict[str, Any]:
    if not caps.match_only_text:
        return EVENT_MAPPINGS
    props = dict(EVENT_MAPPINGS["properties"])
    props["message"] = {"type": "match_only_text"}
    return {**EVENT_MAPPINGS, "properties": props}


def ilm_policies(cfg: ElasticsearchConfig, prefix: str) -> dict[str, dict[str, Any]]:
    def delete_after(days: int) -> dict[str, Any]:
        return {
            "phases": {
                "hot": {"min_age": "0ms", "actions": {}},
                "delete": {"min_age": f"{days}d", "actions": {"delete": {}}},
            }
        }

    return {
        f"{prefix}-alerts": delete_after(cfg.alerts_retention_days),
        f"{prefix}-events": delete_after(cfg.events_retention_days),
    }


def ilm_supported(es: Elasticsearch) -> bool:
    """ILM exists on the server (absent on OpenSearch-like or API-compatible servers)."""
    try:
        es.ilm.get_status()
        return True
    except ApiError as exc:
        if exc.meta.status in (400, 404, 405, 501):
            return False
        raise


def modules_everywhere(es: Elasticsearch) -> set[str]:
    """Modules and plugins present on every node (a template may only rely on those)."""
    try:
        nodes = es.nodes.info(metric="plugins", filter_path="nodes.*.modules.name,nodes.*.plugins.name").get(
            "nodes", {}
        )
    except ApiError as exc:
        if exc.meta.status in (400, 403, 404, 405, 501):
            return set()
        raise
    sets = [{m["name"] for m in n.get("modules", []) + n.get("plugins", [])} for n in nodes.values()]
    return set.intersection(*sets) if sets else set()


def detect(es: Elasticsearch) -> Capabilities:
    return Capabilities(ilm=ilm_supported(es), match_only_text="mapper-extras" in modules_everywhere(es))


def setup(es: Elasticsearch, cfg: ElasticsearchConfig, prefix: str | None = None) -> SetupReport:
    """Install/overwrite policies then templates. Running it twice changes nothing."""
    prefix = prefix or cfg.index_prefix
    report = SetupReport()
    caps = detect(es)
    report.capabilities = caps.names()
    if caps.ilm:
        for name, policy in ilm_policies(cfg, prefix).items():
            es.ilm.put_lifecycle(name=name, policy=policy)
            report.ilm_policies.append(name)
    else:
        msg = "server has no ILM API: retention policies skipped (delete old daily indices by name instead)"
        log.warning("es_setup ilm=skipped reason=%r", msg)
        report.warnings.append(msg)
    for name, body in template_bodies(cfg, prefix, caps).items():
        es.indices.put_index_template(name=name, **body)
        report.templates.append(name)
    report.updated_indices = update_existing(es, alerts_pattern(prefix), ALERT_MAPPINGS)
    log.info("es_setup templates=%s ilm=%s", ",".join(report.templates), ",".join(report.ilm_policies) or "-")
    return report


def update_existing(es: Elasticsearch, pattern: str, mappings: dict[str, Any]) -> list[str]:
    """Put `mappings` (fields, dynamic setting) onto every open index matching `pattern`, one at a time
    so a conflict names its index. Fields already mapped the same way are no-ops, so it is idempotent.

    Only alerts: their mapping is strict. Events are `dynamic: true` and take new fields by themselves
    (and an events index made before mapper-extras keeps `message` as `text`, which is no conflict)."""
    existing = es.indices.get_mapping(index=pattern, allow_no_indices=True, expand_wildcards="open")
    updated: list[str] = []
    conflicts: list[MappingConflict] = []
    for index in sorted(existing, reverse=True):  # newest first; a conflict stops no other index
        try:
            es.indices.put_mapping(index=index, **mappings)
        except ApiError as exc:
            if exc.meta.status != 400:
                raise
            reason = error_reason(exc.body.get("error") if isinstance(exc.body, dict) else exc.body)
            found = re.search(r"(?:mapper|field) \[([^\]]+)\]", reason)
            conflicts.append(MappingConflict(index, found.group(1) if found else "?", reason))
            continue
        updated.append(index)
    if conflicts:
        if len(conflicts) > 1:
            conflicts[0].args = (
                f"{conflicts[0]} (and {len(conflicts) - 1} more: {', '.join(c.index for c in conflicts[1:])})",
            )
        raise conflicts[0]
    if updated:
        log.info("es_setup mapping_updated indices=%s", ",".join(updated))
    return updated
