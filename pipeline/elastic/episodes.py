"""Episode alerts in Elasticsearch: merge a batch's share of an episode into its open alert, or
create the alert. Whole-document writes guarded by if_seq_no/if_primary_term (no scripts, no
_update_by_query), so concurrent workers and analysts never overwrite each other: a conflict
re-reads and merges again.

A batch replayed (a crash between the write and the offset commit, or a partition that moved during
an Elasticsearch outage) adds nothing twice. The alert remembers what it merged (`state.sources`,
`state.recent`):

* a detection one Kafka record made (a rule matching the record's event, a correlation firing on the
  input record) by where that record is: per source partition, the offsets [first, last] of the
  detections of the newest write from it. Everything of the key from those records is in that write
  (the sink writes all of a key's pending detections together), and nothing older can be read again:
  a partition's consumer commits after each batch, and whoever reads it next starts at the commit,
  so a write from past `last` means the batch holding `last` was committed, or it is a replay of it
  (its offsets overlap: the ranges are joined). Bound: two numbers per partition of the raw and
  correlation topics, whatever the number of detections (the last 512 ids used to be all it kept:
  a replayed batch of more detections, or after more merges from other partitions, counted twice);
* every detection by its id, the last RECENT_IDS merged, as before: this is all there is for those no
  one record made (a correlation window closed by time, an anomaly model's finding: one per window
  closed, so a replay after more than 512 window closures of one key would count some again), and it
  covers a race the ranges miss: a worker still writing a batch after an outage whose partition's next
  owner has replayed it and written a newer batch already (that range replaced the batch's).

The range is replaced, not widened, by a write past it: a worker's growth deferred by the bounded
update rate (`episode_update_s`) and written after the partition's next owner wrote newer detections
lies between the two ranges, and must not be skipped.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from elasticsearch import ConflictError, Elasticsearch, NotFoundError

from detectors.alerts import alert_index_name
from detectors.alerts.episodes import episode_document, summary_from_document
from detectors.alerts.plan import BatchEpisode, Offer
from detectors.common import iso_ms, to_epoch
from pipeline.elastic.indexer import AlertIndexer

log = logging.getLogger("socpipe.elastic")


class AlertRejected(ValueError):
    """Elasticsearch refused the alert document for good (e.g. a mapping conflict): dead-letter it."""


RECENT_IDS = 512  # detection ids remembered per alert for replay safety
RECENT_KEYS = 20000  # dedup keys whose alert this worker wrote lately


class EpisodeWriter:
    def __init__(
        self, es: Elasticsearch, indexer: AlertIndexer, quiet_s: float, max_span_s: float, refresh: bool | str = False
    ):
        self.es, self.indexer = es, indexer
        self.quiet_s, self.max_span_s = quiet_s, max_span_s
        self.refresh = refresh
        self.written: tuple[str, str, dict[str, Any]] | None = None  # (index, id, source) of the last write
        # alerts this worker wrote lately: read back in real time (a search lags a refresh behind)
        self._recent: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def remember_target(self, key: str, target: tuple[str, str]) -> None:
        """Take `target` as the alert of `key` this worker wrote last (`find_open` checks it first, as
        it does its own writes): a replay of given-up growth starts from the alert its letter names."""
        self._remember_target(key, target)

    def key_of(self, target: tuple[str, str]) -> str | None:
        """The dedup key of the alert at `target` ('' if it has none), None if there is no such alert."""
        try:
            doc = self.es.get(index=target[0], id=target[1], source_includes=["socpipe.detection.dedup_key"])
        except NotFoundError:
            return None
        key = (((doc.get("_source") or {}).get("socpipe") or {}).get("detection") or {}).get("dedup_key")
        return key if isinstance(key, str) else ""

    def unmerged(self, batch: BatchEpisode, target: tuple[str, str]) -> tuple[dict[str, Any], list[Offer]] | None:
        """Read only: the alert at `target` and the batch's detections a `merge` into it would add (those
        its replay memory - per-partition offset ranges, recent ids - does not hold); None if it is gone."""
        try:
            source = self.es.get(index=target[0], id=target[1])["_source"]
        except NotFoundError:
            return None
        state = _state(source)
        skip = frozenset(str(i) for i in state.get("recent") or [])
        return source, list(batch.fresh(skip, _sources(state)))

    def _remember_target(self, key: str, target: tuple[str, str]) -> None:
        self._recent[key] = target
        self._recent.move_to_end(key)
        while len(self._recent) > RECENT_KEYS:
            self._recent.popitem(last=False)

    def _continues(self, source: dict[str, Any], first_ts: float, last_ts: float) -> bool:
        ep = (source.get("socpipe") or {}).get("episode") or {}
        status = ((source.get("socpipe") or {}).get("workflow") or {}).get("status")
        seen_last, seen_first = to_epoch(ep.get("last_seen")), to_epoch(ep.get("first_seen"))
        return (
            status != "closed"
            and seen_last is not None
            and seen_first is not None
            and seen_last >= first_ts - self.quiet_s
            and seen_first <= last_ts + self.quiet_s
            and max(seen_last, last_ts) - min(seen_first, first_ts) <= self.max_span_s
        )

    def find_open(self, batch: BatchEpisode) -> tuple[str, str] | None:
        """The not-closed alert of this key whose episode this batch continues."""
        first = batch.summary()
        assert first is not None
        cached = self._recent.get(batch.key)
        if cached is not None:
            try:
                doc = self.es.get(
                    index=cached[0], id=cached[1], source_includes=["socpipe.episode", "socpipe.workflow"]
                )
                if self._continues(doc["_source"], first.first_ts, first.last_ts):
                    return cached
            except NotFoundError:
                self._recent.pop(batch.key, None)
        q = self._open_query(batch)
        return self.indexer.first_alert(q["query"], q["sort"])

    def _open_query(self, batch: BatchEpisode) -> dict[str, Any]:
        """The search body for the newest not-closed alert of the key whose episode `batch` continues."""
        first = batch.summary()
        assert first is not None
        return {
            "size": 1,
            "sort": [{"socpipe.episode.last_seen": "desc"}],
            "query": {
                "bool": {
                    "filter": [
                        {"term": {"socpipe.detection.dedup_key": batch.key}},
                        {"range": {"socpipe.episode.last_seen": {"gte": iso_ms(first.first_ts - self.quiet_s)}}},
                        {"range": {"socpipe.episode.first_seen": {"gte": iso_ms(first.last_ts - self.max_span_s)}}},
                        {"range": {"socpipe.episode.first_seen": {"lte": iso_ms(first.last_ts + self.quiet_s)}}},
                    ],
                    "must_not": [{"term": {"socpipe.workflow.status": "closed"}}],
                }
            },
            "_source": False,
        }

    def find_open_many(self, batches: list[BatchEpisode]) -> list[tuple[str, str] | None]:
        """`find_open` of each batch (in order) in two round trips - one mget of the alerts this worker
        wrote lately, one msearch for the rest - instead of one or two each. An item Elasticsearch
        answered with an error is asked again alone (`find_open`), which raises it as before."""
        found: dict[int, tuple[str, str] | None] = {}
        cached = [(i, self._recent[b.key]) for i, b in enumerate(batches) if b.key in self._recent]
        if cached:
            resp = self.es.mget(
                docs=[{"_index": t[0], "_id": t[1]} for _, t in cached],
                source_includes=["socpipe.episode", "socpipe.workflow"],
            )
            for (i, target), doc in zip(cached, resp["docs"]):
                first = batches[i].summary()
                assert first is not None
                if "error" in doc:
                    found[i] = self.find_open(batches[i])
                elif not doc.get("found"):
                    self._recent.pop(batches[i].key, None)
                elif self._continues(doc["_source"], first.first_ts, first.last_ts):
                    found[i] = target
        ask = [i for i in range(len(batches)) if i not in found]
        if ask:
            searches: list[dict[str, Any]] = []
            for i in ask:
                searches.append(
                    {"index": f"{self.indexer.prefix}-alerts-*", "ignore_unavailable": True, "allow_no_indices": True}
                )
                searches.append(self._open_query(batches[i]))
            resp = self.es.msearch(searches=searches)
            for i, r in zip(ask, resp["responses"]):
                if "error" in r:
                    found[i] = self.find_open(batches[i])
                else:
                    hits = r["hits"]["hits"]
                    found[i] = (hits[0]["_index"], hits[0]["_id"]) if hits else None
        return [found[i] for i in range(len(batches))]

    def create_many(self, items: list[tuple[BatchEpisode, dict[str, Any]]]) -> list[tuple[str, Any]]:
        """Create the alerts of new episodes (`items`: batch, its built alert document) in one bulk.
        Per item, in order: ("created", (index, id, source)), ("retry", None), ("rejected", reason) or
        ("exists", (index, id)) - a replay whose alert is already there: `merge` into it."""
        docs: list[dict[str, Any]] = []
        for b, base in items:
            summary = b.summary()
            assert summary is not None
            docs.append(_remember(episode_document(base, summary, self.quiet_s), [], b))
        result = self.indexer.index(docs)
        created, duplicates = set(result.created), set(result.duplicates)
        retry = {id(d) for d in result.retry}
        rejected = {id(d): reason for d, reason in result.rejected}
        out: list[tuple[str, Any]] = []
        for (b, _), doc in zip(items, docs):
            index = alert_index_name(doc, self.indexer.prefix)
            if id(doc) in rejected:
                out.append(("rejected", rejected[id(doc)]))
            elif id(doc) in retry:
                out.append(("retry", None))
            elif b.alert_id in created:
                self._remember_target(b.key, (index, b.alert_id))
                out.append(("created", (index, b.alert_id, {k: v for k, v in doc.items() if k != "_id"})))
            elif b.alert_id in duplicates:
                out.append(("exists", (index, b.alert_id)))
            else:  # no outcome at all: never acknowledged
                out.append(("retry", None))
        return out

    def write(self, batch: BatchEpisode, base: Callable[[], dict[str, Any]], attempts: int = 8) -> str:
        """'created' | 'merged' | 'replayed'. Raises elasticsearch errors for the caller to retry."""
        self.written = None
        target = self.find_open(batch)
        if target is None:
            outcome, value = self.create_many([(batch, base())])[0]
            if outcome == "created":
                self.written = value
                return "created"
            if outcome == "retry":
                raise ConnectionError("alert not acknowledged, retry")
            if outcome == "rejected":
                raise AlertRejected(value)
            target = value  # a replay: merge into it
        return self.merge(batch, base, target, attempts)

    def merge(
        self, batch: BatchEpisode, base: Callable[[], dict[str, Any]], target: tuple[str, str], attempts: int = 8
    ) -> str:
        """Merge the batch's share into the alert at `target`: 'merged' | 'replayed' (or 'created' if
        the alert vanished meanwhile). Sets `written`; raises elasticsearch errors for the caller."""
        self.written = None
        index, _id = target
        for _ in range(attempts):
            try:
                cur = self.es.get(index=index, id=_id)
            except NotFoundError:
                return self.write(batch, base, attempts - 1) if attempts > 1 else "replayed"
            source = cur["_source"]
            state = _state(source)
            previous = [str(i) for i in state.get("recent") or []]
            covered = _sources(state)
            add = batch.summary(skip=frozenset(previous), covered=covered)
            if add is None:
                return "replayed"
            have = summary_from_document(source)
            merged = add if have is None else have.merge(add)
            doc = _remember(episode_document(source, merged, self.quiet_s), previous, batch, covered)
            try:
                self.es.index(
                    index=index,
                    id=_id,
                    document=doc,
                    if_seq_no=cur["_seq_no"],
                    if_primary_term=cur["_primary_term"],
                    refresh=self.refresh,
                )
                self._remember_target(batch.key, (index, _id))
                self.written = (index, _id, doc)
                return "merged"
            except ConflictError:
                continue  # an analyst or another worker wrote in between: merge into that
        raise RuntimeError(f"episode update of {_id} kept conflicting ({attempts} attempts)")


def _state(source: dict[str, Any]) -> dict[str, Any]:
    state = ((source.get("socpipe") or {}).get("episode") or {}).get("state")
    return state if isinstance(state, dict) else {}


def _sources(state: dict[str, Any]) -> dict[str, list[int]]:
    """`state.sources` as written by `_remember` (anything else in it is ignored)."""
    got = state.get("sources")
    if not isinstance(got, dict):
        return {}
    return {
        str(k): [v[0], v[1]]
        for k, v in got.items()
        if isinstance(v, list) and len(v) == 2 and all(type(x) is int for x in v) and v[0] <= v[1]
    }


def merged_sources(covered: dict[str, list[int]], batch: BatchEpisode) -> dict[str, list[int]]:
    """`covered` after a write of `batch`: per source partition, the offsets of the batch's detections
    there, joined with the range remembered when they overlap it (a replay continuing), replacing it when
    they are all past it (that batch was committed), kept as it was when they are all before it (growth
    written late, of records committed long ago: nobody reads them again)."""
    spans: dict[str, list[int]] = {}  # this write's offsets per source partition
    for o in batch.offers:
        if o.source is None or o.offset < 0:
            continue
        span = spans.get(o.source)
        if span is None:
            spans[o.source] = [o.offset, o.offset]
        else:
            span[0], span[1] = min(span[0], o.offset), max(span[1], o.offset)
    out = {k: list(v) for k, v in covered.items()}
    for src, (lo, hi) in spans.items():
        have = out.get(src)
        if have is None or lo > have[1]:
            out[src] = [lo, hi]  # newer: the batch it replaces was committed
        elif hi >= have[0]:
            out[src] = [min(lo, have[0]), max(hi, have[1])]  # overlapping: a replay, continuing
    return out


def _remember(
    doc: dict[str, Any], previous: list[str], batch: BatchEpisode, covered: dict[str, list[int]] | None = None
) -> dict[str, Any]:
    state = doc["socpipe"]["episode"]["state"]
    ids = previous + [o.alert_id for o in batch.offers]
    state["recent"] = list(dict.fromkeys(ids))[-RECENT_IDS:]
    state["sources"] = merged_sources(covered or {}, batch)
    return doc
