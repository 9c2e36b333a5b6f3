"""The alert sink: an `AlertPlan` in, documents in Elasticsearch out - with retries and dead letters.

`AlertSink.deliver(plan, hold)` returns only when Elasticsearch acknowledged every new alert and
count update of the plan (the runner commits offsets after it). While Elasticsearch refuses writes it
backs off (up to `retry_backoff_max_s`) and tells `hold` to pause consumption, keep the consumer in its
group, and resume once writes succeed again. Documents Elasticsearch rejects for good, and findings
that cannot become a document, go to `dead_letter` with the reason; nothing is dropped silently.
Created alerts are handed to `notify` (a bounded queue with its own thread: notifications never slow
or stop the write path).

Alert ids are deterministic and written with op_type=create, so a plan delivered twice (a batch
replayed after a crash) creates nothing new.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from elasticsearch import ApiError, TransportError

from collectors import wire
from detectors.alerts import AgencyInfo, build_alert
from detectors.alerts.plan import BatchEpisode, Offer, plan_batch
from detectors.common.times import iso_ms, to_epoch
from detectors.finding import Finding
from pipeline.elastic import AlertIndexer, EventIndexer
from pipeline.elastic.episodes import AlertRejected, EpisodeWriter
from pipeline.elastic.incidents import IncidentStore
from pipeline.worker.alerting import AlertPlan, CountUpdate, NewAlert, reopen, with_repeats
from pipeline.worker_metrics import WorkerMetrics

log = logging.getLogger("socpipe.detector")

Doc = dict[str, Any]
INCIDENT_SYNC_S = 60.0  # an episode's growth reaches its incident at most once a minute (event time)


class Hold(Protocol):
    """What the sink asks of the consumer whose batch it is writing while Elasticsearch refuses."""

    def pause(self) -> None: ...
    def keep_alive(self) -> None: ...
    def resume(self) -> None: ...


class NoHold:
    def pause(self) -> None:
        pass

    def keep_alive(self) -> None:
        pass

    def resume(self) -> None:
        pass


class _Retry:
    """One delivery's wait for Elasticsearch: the first failed attempt pauses the consumer (`hold`); each
    failure backs off (0.5 s doubling up to `retry_backoff_max_s`) and keeps the consumer in its group;
    `done()` resumes it and returns the seconds blocked (0 if nothing failed)."""

    def __init__(self, sink: AlertSink, hold: Hold | None) -> None:
        self.sink, self.hold = sink, hold or NoHold()
        self.backoff = 0.5
        self.paused_at: float | None = None

    def failed(self, pending: str) -> None:
        sink = self.sink
        if self.paused_at is None:
            self.hold.pause()
            self.paused_at = sink.monotonic()
            sink.metrics.paused.set(1)
            log.warning("detector.es_unavailable %s action=pause", pending)
        sink.metrics.index_retries.inc()
        sink.sleep(self.backoff)
        self.hold.keep_alive()
        self.backoff = min(self.backoff * 2, sink.retry_backoff_max_s)

    def done(self) -> float:
        if self.paused_at is None:
            return 0.0
        self.hold.resume()
        self.sink.metrics.paused.set(0)
        blocked = self.sink.monotonic() - self.paused_at
        log.info("detector.es_available action=resume blocked_s=%.1f", blocked)
        return blocked


class AlertSink:
    def __init__(
        self,
        indexer: AlertIndexer,
        metrics: WorkerMetrics,
        dead_letter: Callable[[bytes, str], None],
        *,
        agency_lookup: Callable[[str], AgencyInfo | None] | None = None,
        notify: Callable[[list[Doc]], None] | None = None,
        episodes: EpisodeWriter | None = None,
        incidents: IncidentStore | None = None,
        episode_update_s: float = 0.0,
        retry_backoff_max_s: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.indexer = indexer
        self.metrics = metrics
        self.dead_letter = dead_letter
        self.agency_lookup = agency_lookup or (lambda _agency_id: None)
        self.notify = notify
        self.episodes = episodes
        self.incidents = incidents
        self._incident_synced: dict[str, float] = {}  # alert id -> event.end last written to its incident
        # Bounded update rate: an open alert is rewritten at most every `episode_update_s`; growth in
        # between waits here (new alerts are written at once). Offsets move on meanwhile, so a crash
        # can lose at most that much growth of an existing alert, never an alert.
        self.episode_update_s = episode_update_s
        self._deferred: dict[str, list[Offer]] = {}  # dedup key -> detections not yet merged
        self._last_write: dict[str, float] = {}  # dedup key -> when its alert was last written
        self.retry_backoff_max_s = retry_backoff_max_s
        self.sleep = sleep
        self.monotonic = monotonic

    def deliver(self, plan: AlertPlan, hold: Hold | None = None) -> float:
        """Write new alerts and count updates until Elasticsearch acknowledged all; pause meanwhile.

        Returns the seconds spent writing, blocked or not: the runner shifts the stages' idle timers by
        it, since time not polling is not idleness (an outage longer than allowed_lateness otherwise
        advanced every watermark by wall clock, and the events queued in Kafka meanwhile arrived "late"
        and missed their windows; episode writes are a few round trips each, which adds up too)."""
        if not plan:
            return 0.0
        started = self.monotonic()
        retry = _Retry(self, hold)
        docs = self.documents(plan.new)
        updates = list(plan.updates)
        episodes = list(plan.episodes)
        while True:
            episodes = self._write_episodes(episodes) if episodes else []
            retry_docs = self._write(docs) if docs else []
            left, reopened = self._update_counts(updates) if updates and not retry_docs else (updates, [])
            docs, updates = retry_docs + self.documents(reopened), left
            if not docs and not updates and not episodes:
                break
            if not retry_docs and not left and not episodes:
                continue  # only alerts reopened after their open one was closed: write them now
            retry.failed(f"pending_alerts={len(docs)} pending_updates={len(updates)} pending_episodes={len(episodes)}")
        retry.done()
        return self.monotonic() - started

    def deliver_events(self, indexer: EventIndexer, events: list[Doc], hold: Hold | None = None) -> float:
        """Index normalised events (es.index_events) until Elasticsearch took them all, pausing meanwhile
        like alerts (offsets move only after); a rejected event goes to the dead letters. Seconds blocked."""
        retry = _Retry(self, hold)
        while events:
            result = indexer.index(events)
            self.metrics.events_indexed.inc(len(result.created))
            for doc, reason in result.rejected:
                self.dead_letter(wire.encode(doc), f"elasticsearch rejected event: {reason}")
            events = result.retry
            if events:
                retry.failed(f"pending_events={len(events)}")
        return retry.done()

    def documents(self, new_alerts: list[NewAlert]) -> list[Doc]:
        """Alert documents of the new alerts (repeats folded in); a finding that cannot be one is dead-lettered."""
        docs = []
        for n in new_alerts:
            item = n.candidate.item
            try:
                doc = build_alert(item, agency=self._agency(item))
            except (ValueError, TypeError, KeyError) as exc:  # one bad detection must not stop the batch
                self.dead_letter(wire.encode(item.to_dict()), f"cannot build alert: {exc}")
                continue
            docs.append(with_repeats(doc, n.repeats, iso_ms(n.last_ts) if n.repeats else None))
            if n.repeats:
                self.metrics.suppressed.inc(n.repeats)
        return docs

    def flush_due(self, force: bool = False) -> None:
        """Write the deferred growth whose alert may be rewritten now (the runner calls this every
        poll, and with force=True before it stops)."""
        if not self._deferred or self.episodes is None:
            return
        now = self.monotonic()
        due = [k for k in self._deferred if force or now - self._last_write.get(k, 0.0) >= self.episode_update_s]
        offers = [o for k in due for o in self._deferred.pop(k)]
        if offers:
            pending = plan_batch(offers, self.episodes.quiet_s, self.episodes.max_span_s)
            for b in self._write_episodes(pending, defer=False):  # Elasticsearch busy: next poll
                self._deferred.setdefault(b.key, []).extend(b.offers)

    def _write_episodes(self, batches: list[BatchEpisode], defer: bool = True) -> list[BatchEpisode]:
        """Merge each episode's share into its open alert or create it; those to retry.

        Round trips are per call, not per episode, where they can be: one mget + one msearch find the
        open alerts, one bulk creates the new ones, one bulk names their incidents on them. Merges into
        an existing alert stay one guarded read-write each (rarer: `episode_update_s` bounds them)."""
        assert self.episodes is not None, "a plan with episodes needs an EpisodeWriter"
        left: list[BatchEpisode] = []
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
                    creates.append((b, build_alert(b.item, agency=self._agency(b.item))))
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
                    self._wrote(b.key)
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
        assert self.episodes is not None
        made: list[Doc] = []

        def base(b: BatchEpisode = b, made: list[Doc] = made) -> Doc:
            doc = build_alert(b.item, agency=self._agency(b.item))
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
        self._wrote(b.key)
        if outcome in ("created", "merged") and self.episodes.written is not None:
            written.append(self.episodes.written)

    def _wrote(self, key: str) -> None:
        self._last_write[key] = self.monotonic()
        if len(self._last_write) > 100_000:
            self._last_write.clear()

    def _episode_failed(
        self, b: BatchEpisode, exc: Exception, left: list[BatchEpisode], rest: list[BatchEpisode] | None = None
    ) -> bool:
        """Sort a failed episode write (and `rest`, which shared its round trip): retry when Elasticsearch
        is away or busy, dead letter when it refused for good. False: not an error of ours, re-raise."""
        group = [b, *(rest or [])]
        if isinstance(exc, (TransportError, ConnectionError, RuntimeError)):
            log.warning("detector.episode_write_failed key=%s episodes=%d error=%s retry=yes", b.key, len(group), exc)
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
            resp = self.indexer.es.bulk(operations=ops)
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

    def _agency(self, item: Finding) -> AgencyInfo | None:
        agencies = item.agencies
        return self.agency_lookup(agencies[0]) if len(agencies) == 1 else None

    def _write(self, docs: list[Doc]) -> list[Doc]:
        """Bulk-create; rejected documents go to the dead letters; returns those to retry."""
        result = self.indexer.index(docs)
        self.metrics.alerts_indexed.inc(len(result.created))
        self.metrics.alerts_duplicate.inc(len(result.duplicates))
        for doc, reason in result.rejected:
            self.dead_letter(wire.encode(doc), f"elasticsearch rejected alert: {reason}")
        if self.notify is not None and result.created:
            created = set(result.created)
            self.notify([d for d in docs if d.get("_id") in created])
        return result.retry

    def _update_counts(self, updates: list[CountUpdate]) -> tuple[list[CountUpdate], list[NewAlert]]:
        """Add repeats to open alerts; (updates to retry later, new alerts for keys whose alert is gone)."""
        left: list[CountUpdate] = []
        reopened: list[NewAlert] = []
        for u in updates:
            try:
                got = self.indexer.update_suppressed(
                    u.candidate.dedup_key, u.repeats, iso_ms(u.last_ts), since=iso_ms(u.window_start)
                )
            except (TransportError, RuntimeError) as exc:  # ES down, or conflicting writers: try again
                log.warning("detector.suppression_update_failed key=%s error=%s retry=yes", u.candidate.dedup_key, exc)
                left.append(u)
                continue
            except ApiError as exc:
                if exc.meta.status == 429 or exc.meta.status >= 500:
                    left.append(u)
                else:
                    log.error(
                        "detector.suppression_update_rejected key=%s status=%s error=%s repeats_lost=%d",
                        u.candidate.dedup_key,
                        exc.meta.status,
                        exc.message,
                        u.repeats,
                    )
                continue
            if got is None:
                reopened.append(reopen(u))
            else:
                self.metrics.suppressed.inc(u.repeats)
        return left, reopened
