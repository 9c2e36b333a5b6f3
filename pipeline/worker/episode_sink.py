"""The alert sink's episode path: a batch's share of each detection episode merged into its open alert,
or the alert created; growth of an alert written moments ago deferred (`episode_update_s`); the written
alerts attached to their incidents and each incident named on its alert.

`AlertSink` (sink.py) drives it: `write` hands back the episodes to retry while Elasticsearch is away
or busy, and the sink backs off and pauses consumption around them as it does for any write. Documents
Elasticsearch rejects for good, and findings that cannot become a document, go to `dead_letter`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError

from collectors import wire
from detectors.alerts import AgencyInfo, build_alert
from detectors.alerts.plan import BatchEpisode, Offer, plan_batch
from detectors.common.times import to_epoch
from detectors.finding import Finding
from pipeline.elastic.episodes import AlertRejected, EpisodeWriter
from pipeline.elastic.incidents import IncidentStore
from pipeline.worker.alerting import Doc
from pipeline.worker_metrics import WorkerMetrics

log = logging.getLogger("socpipe.detector")

INCIDENT_SYNC_S = 60.0  # an episode's growth reaches its incident at most once a minute (event time)

GIVEN_UP_REASON = "episode growth given up at stop"  # the dead letter's `reason` header
GIVEN_UP_KIND = "episode_growth"
# one dead letter's detections stay under the brokers' default message.max.bytes (1 MB): an alert's
# growth bigger than that is split into parts
GIVEN_UP_MAX_BYTES = 900_000


@dataclass(frozen=True)
class GivenUp:
    """An open alert's growth the worker's last flush could not write (`EpisodeSink.flush_at_stop`)."""

    key: str  # the episode's dedup key
    alert: tuple[str, str] | None  # (index, id) of the alert it grows, as this worker last wrote it
    offers: list[Offer]

    def letters(self, max_bytes: int = GIVEN_UP_MAX_BYTES) -> list[bytes]:
        """The dead letters (JSON) that let an operator merge this growth into its alert: the alert's
        index and id (null when this worker did not write it: find the open alert of `dedup_key`),
        every detection as the other dead letters carry one (`Finding.to_dict`) with the Kafka record it
        came from; split in parts of at most ~`max_bytes` (`part`/`parts`), one detection per part at least."""
        head: dict[str, Any] = {
            "kind": GIVEN_UP_KIND,
            "reason": GIVEN_UP_REASON,
            "alert": None if self.alert is None else {"index": self.alert[0], "id": self.alert[1]},
            "dedup_key": self.key,
        }
        entries = [
            wire.encode({"detection": o.item.to_dict(), "record": {"source": o.source, "offset": o.offset}})
            for o in self.offers
        ]
        groups: list[list[bytes]] = [[]]
        size = 0
        for e in entries:
            if groups[-1] and size + len(e) > max_bytes:
                groups.append([])
                size = 0
            groups[-1].append(e)
            size += len(e) + 1
        out = []
        for i, group in enumerate(groups, 1):
            meta = wire.encode({**head, "part": i, "parts": len(groups), "detections_in_part": len(group)})
            out.append(meta[:-1] + b',"detections":[' + b",".join(group) + b"]}")
        return out


class EpisodeSink:
    def __init__(
        self,
        episodes: EpisodeWriter,
        es: Elasticsearch,
        metrics: WorkerMetrics,
        dead_letter: Callable[[bytes, str], None],
        agency: Callable[[Finding], AgencyInfo | None],
        *,
        notify: Callable[[list[Doc]], None] | None = None,
        incidents: IncidentStore | None = None,
        episode_update_s: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.episodes = episodes
        self.es = es  # the alert indexer's client: names incidents on their alerts
        self.metrics = metrics
        self.dead_letter = dead_letter
        self.agency = agency
        self.notify = notify
        self.incidents = incidents
        self._incident_synced: dict[str, float] = {}  # alert id -> event.end last written to its incident
        # Bounded update rate: an open alert is rewritten at most every `episode_update_s`; growth in
        # between waits here (new alerts are written at once). Offsets move on meanwhile, so a crash
        # can lose at most that much growth of an existing alert, never an alert.
        self.episode_update_s = episode_update_s
        self._deferred: dict[str, list[Offer]] = {}  # dedup key -> detections not yet merged
        self._last_write: dict[str, float] = {}  # dedup key -> when its alert was last written
        self._alert_of: dict[str, tuple[str, str]] = {}  # dedup key -> (index, id) of its alert, last written
        self.monotonic = monotonic
        self._stopping = False  # the last flush: a failed write is not retried (flush_at_stop)
        # what the last `write` did with each episode it wrote: (batch, created | merged | replayed, alert)
        # (`socpipe detect dead-letters replay` reports it; the worker's counters say the same in sum)
        self.outcomes: list[tuple[BatchEpisode, str, tuple[str, str]]] = []

    def flush_due(self, force: bool = False) -> None:
        """Write the deferred growth whose alert may be rewritten now (the runner calls this every
        poll, and with force=True before it stops)."""
        if not self._deferred:
            return
        now = self.monotonic()
        due = [k for k in self._deferred if force or now - self._last_write.get(k, 0.0) >= self.episode_update_s]
        offers = [o for k in due for o in self._deferred.pop(k)]
        if offers:
            pending = plan_batch(offers, self.episodes.quiet_s, self.episodes.max_span_s)
            for b in self.write(pending, defer=False):  # Elasticsearch busy: next poll
                self._deferred.setdefault(b.key, []).extend(b.offers)

    def flush_at_stop(self) -> list[GivenUp]:
        """The worker's last flush before it exits: the deferred growth of every alert, written if
        Elasticsearch takes it now, once (a stop during an outage must not wait for Elasticsearch).
        What it does not take is given up and handed to the caller (and no longer held here).

        Given up, not retried: that growth was deferred after its records' offsets were committed (the
        bounded update rate lets offsets move on; the alerts themselves were written), so nobody reads
        those records again: the caller sends it to the dead-letter topic."""
        self._stopping = True
        self.flush_due(force=True)
        given = [GivenUp(key, self._alert_of.get(key), offers) for key, offers in self._deferred.items()]
        self._deferred.clear()
        return given

    def write(self, batches: list[BatchEpisode], defer: bool = True) -> list[BatchEpisode]:
        """Merge each episode's share into its open alert or create it; those to retry.

        Round trips are per call, not per episode, where they can be: one mget + one msearch find the
        open alerts, one bulk creates the new ones, one bulk names their incidents on them. Merges into
        an existing alert stay one guarded read-write each (rarer: `episode_update_s` bounds them)."""
        left: list[BatchEpisode] = []
        self.outcomes = []
        now = self.monotonic()
        todo: list[BatchEpisode] = []
        for b in batches:
            if (
                defer
                and self.episode_update_s > 0
                and now - self._last_write.get(b.key, float("-inf")) < self.episode_update_s
            ):
                self._deferred.setdefault(b.key, []).extend(b.offers)  # its alert was just written
                continue
            if b.key in self._deferred:  # growth waiting from earlier batches goes along
                b = BatchEpisode(b.key, b.alert_id, b.item, self._deferred.pop(b.key) + b.offers)
            todo.append(b)
        if not todo:
            return left
        try:
            targets = self.episodes.find_open_many(todo)
        except Exception as exc:
            if not self._episode_failed(todo[0], exc, left, rest=todo[1:]):
                raise
            return left
        written: list[tuple[str, str, Doc]] = []
        created: list[Doc] = []
        creates: list[tuple[BatchEpisode, Doc]] = []
        for b, target in zip(todo, targets):
            if target is None:
                try:
                    creates.append((b, build_alert(b.item, agency=self.agency(b.item))))
                except (ValueError, TypeError, KeyError) as exc:  # one bad detection must not stop the batch
                    self.dead_letter(wire.encode(b.item.to_dict()), f"cannot build alert: {exc}")
                continue
            self._merge(b, target, left, written, created)
        if creates:
            try:
                outcomes = self.episodes.create_many(creates)
            except Exception as exc:
                if not self._episode_failed(creates[0][0], exc, left, rest=[b for b, _ in creates[1:]]):
                    raise
                outcomes = []
            for (b, doc), (outcome, value) in zip(creates, outcomes):
                if outcome == "created":
                    self.metrics.alerts_indexed.inc()
                    self.metrics.suppressed.inc(len(b.offers) - 1)
                    created.append(doc)
                    written.append(value)
                    self._wrote(b.key, (value[0], value[1]))
                    self.outcomes.append((b, "created", (value[0], value[1])))
                elif outcome == "exists":  # a replay: merge into the alert already there
                    self._merge(b, value, left, written, created)
                elif outcome == "retry":
                    left.append(b)
                else:
                    self.dead_letter(wire.encode(b.item.to_dict()), f"elasticsearch rejected alert: {value}")
        self._incidents(written)
        if self.notify is not None and created:
            self.notify(created)
        return left

    def _merge(
        self,
        b: BatchEpisode,
        target: tuple[str, str],
        left: list[BatchEpisode],
        written: list[tuple[str, str, Doc]],
        created: list[Doc],
    ) -> None:
        made: list[Doc] = []

        def base(b: BatchEpisode = b, made: list[Doc] = made) -> Doc:
            doc = build_alert(b.item, agency=self.agency(b.item))
            made.append(doc)
            return doc

        try:
            outcome = self.episodes.merge(b, base, target)
        except Exception as exc:
            if not self._episode_failed(b, exc, left):
                raise
            return
        if outcome == "created":  # the alert vanished meanwhile and was made again
            self.metrics.alerts_indexed.inc()
            self.metrics.suppressed.inc(len(b.offers) - 1)
            created += made
        elif outcome == "merged":
            self.metrics.suppressed.inc(len(b.offers))
        else:
            self.metrics.alerts_duplicate.inc()
        now_at = self.episodes.written
        alert = (now_at[0], now_at[1]) if outcome in ("created", "merged") and now_at else target
        self._wrote(b.key, alert)
        self.outcomes.append((b, outcome, alert))
        if outcome in ("created", "merged") and self.episodes.written is not None:
            written.append(self.episodes.written)

    def _wrote(self, key: str, alert: tuple[str, str]) -> None:
        self._last_write[key] = self.monotonic()
        self._alert_of[key] = alert
        if len(self._last_write) > 100_000:
            self._last_write.clear()
            self._alert_of.clear()

    def _episode_failed(
        self, b: BatchEpisode, exc: Exception, left: list[BatchEpisode], rest: list[BatchEpisode] | None = None
    ) -> bool:
        """Sort a failed episode write (and `rest`, which shared its round trip): retry when Elasticsearch
        is away or busy, dead letter when it refused for good. False: not an error of ours, re-raise."""
        group = [b, *(rest or [])]
        if isinstance(exc, (TransportError, ConnectionError, RuntimeError)):
            if not self._stopping:  # at the last flush the caller reports what was given up, in one line
                log.warning(
                    "detector.episode_write_failed key=%s episodes=%d error=%s retry=yes", b.key, len(group), exc
                )
            left.extend(group)
        elif isinstance(exc, ApiError):
            if exc.meta.status == 429 or exc.meta.status >= 500:
                left.extend(group)
            else:
                for g in group:
                    self.dead_letter(wire.encode(g.item.to_dict()), f"elasticsearch rejected alert: {exc.message}")
        elif isinstance(exc, AlertRejected):
            for g in group:
                self.dead_letter(wire.encode(g.item.to_dict()), f"elasticsearch rejected alert: {exc}")
        elif isinstance(exc, (ValueError, TypeError, KeyError)):  # one bad detection must not stop the batch
            for g in group:
                self.dead_letter(wire.encode(g.item.to_dict()), f"cannot build alert: {exc}")
        else:
            return False
        return True

    def _incidents(self, written: list[tuple[str, str, Doc]]) -> None:
        """Attach written alerts to their incidents, then name each incident on its alert - all those
        in one bulk. A failure here never holds alerts back: the alert is attached again at its next write."""
        if self.incidents is None or not written:
            return
        name: list[tuple[str, str, str]] = []  # (index, alert id, incident id)
        due: list[tuple[str, str, Doc, float]] = []
        for index, alert_id, source in written:
            end = to_epoch((source.get("event") or {}).get("end")) or 0.0
            synced = self._incident_synced.get(alert_id)
            if synced is None or end - synced >= INCIDENT_SYNC_S:
                due.append((index, alert_id, source, end))
        try:
            got = self.incidents.attach_many([(alert_id, source) for _, alert_id, source, _ in due])
        except (TransportError, ApiError, RuntimeError) as exc:
            log.warning("detector.incident_attach_failed alerts=%d error=%s", len(due), exc)
            return
        for (index, alert_id, source, end), incident in zip(due, got):
            if isinstance(incident, Exception):
                log.warning("detector.incident_attach_failed alert=%s error=%s", alert_id, incident)
                continue
            self._incident_synced[alert_id] = end
            if len(self._incident_synced) > 50_000:
                self._incident_synced.clear()
            if incident and ((source.get("socpipe") or {}).get("incident") or {}).get("id") != incident:
                name.append((index, alert_id, incident))
        if not name:
            return
        ops: list[Doc] = []
        for index, alert_id, incident in name:
            ops += [
                {"update": {"_index": index, "_id": alert_id}},
                {"doc": {"socpipe": {"incident": {"id": incident}}}},
            ]
        try:
            resp = self.es.bulk(operations=ops)
        except (TransportError, ApiError) as exc:
            log.warning("detector.incident_attach_failed alerts=%d error=%s", len(name), exc)
            for _, alert_id, _ in name:
                self._incident_synced.pop(alert_id, None)  # named again at its next write
            return
        for (_, alert_id, incident), item in zip(name, resp.get("items") or []):
            info = next(iter(item.values()))
            if "error" in info:
                self._incident_synced.pop(alert_id, None)  # named again at its next write
                log.warning(
                    "detector.incident_attach_failed alert=%s incident=%s error=%s", alert_id, incident, info["error"]
                )
