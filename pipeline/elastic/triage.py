"""Triage operations on alerts in Elasticsearch with optimistic concurrency (if_seq_no/if_primary_term).

A change is computed from the version the caller saw (or the current one) and written only if the
alert has not changed since; otherwise `AlertConflict` is raised and the losing attempt is still
appended to the alert's history (outcome "conflict"), so the audit trail shows both analysts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from elasticsearch import ConflictError, Elasticsearch, NotFoundError

from detectors.common import iso_ms, parse_duration, to_epoch
from pipeline.triage.workflow import Change, apply_change, history_entry

log = logging.getLogger("socpipe.triage")

Version = tuple[int, int]  # (seq_no, primary_term)


class AlertNotFound(LookupError):
    pass


class AmbiguousAlertId(LookupError):
    """An id prefix that more than one alert starts with."""

    def __init__(self, prefix: str, candidates: list[str]):
        self.prefix, self.candidates = prefix, candidates
        super().__init__(f"{prefix!r} is the start of several alert ids: {', '.join(candidates)}; give more of it")


MIN_PREFIX = 6  # shortest id prefix accepted (ids are 32+ hex digits)
_HEX = frozenset("0123456789abcdef")


class AlertConflict(Exception):
    """Someone changed the alert since the caller's version; nothing was overwritten."""

    def __init__(self, alert_id: str, expected: Version | None, current: Version, status: str):
        self.alert_id, self.expected, self.current, self.status = alert_id, expected, current, status
        super().__init__(
            f"alert {alert_id} was changed by someone else (now {status}, version "
            f"{format_version(current)}); reload it and try again"
        )


def format_version(v: Version) -> str:
    return f"{v[0]}:{v[1]}"


def parse_version(text: str | None) -> Version | None:
    """`"12:1"` (as `format_version` prints it; a leading `v` is tolerated) -> (12, 1); None/"" ->
    None; anything else raises ValueError."""
    if not text:
        return None
    body = str(text).strip().strip('"')
    if body[:1] in ("v", "V"):
        body = body[1:]
    seq, _, term = body.partition(":")
    if not seq.isascii() or not term.isascii():
        raise ValueError(f"not a version: {text!r}")
    return int(seq), int(term or 1)


@dataclass
class AlertRecord:
    id: str
    index: str
    version: Version
    source: dict[str, Any]

    @property
    def status(self) -> str:
        status: str = self.source.get("socpipe", {}).get("workflow", {}).get("status", "open")
        return status


@dataclass
class AlertFilter:
    status: list[str] = field(default_factory=list)
    severity: list[str] = field(default_factory=list)  # kibana.alert.severity values
    agency: list[str] = field(default_factory=list)  # organization.id
    rule: str | None = None  # rule id, or words of the rule name
    assignee: str | None = None
    since: str | None = None  # ISO time or relative "24h", "7d", "30m"
    until: str | None = None

    def query(self, now: datetime | None = None) -> dict[str, Any]:
        """Elasticsearch bool query (pure)."""
        filters: list[dict[str, Any]] = []
        for fname, values in (
            ("socpipe.workflow.status", self.status),
            ("kibana.alert.severity", self.severity),
            ("organization.id", self.agency),
        ):
            if values:
                filters.append({"terms": {fname: list(values)}})
        if self.assignee:
            filters.append({"term": {"socpipe.workflow.assignee": self.assignee}})
        if self.rule:
            filters.append(
                {
                    "bool": {
                        "should": [
                            {"term": {"rule.id": self.rule}},
                            {"match": {"rule.name": {"query": self.rule, "operator": "and"}}},
                        ],
                        "minimum_should_match": 1,
                    }
                }
            )
        rng = {}
        if self.since:
            rng["gte"] = resolve_time(self.since, now)
        if self.until:
            rng["lte"] = resolve_time(self.until, now)
        if rng:
            filters.append({"range": {"@timestamp": rng}})
        return {"bool": {"filter": filters}} if filters else {"match_all": {}}


def resolve_time(text: str, now: datetime | None = None) -> str:
    """`24h`/`7d`/`30m` before now, or an ISO time -> ISO UTC string; ValueError otherwise."""
    t = str(text).strip()
    try:
        ago = parse_duration(t, allow_zero=True) if t[-1:].isalpha() else None
    except ValueError:
        ago = None
    if ago is not None:
        try:
            return iso_ms((now or datetime.now(UTC)).timestamp() - ago)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"not a time: {text!r} (too far back)") from None
    ts = to_epoch(t)
    if ts is None:
        raise ValueError(f"not a time: {text!r} (use ISO-8601 or 30m, 24h, 7d)")
    try:
        return iso_ms(ts)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"not a time: {text!r} (out of range)") from None


class TriageService:
    def __init__(self, es: Elasticsearch, prefix: str = "socpipe", refresh: bool | str = "wait_for"):
        self.es = es
        self.prefix = prefix
        self.refresh = refresh
        self._where: dict[str, str] = {}  # alert id -> index (ids are unique across days by construction)

    @property
    def pattern(self) -> str:
        return f"{self.prefix}-alerts-*"

    def list(self, flt: AlertFilter | None = None, limit: int = 50) -> list[AlertRecord]:
        resp = self.es.search(
            index=self.pattern,
            query=(flt or AlertFilter()).query(),
            size=max(1, min(limit, 1000)),
            sort=[{"@timestamp": "desc"}],
            seq_no_primary_term=True,
            source_excludes=["socpipe.evidence"],
            ignore_unavailable=True,
            allow_no_indices=True,
        )
        return [
            AlertRecord(h["_id"], h["_index"], (h["_seq_no"], h["_primary_term"]), h["_source"])
            for h in resp["hits"]["hits"]
        ]

    def get(self, alert_id: str) -> AlertRecord:
        """Realtime read of the current version (a search may lag a refresh behind). `alert_id` may
        be a unique prefix of the id (at least MIN_PREFIX hex digits), as `alerts list` shows it."""
        alert_id, index = self._locate(alert_id)
        try:
            doc = self.es.get(index=index, id=alert_id)
        except NotFoundError:
            self._where.pop(alert_id, None)
            raise AlertNotFound(alert_id) from None
        return AlertRecord(alert_id, index, (doc["_seq_no"], doc["_primary_term"]), doc["_source"])

    def _locate(self, alert_id: str) -> tuple[str, str]:
        if alert_id in self._where:
            return alert_id, self._where[alert_id]
        resp = self.es.search(
            index=self.pattern,
            query={"ids": {"values": [alert_id]}},
            size=1,
            source=False,
            ignore_unavailable=True,
            allow_no_indices=True,
        )
        hits = resp["hits"]["hits"]
        if not hits and MIN_PREFIX <= len(alert_id) < 64 and set(alert_id.lower()) <= _HEX:
            resp = self.es.search(
                index=self.pattern,
                query={"prefix": {"event.id": alert_id.lower()}},
                size=5,
                source=False,
                ignore_unavailable=True,
                allow_no_indices=True,
            )
            hits = resp["hits"]["hits"]
            if len(hits) > 1:
                raise AmbiguousAlertId(alert_id, sorted(h["_id"] for h in hits))
        if not hits:
            raise AlertNotFound(alert_id)
        self._where[hits[0]["_id"]] = hits[0]["_index"]
        return hits[0]["_id"], hits[0]["_index"]

    def change(self, alert_id: str, change: Change, expected: Version | None = None) -> AlertRecord:
        """Apply `change` if the alert is still at `expected` (or unchanged since read); record either way."""
        cur = self.get(alert_id)
        if expected is not None and tuple(expected) != cur.version:
            self._record_conflict(cur, change, expected)
            raise AlertConflict(cur.id, expected, cur.version, cur.status)
        workflow = apply_change(cur.source.get("socpipe", {}).get("workflow", {}), change, cur.version[0])
        try:
            resp = self.es.update(
                index=cur.index,
                id=cur.id,
                if_seq_no=cur.version[0],
                if_primary_term=cur.version[1],
                refresh=self.refresh,
                doc=_workflow_patch(workflow),
            )
        except ConflictError:
            now = self.get(cur.id)
            self._record_conflict(now, change, cur.version)
            raise AlertConflict(cur.id, expected or cur.version, now.version, now.status) from None
        log.info(
            "triage action=%s alert=%s actor=%s from=%s to=%s",
            change.action,
            cur.id,
            change.actor,
            cur.status,
            workflow["status"],
        )
        source = dict(cur.source)
        source["socpipe"] = {**source.get("socpipe", {}), "workflow": workflow}
        return AlertRecord(cur.id, cur.index, (resp["_seq_no"], resp["_primary_term"]), source)

    def _record_conflict(self, cur: AlertRecord, change: Change, based_on: Version, attempts: int = 10) -> None:
        """Append the losing attempt to history; appending commutes, so retry until it lands."""
        for _ in range(attempts):
            workflow = dict(cur.source.get("socpipe", {}).get("workflow", {}))
            entry = history_entry(
                change,
                "conflict",
                None,
                None,
                based_on[0],
                detail=f"based on version {format_version(based_on)}, alert was at "
                f"{format_version(cur.version)} ({cur.status})",
            )
            workflow["history"] = [*workflow.get("history", []), entry]
            try:
                self.es.update(
                    index=cur.index,
                    id=cur.id,
                    if_seq_no=cur.version[0],
                    if_primary_term=cur.version[1],
                    refresh=self.refresh,
                    doc={"socpipe": {"workflow": {"history": workflow["history"]}}},
                )
                log.info("triage action=%s alert=%s actor=%s outcome=conflict", change.action, cur.id, change.actor)
                return
            except ConflictError:
                cur = self.get(cur.id)
        log.warning("triage conflict_not_recorded alert=%s actor=%s", cur.id, change.actor)


def _workflow_patch(workflow: dict[str, Any]) -> dict[str, Any]:
    """Partial-update body: the whole workflow object (arrays replace), plus Kibana's status mirror.

    Fields removed by the change (closing reason on reopen, assignee on unassign) are sent as null:
    a partial update merges objects, so leaving them out would keep the old values.
    """
    wf = dict(workflow)
    for key in ("closed_at", "closed_by", "closing_reason", "assignee"):
        wf.setdefault(key, None)
    return {"socpipe": {"workflow": wf}, "kibana": {"alert": {"workflow_status": workflow["status"]}}}
