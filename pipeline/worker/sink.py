"""The alert sink: an `AlertPlan` in, documents in Elasticsearch out - with retries and dead letters.

`AlertSink.deliver(plan, hold)` returns only when Elasticsearch acknowledged every new alert and
count update of the plan (the runner commits offsets after it). While Elasticsearch refuses writes it
backs off (up to `retry_backoff_max_s`) and tells `hold` to pause consumption, keep the consumers in
their groups (the runner's hold covers both stages' consumers: `Rebalance.hold`), and resume once writes
succeed again. Documents Elasticsearch rejects for good, and findings
that cannot become a document, go to `dead_letter` with the reason; nothing is dropped silently.
Created alerts are handed to `notify` (a bounded queue with its own thread: notifications never slow
or stop the write path).

Alert ids are deterministic and written with op_type=create, so a plan delivered twice (a batch
replayed after a crash) creates nothing new. The plan's episodes (merged into open alerts, attached to
incidents) are written by `EpisodeSink` (episode_sink.py); this module retries them like the rest.

A worker told to stop (`stopping`) while Elasticsearch refuses writes gives the batch up (`Stopping`)
instead of waiting for Elasticsearch: nothing of it is committed, so whoever gets its partitions next
reads it again (alerts are idempotent), and the worker leaves its groups at once instead of being
killed later by its service manager, a member the group waits a whole session timeout for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from elasticsearch import ApiError, TransportError

from collectors import wire
from detectors.alerts import AgencyInfo, build_alert
from detectors.alerts.plan import BatchEpisode
from detectors.common.times import iso_ms
from detectors.finding import Finding
from pipeline.elastic import AlertIndexer, EventIndexer
from pipeline.elastic.episodes import EpisodeWriter
from pipeline.elastic.incidents import IncidentStore
from pipeline.worker.alerting import AlertPlan, CountUpdate, Doc, NewAlert, reopen, with_repeats
from pipeline.worker.episode_sink import GIVEN_UP_REASON, EpisodeSink
from pipeline.worker_metrics import WorkerMetrics

log = logging.getLogger("socpipe.detector")


# sends dead letters (payload, reason, more headers) and waits: (how many Kafka has, the first error or '')
DeadLettersNow = Callable[[list[tuple[bytes, str, list[tuple[str, bytes]]]]], tuple[int, str]]


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


class Stopping(Exception):
    """The worker is stopping while Elasticsearch refuses writes: the batch was given up, uncommitted."""


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
        if sink.stopping():
            raise Stopping(pending)
        if self.paused_at is None:
            self.hold.pause()
            self.paused_at = sink.monotonic()
            sink.metrics.paused.set(1)
            log.warning("detector.es_unavailable %s action=pause", pending)
        sink.metrics.index_retries.inc()
        sink.sleep(self.backoff)  # the runner's: returns early when the worker is told to stop
        if sink.stopping():
            raise Stopping(pending)
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
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self.indexer = indexer
        self.metrics = metrics
        self.dead_letter = dead_letter
        self.agency_lookup = agency_lookup or (lambda _agency_id: None)
        self.notify = notify
        # the episode path (episode_sink.py): merges, deferred growth, incidents
        self.episode_sink = (
            EpisodeSink(
                episodes,
                indexer.es,
                metrics,
                dead_letter,
                self._agency,
                notify=notify,
                incidents=incidents,
                episode_update_s=episode_update_s,
                monotonic=monotonic,
            )
            if episodes is not None
            else None
        )
        self.retry_backoff_max_s = retry_backoff_max_s
        self.sleep = sleep
        self.monotonic = monotonic
        self.stopping = stopping

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
        if self.episode_sink is not None:
            self.episode_sink.flush_due(force)

    def flush_at_stop(self, dead_letters: DeadLettersNow | None = None) -> tuple[int, int]:
        """The last flush before the worker exits: deferred episode growth written once more, never waited
        for (`EpisodeSink.flush_at_stop`). What Elasticsearch does not take goes to `dead_letters` (sent
        and waited for: `KafkaOutputs.dead_letters_confirmed`), one letter per alert (`GivenUp.letters`),
        and is reported in one log line, saying whether the dead-letter topic has it.
        (alerts, detections) given up."""
        if self.episode_sink is None:
            return 0, 0
        given = self.episode_sink.flush_at_stop()
        if not given:
            return 0, 0
        alerts, detections = len(given), sum(len(g.offers) for g in given)
        letters = [
            (payload, GIVEN_UP_REASON, [("alert_id", (g.alert[1] if g.alert else "").encode())])
            for g in given
            for payload in g.letters()
        ]
        if dead_letters is None:
            written, error = 0, "no dead-letter output"
        else:
            try:
                written, error = dead_letters(letters)
            except Exception as exc:  # the line below must still be written
                written, error = 0, f"{type(exc).__name__}: {exc}"
        if written == len(letters) and not error:
            log.warning(
                "detector.stop_episode_growth_given_up alerts=%d detections=%d reason=elasticsearch_unavailable "
                "dead_letters=%d/%d (their records' offsets were committed when the growth was deferred: not read "
                "again; the dead-letter topic has each alert's id and these detections, reason '%s', to merge "
                "into it)",
                alerts,
                detections,
                written,
                len(letters),
                GIVEN_UP_REASON,
            )
        else:
            log.error(
                "detector.stop_episode_growth_given_up alerts=%d detections=%d reason=elasticsearch_unavailable "
                "dead_letters=%d/%d dead_letter_error=%r (LOST: the dead-letter topic does not have %d of them "
                "and their records' offsets were committed when the growth was deferred; alert ids: %s)",
                alerts,
                detections,
                written,
                len(letters),
                error,
                len(letters) - written,
                ",".join(g.alert[1] if g.alert else f"key:{g.key}" for g in given)[:2000],
            )
        return alerts, detections

    def _write_episodes(self, batches: list[BatchEpisode]) -> list[BatchEpisode]:
        assert self.episode_sink is not None, "a plan with episodes needs an EpisodeWriter"
        return self.episode_sink.write(batches)

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
