"""Incidents in Elasticsearch (`<prefix>-incidents-YYYY.MM.DD`): attach each written alert to the
open incident of its agency it shares an entity with, or open one; list them; and the workflow at
incident level - closing an incident closes its alerts, with history on both.

Whole-document writes guarded by if_seq_no/if_primary_term (no scripts): a conflict re-reads and
merges again. Incident ids derive from the first alert, so a replay re-creates nothing.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from elasticsearch import ApiError, ConflictError, Elasticsearch, NotFoundError, TransportError

from detectors.alerts.build import new_workflow
from detectors.alerts.incidents import (
    DEFAULT_WINDOW_S,
    alert_entry,
    can_join,
    entity_keys,
    incident_document,
)
from detectors.common import iso_ms, to_epoch
from pipeline.triage.workflow import Change, apply_change

if TYPE_CHECKING:
    from pipeline.elastic.triage import TriageService, Version

log = logging.getLogger("socpipe.incidents")


class IncidentNotFound(LookupError):
    pass


@dataclass
class IncidentRecord:
    id: str
    index: str
    version: tuple[int, int]
    source: dict[str, Any]

    @classmethod
    def of_hit(cls, hit: dict[str, Any]) -> IncidentRecord:
        """A search hit asked for with `seq_no_primary_term=True`."""
        return cls(hit["_id"], hit["_index"], (hit["_seq_no"], hit["_primary_term"]), hit["_source"])

    @property
    def status(self) -> str:
        return str(((self.source.get("socpipe") or {}).get("workflow") or {}).get("status", "open"))


def _index(prefix: str, doc: dict[str, Any]) -> str:
    return f"{prefix}-incidents-{str(doc['@timestamp'])[:10].replace('-', '.')}"


def _with_keys(doc: dict[str, Any]) -> dict[str, Any]:
    inc = doc["socpipe"]["incident"]
    inc["entity_keys"] = sorted({f"{f}={v}" for f, vs in inc["entities"].items() for v in vs})
    return doc


@dataclass
class _Pending:
    """An incident changed in memory by `attach_many`, not written yet."""

    record: IncidentRecord
    new: bool
    alerts: list[int] = field(default_factory=list)


class IncidentStore:
    def __init__(
        self,
        es: Elasticsearch,
        prefix: str = "socpipe",
        window_s: float = DEFAULT_WINDOW_S,
        refresh: bool | str = False,
    ):
        self.es, self.prefix, self.window_s, self.refresh = es, prefix, window_s, refresh
        # incidents written lately, by entity key: read back in real time (a search lags a refresh)
        self._recent: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def _remember(self, doc: dict[str, Any], index: str, _id: str) -> None:
        org = (doc.get("organization") or {}).get("id")
        for key in doc["socpipe"]["incident"].get("entity_keys") or []:
            key = f"{org}|{key}"
            self._recent[key] = (index, _id)
            self._recent.move_to_end(key)
        while len(self._recent) > 20000:
            self._recent.popitem(last=False)

    def _cached(self, alert: dict[str, Any]) -> list[IncidentRecord]:
        seen: set[tuple[str, str]] = set()
        out: list[IncidentRecord] = []
        org = (alert.get("organization") or {}).get("id")
        for key in sorted(f"{org}|{k}" for k in entity_keys(alert)):
            hit = self._recent.get(key)
            if hit is None or hit in seen:
                continue
            seen.add(hit)
            try:
                got = self.es.get(index=hit[0], id=hit[1])
            except NotFoundError:
                self._recent.pop(key, None)
                continue
            out.append(IncidentRecord(hit[1], hit[0], (got["_seq_no"], got["_primary_term"]), got["_source"]))
        return out

    @property
    def pattern(self) -> str:
        return f"{self.prefix}-incidents-*"

    def _candidates(self, alert: dict[str, Any]) -> list[IncidentRecord]:
        keys = sorted(entity_keys(alert))
        org = (alert.get("organization") or {}).get("id")
        start = to_epoch((alert.get("event") or {}).get("start"))
        end = to_epoch((alert.get("event") or {}).get("end"))
        if not keys or org is None or start is None or end is None:
            return []
        resp = self.es.search(
            index=self.pattern,
            size=5,
            sort=[{"event.end": "desc"}],
            query={
                "bool": {
                    "filter": [
                        {"term": {"organization.id": org}},
                        {"terms": {"socpipe.incident.entity_keys": keys}},
                        {"range": {"event.end": {"gte": iso_ms(start - self.window_s)}}},
                        {"range": {"event.start": {"lte": iso_ms(end + self.window_s)}}},
                    ],
                    "must_not": [{"term": {"socpipe.workflow.status": "closed"}}],
                }
            },
            seq_no_primary_term=True,
            ignore_unavailable=True,
            allow_no_indices=True,
        )
        return [IncidentRecord.of_hit(h) for h in resp["hits"]["hits"]]

    def attach(self, alert_id: str, alert: dict[str, Any], attempts: int = 8) -> str | None:
        """The incident the alert (nested source) now belongs to; None if it has no linkable entity."""
        if not entity_keys(alert) or not (alert.get("organization") or {}).get("id"):
            return None
        entry = alert_entry(alert, alert_id)
        for _ in range(attempts):
            fits = [c for c in self._cached(alert) if c.status != "closed" and can_join(c.source, alert, self.window_s)]
            if not fits:
                fits = [c for c in self._candidates(alert) if can_join(c.source, alert, self.window_s)]
            target = fits[0] if fits else None
            if target is None:
                doc = _with_keys(incident_document(alert.get("organization"), [entry]))
                doc["socpipe"]["workflow"] = new_workflow(iso_ms(to_epoch(doc["@timestamp"]) or 0.0))
                _id = doc.pop("_id")
                try:
                    self.es.create(index=_index(self.prefix, doc), id=_id, document=doc, refresh=self.refresh)
                    self._remember(doc, _index(self.prefix, doc), str(_id))
                    return str(_id)
                except ConflictError:  # a replay of its first alert: the incident is there, merge into it
                    got = self.es.get(index=_index(self.prefix, doc), id=_id)
                    target = IncidentRecord(_id, got["_index"], (got["_seq_no"], got["_primary_term"]), got["_source"])
            inc = target.source["socpipe"]["incident"]
            entries = [e for e in inc.get("timeline") or [] if e.get("alert_id") != alert_id] + [entry]
            doc = _with_keys(
                incident_document(target.source.get("organization"), entries, target.source["socpipe"].get("workflow"))
            )
            doc.pop("_id")
            doc["@timestamp"] = target.source["@timestamp"]  # its index day never moves
            try:
                self.es.index(
                    index=target.index,
                    id=target.id,
                    document=doc,
                    if_seq_no=target.version[0],
                    if_primary_term=target.version[1],
                    refresh=self.refresh,
                )
                self._remember(doc, target.index, target.id)
                return target.id
            except ConflictError:
                continue
        raise RuntimeError(f"incident update for alert {alert_id} kept conflicting")

    def attach_many(self, alerts: list[tuple[str, dict[str, Any]]]) -> list[str | None | Exception]:
        """`attach` for each (alert id, nested source), in order, with each incident they touch read
        once and written once (create, or index guarded by if_seq_no) instead of once per alert.
        Per alert: its incident id, None (nothing to link) or the exception that kept it from one.
        An incident whose write conflicts (another worker or an analyst wrote in between) falls back
        to `attach` of each of its alerts, which re-reads and merges again."""
        out: list[str | None | Exception] = [None] * len(alerts)
        pending: dict[tuple[str, str], _Pending] = {}
        for i, (alert_id, alert) in enumerate(alerts):
            if not entity_keys(alert) or not (alert.get("organization") or {}).get("id"):
                continue
            fits = [p.record for p in pending.values() if can_join(p.record.source, alert, self.window_s)]
            if not fits:
                try:
                    fits = [c for c in self._cached(alert) if c.status != "closed"]
                    fits = [c for c in fits if can_join(c.source, alert, self.window_s)]
                    if not fits:
                        fits = [c for c in self._candidates(alert) if can_join(c.source, alert, self.window_s)]
                except (TransportError, ApiError) as exc:
                    out[i] = exc
                    continue
                fits = [pending[(c.index, c.id)].record if (c.index, c.id) in pending else c for c in fits]
            entry = alert_entry(alert, alert_id)
            if not fits:
                doc = _with_keys(incident_document(alert.get("organization"), [entry]))
                doc["socpipe"]["workflow"] = new_workflow(iso_ms(to_epoch(doc["@timestamp"]) or 0.0))
                _id = str(doc.pop("_id"))
                record = IncidentRecord(_id, _index(self.prefix, doc), (-1, -1), doc)
                pending[(record.index, record.id)] = _Pending(record, new=True)
            else:
                record = fits[0]
                inc = record.source["socpipe"]["incident"]
                entries = [e for e in inc.get("timeline") or [] if e.get("alert_id") != alert_id] + [entry]
                doc = _with_keys(
                    incident_document(
                        record.source.get("organization"), entries, record.source["socpipe"].get("workflow")
                    )
                )
                doc.pop("_id")
                doc["@timestamp"] = record.source["@timestamp"]  # its index day never moves
                record.source = doc
                pending.setdefault((record.index, record.id), _Pending(record, new=False))
            pending[(record.index, record.id)].alerts.append(i)
        for p in pending.values():
            rec = p.record
            try:
                if p.new:
                    self.es.create(index=rec.index, id=rec.id, document=rec.source, refresh=self.refresh)
                else:
                    self.es.index(
                        index=rec.index,
                        id=rec.id,
                        document=rec.source,
                        if_seq_no=rec.version[0],
                        if_primary_term=rec.version[1],
                        refresh=self.refresh,
                    )
            except ConflictError:  # written in between (or a replay's incident exists): one by one
                for i in p.alerts:
                    try:
                        out[i] = self.attach(*alerts[i])
                    except (TransportError, ApiError, RuntimeError) as exc:
                        out[i] = exc
                continue
            except (TransportError, ApiError) as exc:
                for i in p.alerts:
                    out[i] = exc
                continue
            self._remember(rec.source, rec.index, rec.id)
            for i in p.alerts:
                out[i] = rec.id
        return out

    # --- triage ------------------------------------------------------------------------------
    def list(
        self, status: list[str] | None = None, agency: list[str] | None = None, limit: int = 50
    ) -> list[IncidentRecord]:
        filters: list[dict[str, Any]] = []
        if status:
            filters.append({"terms": {"socpipe.workflow.status": status}})
        if agency:
            filters.append({"terms": {"organization.id": agency}})
        resp = self.es.search(
            index=self.pattern,
            size=max(1, min(limit, 500)),
            query={"bool": {"filter": filters}},
            sort=[{"event.severity": "desc"}, {"event.end": "desc"}],
            seq_no_primary_term=True,
            ignore_unavailable=True,
            allow_no_indices=True,
        )
        return [IncidentRecord.of_hit(h) for h in resp["hits"]["hits"]]

    def get(self, incident_id: str) -> IncidentRecord:
        resp = self.es.search(
            index=self.pattern,
            query={"ids": {"values": [incident_id]}},
            size=1,
            seq_no_primary_term=True,
            ignore_unavailable=True,
            allow_no_indices=True,
        )
        hits = resp["hits"]["hits"]
        if not hits and len(incident_id) >= 6:  # a unique prefix, among the latest incidents
            resp = self.es.search(
                index=self.pattern,
                query={"match_all": {}},
                sort=[{"event.end": "desc"}],
                size=1000,
                source=False,
                ignore_unavailable=True,
                allow_no_indices=True,
            )
            hits = [h for h in resp["hits"]["hits"] if h["_id"].startswith(incident_id)]
            if len(hits) > 1:
                raise IncidentNotFound(f"{incident_id!r} is the start of several incident ids; give more of it")
        if not hits:
            raise IncidentNotFound(incident_id)
        h = hits[0]
        got = self.es.get(index=h["_index"], id=h["_id"])  # realtime: the current version
        return IncidentRecord(h["_id"], h["_index"], (got["_seq_no"], got["_primary_term"]), got["_source"])

    def change(
        self,
        incident_id: str,
        change: Change,
        alerts_service: TriageService | None = None,
        expected: Version | None = None,
    ) -> IncidentRecord:
        """Apply an analyst's change to the incident; closing (and ack) applies to its alerts too."""
        cur = self.get(incident_id)
        if expected is not None and tuple(expected) != cur.version:
            from pipeline.elastic.triage import AlertConflict

            raise AlertConflict(cur.id, expected, cur.version, cur.status)
        workflow = apply_change(cur.source["socpipe"].get("workflow") or {}, change, cur.version[0])
        doc = dict(cur.source)
        doc["socpipe"] = {**doc["socpipe"], "workflow": workflow}
        resp = self.es.index(
            index=cur.index,
            id=cur.id,
            document=doc,
            if_seq_no=cur.version[0],
            if_primary_term=cur.version[1],
            refresh="wait_for",
        )
        if alerts_service is not None and change.action in ("close", "ack", "assign", "reopen"):
            self._cascade(cur, change, alerts_service)
        return IncidentRecord(cur.id, cur.index, (resp["_seq_no"], resp["_primary_term"]), doc)

    def _cascade(self, inc: IncidentRecord, change: Change, alerts_service: TriageService) -> None:
        from pipeline.elastic.triage import AlertConflict, AlertNotFound
        from pipeline.triage.workflow import TransitionError

        detail = Change(
            change.action,
            change.actor,
            change.at,
            reason=change.reason,
            assignee=change.assignee,
            text=(change.text + " " if change.text else "") + f"(from incident {inc.id})",
        )
        for alert_id in inc.source["socpipe"]["incident"].get("alerts") or []:
            for _ in range(3):
                try:
                    alerts_service.change(alert_id, detail, None)
                    break
                except AlertConflict:
                    continue  # changed meanwhile: apply to the current version
                except (TransitionError, AlertNotFound):
                    break  # already in that state, or gone
