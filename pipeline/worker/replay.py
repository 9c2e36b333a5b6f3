"""Replay of given-up episode growth (`socpipe detect dead-letters replay`): the worker's own write path.

An `episode_growth` letter is an alert's growth the worker's last flush could not write at a stop
(`EpisodeSink.flush_at_stop`). Its parts are read back as the worker held them (`Offer`s of each
detection and the Kafka record it came from) and handed to the worker's `EpisodeSink.write` - the same
open-alert lookup (the letter's alert first, as the worker checks the alert it wrote last), the same
merge guarded by seq_no (`EpisodeWriter.merge`), the same incident attachment - so the alert ends as
the worker would have left it had Elasticsearch answered. No second merger here.

Idempotent: the merge adds only what the alert's replay memory (per-partition offset ranges of the
records merged, the last 512 detection ids; see `pipeline.elastic.episodes`) does not hold, so a
letter replayed twice, or after the worker wrote that growth itself, adds nothing.

Dry run by default (`apply=False`): the same lookup, read only, says per letter what the write would do.
Per letter the result is a row; a letter that cannot be read, names an index that is not an alert
index, or that Elasticsearch refuses is its own row's error and the rest go on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from elasticsearch import ApiError, TransportError

from detectors.alerts.plan import BatchEpisode, Offer, plan_batch
from pipeline.elastic.episodes import EpisodeWriter
from pipeline.worker.dead_letters import DeadLetter, Growth, LetterError, growth_of, kind_of
from pipeline.worker.episode_sink import GIVEN_UP_KIND, EpisodeSink

ES_ERRORS = (TransportError, ApiError, ConnectionError, RuntimeError)


@dataclass
class ReplayRow:
    """What the replay did (or would do) with one letter, or one alert's letters (its parts)."""

    letters: list[str]  # partition:offset of each letter
    outcome: str  # would-merge | merged | would-create | created | nothing-to-add | retry | error | skipped
    message: str
    alert: str = ""  # the alert's id
    detections: int = 0  # detections the letters carry
    added: int = 0  # of them not in the alert yet (dry run: would be added)
    before: int | None = None  # the alert's episode detections before / after
    after: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "letters": self.letters,
            "outcome": self.outcome,
            "alert": self.alert,
            "detections": self.detections,
            "added": self.added,
            "before": self.before,
            "after": self.after,
            "message": self.message,
        }

    @property
    def failed(self) -> bool:
        return self.outcome in ("error", "retry")


def _count(source: dict[str, Any] | None) -> int | None:
    ep = ((source or {}).get("socpipe") or {}).get("episode") or {}
    n = ep.get("detections")
    return n if isinstance(n, int) else None


class GrowthReplay:
    """Replays `episode_growth` letters through `sink` (the worker's EpisodeSink, built like the worker's);
    `alert_prefix`: the only indices a letter may name (`<es.index_prefix>-alerts-`)."""

    def __init__(
        self,
        sink: EpisodeSink,
        alert_prefix: str,
        rejected: Callable[[], list[str]],
        partial: bool = False,
        record_ends: Callable[[set[str]], dict[str, int]] | None = None,
    ) -> None:
        self.sink = sink
        # the end offset Kafka has of each `topic/partition` a letter's records name (kafka_io.record_ends):
        # a record at or past it is forged, and merged it would make the alert take every record of that
        # partition up to it for merged already (its replay memory), so the alert stopped growing
        self.record_ends = record_ends
        # write an alert's growth with some of its parts not among the letters read: the alert then
        # remembers the records of the parts it got as one offset range per partition, which holds the
        # missing parts' records too, so a later replay of those adds nothing (they are lost)
        self.partial = partial
        self.writer: EpisodeWriter = sink.episodes
        self.alert_prefix = alert_prefix
        self.rejected = rejected  # reasons the sink gave its dead_letter callback since the last call

    def run(self, letters: list[DeadLetter], apply: bool) -> list[ReplayRow]:
        rows: list[ReplayRow] = []
        groups: dict[tuple[str, tuple[str, str] | None], list[tuple[DeadLetter, Growth]]] = {}
        parsed: list[tuple[DeadLetter, Growth]] = []
        for letter in letters:
            kind = kind_of(letter)
            if kind != GIVEN_UP_KIND:
                rows.append(
                    ReplayRow(
                        [letter.where],
                        "skipped",
                        f"kind {kind}: listed, not replayed (replay writes {GIVEN_UP_KIND} letters only)",
                        alert=letter.header("alert_id")[:80],
                    )
                )
                continue
            try:
                growth = growth_of(letter)
                if growth.alert is not None and not growth.alert[0].startswith(self.alert_prefix):
                    raise LetterError(f"names index {growth.alert[0][:80]!r}, not one of {self.alert_prefix}*")
            except LetterError as exc:
                rows.append(ReplayRow([letter.where], "error", f"cannot replay: {exc}"))
                continue
            parsed.append((letter, growth))
        ends = None
        if self.record_ends is not None and parsed:
            ends = self.record_ends({o.source for _, g in parsed for o in g.offers if o.source is not None})
        for letter, growth in parsed:
            bad = None
            if ends is not None:
                bad = next(
                    (o for o in growth.offers if o.source is not None and not 0 <= o.offset < ends.get(o.source, 0)),
                    None,
                )
            if bad is not None and bad.source is not None:
                end = ends.get(bad.source) if ends is not None else None
                rows.append(
                    ReplayRow(
                        [letter.where],
                        "error",
                        f"cannot replay: a detection's record {bad.source[:80]}@{bad.offset} is not one Kafka has "
                        f"({'end offset ' + str(end) if end is not None else 'no such partition'})",
                    )
                )
                continue
            groups.setdefault((growth.key, growth.alert), []).append((letter, growth))
        for (key, alert), parts in groups.items():
            rows += self._group(key, alert, parts, apply)
        return rows

    def _group(
        self, key: str, alert: tuple[str, str] | None, parts: list[tuple[DeadLetter, Growth]], apply: bool
    ) -> list[ReplayRow]:
        """One alert's letters (its parts, read together as the worker would have written them)."""
        where = [letter.where for letter, _ in parts]
        # a detection once, however many letters carry it (a letter read twice, a part sent again):
        # the alert's replay memory skips what it merged before, not what one write holds twice
        offers: list[Offer] = []
        seen: set[tuple[str | None, int, str]] = set()
        for _, g in parts:
            for o in g.offers:
                if (o.source, o.offset, o.alert_id) not in seen:
                    seen.add((o.source, o.offset, o.alert_id))
                    offers.append(o)
        have = {g.part for _, g in parts}
        missing = sorted(set(range(1, max(g.parts for _, g in parts) + 1)) - have)
        shown = ",".join(map(str, missing[:10])) + (f",... ({len(missing)} parts)" if len(missing) > 10 else "")
        note = f" (parts {shown} not among the letters read)" if missing else ""
        batches = plan_batch(offers, self.writer.quiet_s, self.writer.max_span_s)

        def retry(exc: BaseException) -> list[ReplayRow]:
            return [
                ReplayRow(
                    where,
                    "retry",
                    f"Elasticsearch failed ({type(exc).__name__}: {exc}): run the replay again{note}",
                    alert=alert[1] if alert else "",
                )
            ]

        if alert is not None:
            # the alert a letter names is where the merge starts (find_open checks only that the episode
            # continues): it must be an alert of the letter's key, or a letter could merge one key's
            # detections into any other alert
            try:
                named = self.writer.key_of(alert)
            except ES_ERRORS as exc:
                return retry(exc)
            if named is not None and named != key:
                return [
                    ReplayRow(
                        where,
                        "error",
                        f"cannot replay: names alert {alert[1][:80]!r}, which is of another dedup key "
                        f"({named[:60]!r}, the letter's {key[:60]!r}){note}",
                    )
                ]
            self.writer.remember_target(key, alert)
        try:
            preview = self._preview(batches)
        except ES_ERRORS as exc:
            return retry(exc)
        if not apply:
            return [self._row(where, b, p, note) for b, p in zip(batches, preview)]
        if missing and not self.partial:
            return [
                ReplayRow(
                    where,
                    "error",
                    f"not written: parts {shown} of {max(g.parts for _, g in parts)} are not "
                    "among the letters read; replay all of this alert's parts together (a part written alone "
                    "makes the alert skip the others later), or --partial if they are lost",
                    alert=alert[1] if alert else "",
                    detections=len(offers),
                )
            ]
        self.rejected()
        try:
            left = self.sink.write(batches, defer=False)
        except ES_ERRORS as exc:
            return retry(exc)
        done = {id(b): (outcome, target) for b, outcome, target in self.sink.outcomes}
        refused = self.rejected()
        rows = []
        for b, (target, source, fresh) in zip(batches, preview):
            row = self._row(where, b, (target, source, fresh), note)
            if any(b is x for x in left):
                row.outcome, row.message = "retry", f"Elasticsearch did not take it: run the replay again{note}"
            elif id(b) not in done:
                row.outcome = "error"
                row.message = f"not written: {'; '.join(refused) or 'no outcome'}{note}"
            else:
                outcome, (index, alert_id) = done[id(b)]
                row.alert = alert_id
                try:
                    row.after = _count(self.writer.es.get(index=index, id=alert_id)["_source"])
                except ES_ERRORS:
                    row.after = None
                if outcome == "replayed":
                    row.outcome, row.added = "nothing-to-add", 0
                    row.message = f"already in alert {alert_id}: nothing added{note}"
                else:
                    row.outcome = outcome
                    verb = "merged into" if outcome == "merged" else "created as"
                    counts = f" ({row.before} -> {row.after} detections)" if outcome == "merged" else ""
                    row.message = f"{row.added} of {len(b.offers)} detection(s) {verb} alert {alert_id}{counts}{note}"
            rows.append(row)
        return rows

    def _preview(
        self, batches: list[BatchEpisode]
    ) -> list[tuple[tuple[str, str] | None, dict[str, Any] | None, list[Offer]]]:
        """Per batch, read only: the alert the write would go to, its document, the detections it lacks."""
        out: list[tuple[tuple[str, str] | None, dict[str, Any] | None, list[Offer]]] = []
        for b, target in zip(batches, self.writer.find_open_many(batches)):
            got = self.writer.unmerged(b, target) if target is not None else None
            if got is None:
                out.append((None, None, list(b.offers)))
            else:
                out.append((target, got[0], got[1]))
        return out

    def _row(
        self,
        where: list[str],
        b: BatchEpisode,
        preview: tuple[tuple[str, str] | None, dict[str, Any] | None, list[Offer]],
        note: str,
    ) -> ReplayRow:
        target, source, fresh = preview
        if target is None:
            return ReplayRow(
                where,
                "would-create",
                f"no open alert continues this episode: would create alert {b.alert_id} "
                f"with {len(b.offers)} detection(s){note}",
                alert=b.alert_id,
                detections=len(b.offers),
                added=len(b.offers),
            )
        before = _count(source)
        if not fresh:
            return ReplayRow(
                where,
                "nothing-to-add",
                f"already in alert {target[1]}: nothing to add{note}",
                alert=target[1],
                detections=len(b.offers),
                before=before,
            )
        return ReplayRow(
            where,
            "would-merge",
            f"would add {len(fresh)} of {len(b.offers)} detection(s) to alert {target[1]} "
            f"(now {before if before is not None else '?'}){note}",
            alert=target[1],
            detections=len(b.offers),
            added=len(fresh),
            before=before,
        )
