"""The dead-letter topic read back (`socpipe detect dead-letters`): pure, no I/O.

The detector worker sends what it cannot process to the dead-letter topic (`dead_letter_topic`) with a
`reason` header (`pipeline.worker.outputs`). What a letter holds, by `kind` as listed:

* `episode_growth`: an alert's growth given up at a stop during an Elasticsearch outage
  (`episode_sink.GivenUp.letters`); the only kind `replay` writes back;
* `finding`: a detection or model finding whose alert could not be built or that Elasticsearch rejected
  (`Finding.to_dict`);
* `event`: an event document Elasticsearch rejected (`es.index_events`);
* `correlation_input`: a correlation-topic record the worker could not decode (its raw bytes);
* `other` / `unreadable`: JSON of no known shape / not JSON (nothing socpipe wrote: shown, never trusted).

Everything in a letter came from logs or from whoever could write to the topic: rows carry it as data
(the CLI cleans it for the terminal), and a letter that does not parse is one row's error, never the end
of the listing or of a replay.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from detectors.alerts.plan import Offer
from detectors.common.times import iso_ms, record_time
from detectors.finding import finding_from_dict
from pipeline.worker.episode_sink import GIVEN_UP_KIND, GIVEN_UP_REASON

KINDS = ("episode_growth", "finding", "event", "correlation_input", "other", "unreadable")
MAX_DETECTIONS = 1_000_000  # per letter: far more than ~900 kB of detections can be
MAX_PARTS = 100_000  # parts of one alert's growth: ~90 GB of detections in ~900 kB parts
MAX_TS = 1e11  # epoch seconds (year 5138): a detection's times must be dates, with room for the episode windows


@dataclass(frozen=True)
class DeadLetter:
    """One record of the dead-letter topic, as Kafka gave it."""

    partition: int
    offset: int
    timestamp_ms: int
    headers: Sequence[tuple[Any, Any]]
    value: bytes | None

    @property
    def where(self) -> str:
        return f"{self.partition}:{self.offset}"

    def header(self, name: str) -> str:
        for k, v in self.headers or ():
            if k == name and isinstance(v, bytes):
                return v.decode("utf-8", "replace")
        return ""


class LetterError(ValueError):
    """A letter that cannot be replayed as it is (garbled, forged, cut short): its row says why."""


@dataclass(frozen=True)
class Growth:
    """An `episode_growth` letter read back: the detections to merge into the alert it names."""

    key: str  # the episode's dedup key
    alert: tuple[str, str] | None  # (index, id) the worker last wrote; None: find the open alert of `key`
    part: int
    parts: int
    offers: list[Offer]


def _payload(letter: DeadLetter) -> Any:
    try:
        return json.loads(letter.value or b"")
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def kind_of(letter: DeadLetter, payload: Any = None) -> str:
    """The letter's kind (see the module doc), from its reason header and its JSON."""
    if letter.header("reason").startswith("undecodable correlation input"):
        return "correlation_input"
    if payload is None:
        payload = _payload(letter)
    if letter.header("reason") == GIVEN_UP_REASON:  # garbled or not: replay says what is wrong with it
        return GIVEN_UP_KIND
    if not isinstance(payload, dict):
        return "unreadable" if payload is None else "other"
    if payload.get("kind") == GIVEN_UP_KIND:
        return GIVEN_UP_KIND
    if "detection_id" in payload or "finding_id" in payload:
        return "finding"
    if letter.header("reason").startswith("elasticsearch rejected event"):
        return "event"
    return "other"


def _text(value: Any, limit: int = 80) -> str:
    return (value if isinstance(value, str) else json.dumps(value, default=str))[:limit]


def _summary(kind: str, payload: Any, letter: DeadLetter) -> tuple[str, str]:
    """(a one-line summary, the alert id it concerns or '') for a letter of `kind`."""
    size = len(letter.value or b"")
    if kind == GIVEN_UP_KIND:
        if not isinstance(payload, dict):
            return f"{size} bytes, not a JSON object: garbled", letter.header("alert_id")[:80]
        alert: dict[str, Any] = payload["alert"] if isinstance(payload.get("alert"), dict) else {}
        dets: list[Any] = payload["detections"] if isinstance(payload.get("detections"), list) else []
        first = dets[0].get("detection") if dets and isinstance(dets[0], dict) else None
        title = first.get("rule_title") or first.get("model") if isinstance(first, dict) else None
        alert_id = _text(alert.get("id") or "", 80)
        return (
            f"{len(dets)} detection(s) of {_text(title or '?', 60)} for alert "
            f"{alert_id or '(none named: open alert of its key)'} part {_text(payload.get('part'), 6)}/"
            f"{_text(payload.get('parts'), 6)}, key {_text(payload.get('dedup_key') or '?', 60)}",
            alert_id,
        )
    if kind == "finding":
        if "finding_id" in payload:
            return (
                f"model {_text(payload.get('model') or '?', 40)} entity {_text(payload.get('entity'), 60)} "
                f"score {_text(payload.get('score'), 12)}",
                _text(payload.get("finding_id") or "", 80),
            )
        start = payload.get("start_ts")
        when = iso_ms(float(start)) if isinstance(start, (int, float)) and not isinstance(start, bool) else "?"
        return (
            f"rule {_text(payload.get('rule_title') or payload.get('rule_id') or '?', 60)} "
            f"({_text(payload.get('kind') or '?', 20)}, {_text(payload.get('count'), 10)} event(s) from {when})",
            _text(payload.get("detection_id") or "", 80),
        )
    if kind == "event":
        return (
            f"event {_text(payload.get('event.dataset') or payload.get('_index') or '?', 40)} at "
            f"{_text(payload.get('@timestamp') or '?', 30)} host {_text(payload.get('host.name') or '?', 40)}",
            "",
        )
    if kind == "correlation_input":
        return f"{size} bytes, undecodable", ""
    if kind == "other":
        return f"{size} bytes of JSON of no known shape", ""
    return f"{size} bytes, not JSON", ""


def letter_row(letter: DeadLetter) -> dict[str, Any]:
    """One letter as `socpipe detect dead-letters list` shows it (and --json writes it)."""
    payload = _payload(letter)
    kind = kind_of(letter, payload)
    summary, alert_id = _summary(kind, payload, letter)
    return {
        "time": record_time(letter.timestamp_ms),
        "partition": letter.partition,
        "offset": letter.offset,
        "reason": letter.header("reason"),
        "kind": kind,
        "summary": summary,
        "alert_id": alert_id or letter.header("alert_id")[:80],
        "bytes": len(letter.value or b""),
    }


def select_rows(
    rows: list[dict[str, Any]], *, reason: str | None, kind: str | None, limit: int
) -> list[dict[str, Any]]:
    """Rows of the reason (its text, or the start of it: `--reason 'cannot build alert'`) and kind,
    oldest first, the latest `limit`."""
    out = [
        r
        for r in rows
        if (reason is None or r["reason"] == reason or r["reason"].startswith(reason))
        and (kind is None or r["kind"] == kind)
    ]
    out.sort(key=lambda r: (r["time"], r["partition"], r["offset"]))
    return out[-limit:]


def growth_of(letter: DeadLetter) -> Growth:
    """An `episode_growth` letter's growth, every detection read back as the worker held it
    (`Offer.of(finding, source, offset)`); LetterError saying what is wrong with it."""
    payload = _payload(letter)
    if not isinstance(payload, dict):
        raise LetterError("not a JSON object" if payload is None else "JSON, but not an object")
    if payload.get("kind") != GIVEN_UP_KIND:
        raise LetterError(f"kind {_text(payload.get('kind'), 40)!r}, not {GIVEN_UP_KIND}")
    key = payload.get("dedup_key")
    if not isinstance(key, str) or not key:
        raise LetterError("no dedup_key")
    alert_field = payload.get("alert")
    alert: tuple[str, str] | None = None
    if alert_field is not None:
        if not (
            isinstance(alert_field, dict)
            and isinstance(alert_field.get("index"), str)
            and isinstance(alert_field.get("id"), str)
            and alert_field["index"]
            and alert_field["id"]
        ):
            raise LetterError("alert is neither null nor {index, id} strings")
        alert = (alert_field["index"], alert_field["id"])
    part, parts = payload.get("part", 1), payload.get("parts", 1)
    if not (type(part) is int and type(parts) is int and 1 <= part <= parts <= MAX_PARTS):
        raise LetterError(f"part {_text(part, 10)} of {_text(parts, 10)} is not a part number (at most {MAX_PARTS})")
    dets = payload.get("detections")
    if not isinstance(dets, list) or not dets:
        raise LetterError("no detections")
    if len(dets) > MAX_DETECTIONS:
        raise LetterError(f"{len(dets)} detections, more than {MAX_DETECTIONS}")
    offers = []
    for n, entry in enumerate(dets, 1):
        if not isinstance(entry, dict):
            raise LetterError(f"detection {n}: not an object")
        record = entry.get("record") if entry.get("record") is not None else {}
        if not isinstance(record, dict):
            raise LetterError(f"detection {n}: record is not an object")
        source, offset = record.get("source"), record.get("offset", -1)
        if not (source is None or isinstance(source, str)) or type(offset) is not int:
            raise LetterError(f"detection {n}: record is not {{source: text or null, offset: integer}}")
        try:
            finding = finding_from_dict(entry.get("detection"))
            offer = Offer.of(finding, source, offset)
            for ts in (offer.first_ts, offer.last_ts):  # the alert's dates and the open-alert query's
                if not 0.0 <= ts < MAX_TS:  # NaN too
                    raise ValueError(f"time {ts!r} is not an epoch time between 1970 and 5138")
        except (ValueError, TypeError, KeyError) as exc:
            raise LetterError(f"detection {n}: {exc}") from None
        except RecursionError:  # copying evidence nested deeper than Python's stack (JSON reads ~1000)
            raise LetterError(f"detection {n}: nested too deeply") from None
        if offer.dedup_key != key:
            raise LetterError(f"detection {n}: its dedup key is not the letter's ({_text(offer.dedup_key, 60)!r})")
        offers.append(offer)
    return Growth(key, alert, part, parts, offers)
