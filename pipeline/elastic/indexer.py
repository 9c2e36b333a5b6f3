"""Bulk writes of alerts (and optionally events) with create-only semantics and outcome per document.

Every document ends in exactly one bucket of `IndexResult`: created, duplicate (409: a replay of a
document already there, which is success), retry (429/5xx/connection: the caller keeps it and its
Kafka offset uncommitted, pauses, tries again) or rejected (4xx such as a mapping conflict: retrying
cannot help, the caller sends it to the dead-letter topic with the reason).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import ApiError, ConflictError, Elasticsearch, NotFoundError, TransportError

from detectors.alerts import alert_index_name, event_index_name, to_nested
from detectors.common import iso_ms, to_epoch

log = logging.getLogger("socpipe.elastic")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

# A document on its way: (index, _id, the source sent, the document as the caller gave it).
_Pending = tuple[str, str, dict[str, Any], dict[str, Any]]


@dataclass
class IndexResult:
    created: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    retry: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[tuple[dict[str, Any], str]] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        """Every document has a final outcome: the caller may commit its offsets."""
        return not self.retry

    def merge(self, other: IndexResult) -> None:
        self.created += other.created
        self.duplicates += other.duplicates
        self.retry += other.retry
        self.rejected += other.rejected


def item_outcome(status: int) -> str:
    """Bulk item status -> 'created' | 'duplicate' | 'retry' | 'rejected' (pure; tested alone)."""
    if 200 <= status < 300:
        return "created"
    if status == 409:
        return "duplicate"
    if status in RETRY_STATUSES or status >= 500:
        return "retry"
    return "rejected"


def error_reason(error: Any) -> str:
    """`type: reason (caused by: ...)` from a bulk item error, short enough for a Kafka header."""
    if not isinstance(error, dict):
        return str(error)[:1000]
    text = f"{error.get('type', 'error')}: {error.get('reason', '')}"
    cause = error.get("caused_by")
    if isinstance(cause, dict):
        text += f" (caused by {cause.get('type', '')}: {cause.get('reason', '')})"
    return text[:1000]


class _CreateOnlyBulk:
    """Chunked `_bulk` with op_type=create and bounded in-call retries of the retryable part."""

    def __init__(
        self,
        es: Elasticsearch,
        prefix: str = "socpipe",
        chunk_docs: int = 1000,
        max_retries: int = 3,
        backoff_s: float = 0.2,
        refresh: bool | str = False,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.es = es
        self.prefix = prefix
        self.chunk_docs = max(1, chunk_docs)
        self.max_retries = max(0, max_retries)
        self.backoff_s = backoff_s
        self.refresh = refresh
        self._sleep = sleep

    def _prepare(self, doc: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        raise NotImplementedError

    def _index_docs(self, docs: Iterable[dict[str, Any]]) -> IndexResult:
        result = IndexResult()
        pending: list[_Pending] = []
        for doc in docs:
            try:
                index, _id, source = self._prepare(doc)
            except (ValueError, TypeError, KeyError) as exc:
                result.rejected.append((doc, f"invalid_document: {exc}"))
                continue
            pending.append((index, _id, source, doc))
        for attempt in range(self.max_retries + 1):
            retry: list[_Pending] = []
            for start in range(0, len(pending), self.chunk_docs):
                retry += self._send(pending[start : start + self.chunk_docs], result)
            pending = retry
            if not pending:
                break
            if attempt < self.max_retries:
                self._sleep(self.backoff_s * (2**attempt))
        result.retry = [doc for *_, doc in pending]
        return result

    def _send(self, chunk: list[_Pending], result: IndexResult) -> list[_Pending]:
        operations: list[dict[str, Any]] = []
        for index, _id, source, _ in chunk:
            operations.append({"create": {"_index": index, "_id": _id}})
            operations.append(source)
        try:
            resp = self.es.bulk(operations=operations, refresh=self.refresh)
        except ApiError as exc:
            status = exc.meta.status
            if status in RETRY_STATUSES or status >= 500:
                log.warning("bulk_failed status=%s docs=%d retry=yes", status, len(chunk))
                return list(chunk)
            reason = f"bulk_request_rejected: {status} {exc.message}"
            result.rejected += [(doc, reason) for *_, doc in chunk]
            return []
        except TransportError as exc:  # connection refused/reset, timeout: ES is down or overloaded
            log.warning("bulk_failed error=%s docs=%d retry=yes", type(exc).__name__, len(chunk))
            return list(chunk)
        retry = []
        for (index, _id, source, doc), item in zip(chunk, resp["items"]):
            info = next(iter(item.values()))
            outcome = item_outcome(int(info.get("status", 500)))
            if outcome == "created":
                result.created.append(_id)
                self._created(index, _id, source)
            elif outcome == "duplicate":
                result.duplicates.append(_id)
            elif outcome == "retry":
                retry.append((index, _id, source, doc))
            else:
                reason = error_reason(info.get("error"))
                log.warning("doc_rejected index=%s id=%s reason=%r", index, _id, reason)
                result.rejected.append((doc, reason))
        return retry

    def _created(self, index: str, _id: str, source: dict[str, Any]) -> None:
        pass


class AlertIndexer(_CreateOnlyBulk):
    """Alert documents from `build_alert` -> daily `<prefix>-alerts-YYYY.MM.DD`, `_id` from the doc."""

    def __init__(self, es: Elasticsearch, prefix: str = "socpipe", recent_alerts: int = 20000, **kw: Any):
        super().__init__(es, prefix, **kw)
        self._recent: OrderedDict[str, tuple[str, str]] = OrderedDict()  # dedup_key -> (index, _id)
        self._recent_max = recent_alerts

    def index(self, docs: Iterable[dict[str, Any]]) -> IndexResult:
        return self._index_docs(docs)

    def _prepare(self, doc: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        _id = doc.get("_id")
        if not _id:
            raise ValueError("alert has no _id")
        source = {k: v for k, v in doc.items() if not k.startswith("_")}
        return alert_index_name(source, self.prefix), str(_id), source

    def _created(self, index: str, _id: str, source: dict[str, Any]) -> None:
        key = ((source.get("socpipe") or {}).get("detection") or {}).get("dedup_key")
        if key:
            self._recent[key] = (index, _id)
            self._recent.move_to_end(key)
            while len(self._recent) > self._recent_max:
                self._recent.popitem(last=False)

    def find_open(self, dedup_key: str, since: Any = None) -> tuple[str, str] | None:
        """(index, _id) of the newest not-closed alert with this dedup key (at or after `since`)."""
        hit = self._recent.get(dedup_key)
        if hit is not None:
            try:
                doc = self.es.get(index=hit[0], id=hit[1], source_includes=["@timestamp", "socpipe.workflow.status"])
                src = doc["_source"]
                if src["socpipe"]["workflow"]["status"] != "closed" and _not_before(src["@timestamp"], since):
                    return hit
            except NotFoundError:
                pass
            self._recent.pop(dedup_key, None)
        filters: list[dict[str, Any]] = [{"term": {"socpipe.detection.dedup_key": dedup_key}}]
        since_ts = to_epoch(since)
        if since_ts is not None:
            filters.append({"range": {"@timestamp": {"gte": iso_ms(since_ts)}}})
        return self.first_alert(
            {"bool": {"filter": filters, "must_not": [{"term": {"socpipe.workflow.status": "closed"}}]}},
            [{"@timestamp": "desc"}],
        )

    def first_alert(self, query: dict[str, Any], sort: list[dict[str, Any]]) -> tuple[str, str] | None:
        """(index, _id) of the first alert `query` finds in `sort` order; None when there is none (or
        no alert index yet)."""
        resp = self.es.search(
            index=f"{self.prefix}-alerts-*",
            size=1,
            sort=sort,
            query=query,
            source=False,
            ignore_unavailable=True,
            allow_no_indices=True,
        )
        hits = resp["hits"]["hits"]
        return (hits[0]["_index"], hits[0]["_id"]) if hits else None

    def update_suppressed(
        self, dedup_key: str, count: int = 1, last_seen: Any = None, since: Any = None, attempts: int = 8
    ) -> str | None:
        """Add `count` suppressed repeats to the open alert with `dedup_key`; its `_id`, or None if none.

        None means there is no open alert to fold the repeat into: index a new alert instead.
        Concurrent updaters are safe: read, then write with if_seq_no/if_primary_term, re-read on conflict.
        """
        target = self.find_open(dedup_key, since)
        if target is None:
            return None
        index, _id = target
        seen = to_epoch(last_seen)
        for _ in range(attempts):
            cur = self.es.get(index=index, id=_id)
            supp = dict(cur["_source"].get("socpipe", {}).get("suppression") or {})
            supp["count"] = int(supp.get("count", 0)) + int(count)
            if seen is not None:
                prev = to_epoch(supp.get("last_seen"))
                if prev is None or seen > prev:
                    supp["last_seen"] = iso_ms(seen)
            try:
                self.es.update(
                    index=index,
                    id=_id,
                    doc={"socpipe": {"suppression": supp}},
                    if_seq_no=cur["_seq_no"],
                    if_primary_term=cur["_primary_term"],
                    refresh=self.refresh,
                )
                return _id
            except ConflictError:
                continue
        raise RuntimeError(f"suppression update of {_id} kept conflicting ({attempts} attempts)")


def _not_before(ts: Any, since: Any) -> bool:
    a, b = to_epoch(ts), to_epoch(since)
    return b is None or (a is not None and a >= b)


def event_id(event: dict[str, Any]) -> str:
    """Deterministic id for a flat event (its `event.id`, else a hash of its content): replays dedupe."""
    given = event.get("event.id")
    if given:
        return str(given)[:512]
    blob = json.dumps(event, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:40]


class EventIndexer(_CreateOnlyBulk):
    """Flat normalised events -> nested docs in daily `<prefix>-events-YYYY.MM.DD` (optional, by config)."""

    def index(self, events: Iterable[dict[str, Any]]) -> IndexResult:
        return self._index_docs(events)

    def _prepare(self, event: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        source = to_nested(event)
        return event_index_name(event, self.prefix), event_id(event), source
