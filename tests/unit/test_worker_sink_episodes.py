"""The sink's episode path writes per call, not per alert: one lookup and one bulk create for all a
batch's new episodes, each item's outcome handled on its own (created, replay -> merge, retry with
back-off, rejected -> dead letter), and one incident pass plus one naming bulk for what was written.
Fakes for Elasticsearch here; tests/integration/test_incidents.py and test_detector_e2e run the real one."""

from __future__ import annotations

import json
from typing import Any

from detectors.alerts.plan import BatchEpisode, Offer, plan_batch
from detectors.sigma.detection import make_detection
from detectors.sigma.model import RuleMeta
from pipeline.elastic.episodes import EpisodeWriter
from pipeline.elastic.incidents import IncidentStore
from pipeline.worker.alerting import AlertPlan
from pipeline.worker.episode_sink import GivenUp
from pipeline.worker.sink import AlertSink
from pipeline.worker_metrics import WorkerMetrics

T0 = 1_795_000_000.0


def batches(n: int) -> list[BatchEpisode]:
    offers = []
    for i in range(n):
        meta = RuleMeta(id=f"00000000-0000-4000-8000-{i:012d}", title=f"Rule {i}", level="high", tags=[])
        ev = {"@timestamp": "2026-11-19T08:00:00.000Z", "source.ip": f"198.51.100.{i + 1}", "organization.id": "so-tc"}
        det = make_detection(meta, "single", {"source.ip": ev["source.ip"]}, [T0 + i, T0 + i], [ev], 1, T0 + i)
        offers.append(Offer.of(det))
    return plan_batch(offers, 900.0, 86400.0)


class FakeEpisodes(EpisodeWriter):
    """No Elasticsearch: each create attempt's outcome is given per alert id."""

    def __init__(self, outcomes: dict[str, list[str]]) -> None:
        self.quiet_s, self.max_span_s = 900.0, 86400.0
        self.outcomes = outcomes  # alert id -> outcome of each create attempt, in order
        self.calls: list[tuple[str, int]] = []
        self.written: tuple[str, str, dict[str, Any]] | None = None

    def find_open_many(self, todo: list[BatchEpisode]) -> list[tuple[str, str] | None]:
        self.calls.append(("find", len(todo)))
        return [None] * len(todo)

    def create_many(self, items: list[tuple[BatchEpisode, dict[str, Any]]]) -> list[tuple[str, Any]]:
        self.calls.append(("create", len(items)))
        out: list[tuple[str, Any]] = []
        for b, doc in items:
            what = self.outcomes[b.alert_id].pop(0)
            value = {
                "created": ("idx", b.alert_id, {k: v for k, v in doc.items() if k != "_id"}),
                "exists": ("idx", b.alert_id),
                "retry": None,
                "rejected": "mapper_parsing_exception",
            }[what]
            out.append((what, value))
        return out

    def merge(self, b: BatchEpisode, base: Any, target: tuple[str, str], attempts: int = 8) -> str:
        self.calls.append(("merge", 1))
        self.written = (target[0], target[1], {"event": {"end": "2026-11-19T08:00:00.000Z"}})
        return "merged"


class FakeIncidents(IncidentStore):
    def __init__(self) -> None:  # no Elasticsearch
        self.calls: list[list[str]] = []

    def attach_many(self, alerts: list[tuple[str, dict[str, Any]]]) -> list[str | None | Exception]:
        self.calls.append([a for a, _ in alerts])
        return ["incident-1" for _ in alerts]


class FakeES:
    def __init__(self) -> None:
        self.bulks: list[list[dict[str, Any]]] = []

    def bulk(self, operations: list[dict[str, Any]]) -> dict[str, Any]:
        self.bulks.append(operations)
        return {"items": [{"update": {"status": 200}} for _ in operations[::2]]}


class Indexer:
    def __init__(self) -> None:
        self.es = FakeES()


def test_new_episodes_take_one_lookup_and_one_bulk_and_each_outcome_is_its_own() -> None:
    todo = batches(4)
    created, replay, busy, bad = (b.alert_id for b in todo)
    episodes = FakeEpisodes({created: ["created"], replay: ["exists"], busy: ["retry", "created"], bad: ["rejected"]})
    incidents, indexer = FakeIncidents(), Indexer()
    dead: list[str] = []
    slept: list[float] = []
    sink = AlertSink(
        indexer,  # type: ignore[arg-type]
        WorkerMetrics(),
        lambda p, r: dead.append(r),
        episodes=episodes,
        incidents=incidents,
        sleep=slept.append,
    )
    sink.deliver(AlertPlan(episodes=todo))
    # first pass: one lookup, one bulk of 4, the replay merged; then only the one to retry, after a back-off
    assert episodes.calls == [("find", 4), ("create", 4), ("merge", 1), ("find", 1), ("create", 1)]
    assert slept == [0.5]
    assert dead == ["elasticsearch rejected alert: mapper_parsing_exception"]
    assert incidents.calls == [[created, replay], [busy]]  # one incident pass per write pass
    named = [op["update"]["_id"] for bulk in indexer.es.bulks for op in bulk[::2]]
    assert named == [created, replay, busy] and len(indexer.es.bulks) == 2


class GoesDown(FakeEpisodes):
    """Creates every alert while up; once `down`, every round trip fails as with a dead node."""

    def __init__(self) -> None:
        super().__init__({})
        self.down = False
        self.created: set[str] = set()

    def find_open_many(self, todo: list[BatchEpisode]) -> list[tuple[str, str] | None]:
        if self.down:
            raise ConnectionError("Connection error caused by: ConnectionRefusedError(111)")
        self.calls.append(("find", len(todo)))
        return [("idx", b.alert_id) if b.key in self.created else None for b in todo]

    def create_many(self, items: list[tuple[BatchEpisode, dict[str, Any]]]) -> list[tuple[str, Any]]:
        self.created.update(b.key for b, _ in items)  # later batches of the key merge into it
        return [("created", ("idx", b.alert_id, {})) for b, _ in items]


Letters = list[tuple[bytes, str, list[tuple[str, bytes]]]]


def _stopped_during_outage(caplog: Any) -> tuple[AlertSink, GoesDown, list[BatchEpisode]]:
    """Two alerts written, then their growth (3 detections) deferred by the bounded update rate, then
    Elasticsearch down: what a worker holds when it is stopped during an outage."""
    episodes = GoesDown()
    clock = [100.0]
    sink = AlertSink(
        Indexer(),  # type: ignore[arg-type]
        WorkerMetrics(),
        lambda p, r: None,
        episodes=episodes,
        episode_update_s=60.0,
        monotonic=lambda: clock[0],
    )
    first = batches(2)
    sink.deliver(AlertPlan(episodes=first))  # two alerts written
    clock[0] += 1
    sink.deliver(AlertPlan(episodes=batches(2) + batches(1)))  # their growth deferred (written 1 s ago)
    episodes.down = True
    caplog.set_level("DEBUG", logger="socpipe.detector")
    return sink, episodes, first


def _warnings(caplog: Any) -> list[str]:
    assert not any(r.exc_info for r in caplog.records)
    return [r.getMessage() for r in caplog.records if r.levelname in ("WARNING", "ERROR")]


def test_growth_the_last_flush_cannot_write_goes_to_the_dead_letters_in_one_log_line(caplog: Any) -> None:
    """A worker stopped while Elasticsearch is down: the growth deferred by the bounded update rate
    (offsets already committed) is tried once, not waited for; what is not written goes to the
    dead-letter topic, one letter per alert with its id and the detections to merge, and is reported in
    one structured line with its counts; nothing says it will be retried."""
    sink, episodes, first = _stopped_during_outage(caplog)
    sent: Letters = []

    def dead_letters(letters: Letters) -> tuple[int, str]:
        sent.extend(letters)
        return len(letters), ""

    assert sink.flush_at_stop(dead_letters) == (2, 3)
    lines = _warnings(caplog)
    assert len(lines) == 1, lines
    assert lines[0].startswith("detector.stop_episode_growth_given_up alerts=2 detections=3 ")
    assert "dead_letters=2/2 " in lines[0] and "LOST" not in lines[0]
    assert "retry=yes" not in caplog.text
    assert [reason for _, reason, _ in sent] == ["episode growth given up at stop"] * 2
    letters = {dict(headers)["alert_id"].decode(): json.loads(payload) for payload, _, headers in sent}
    assert set(letters) == {b.alert_id for b in first}  # the alerts the growth belongs to
    for alert_id, letter in letters.items():
        assert letter["kind"] == "episode_growth" and letter["alert"] == {"index": "idx", "id": alert_id}
        assert (letter["part"], letter["parts"]) == (1, 1)
        for d in letter["detections"]:
            assert d["detection"]["dedup_key"] == letter["dedup_key"] and d["detection"]["evidence"]
    assert sum(len(letter["detections"]) for letter in letters.values()) == 3
    caplog.clear()
    episodes.down = False
    assert sink.flush_at_stop(dead_letters) == (0, 0)  # given up once: not held any more
    assert not caplog.records and len(sent) == 2


def test_growth_the_dead_letter_topic_does_not_take_is_reported_lost(caplog: Any) -> None:
    sink, _, first = _stopped_during_outage(caplog)

    def kafka_away(letters: Letters) -> tuple[int, str]:
        return 0, "KafkaTimeoutError: Failed to update metadata after 60.0 secs."

    assert sink.flush_at_stop(kafka_away) == (2, 3)
    lines = _warnings(caplog)
    assert len(lines) == 1 and "dead_letters=0/2 dead_letter_error='KafkaTimeoutError" in lines[0], lines
    assert "LOST" in lines[0] and all(b.alert_id in lines[0] for b in first)
    caplog.clear()
    sink, _, _ = _stopped_during_outage(caplog)
    assert sink.flush_at_stop() == (2, 3)  # no dead-letter output at all: lost, and said so
    lines = _warnings(caplog)
    assert len(lines) == 1 and "dead_letter_error='no dead-letter output'" in lines[0] and "LOST" in lines[0]


def test_growth_elasticsearch_takes_at_the_stop_is_written_not_dead_lettered(caplog: Any) -> None:
    sink, episodes, _ = _stopped_during_outage(caplog)
    episodes.down = False
    sent: Letters = []

    def dead_letters(letters: Letters) -> tuple[int, str]:
        sent.extend(letters)
        return len(letters), ""

    assert sink.flush_at_stop(dead_letters) == (0, 0)
    assert episodes.calls[-3:] == [("find", 2), ("merge", 1), ("merge", 1)] and not caplog.records and not sent


def test_a_large_growth_is_split_into_letters_under_the_size_bound() -> None:
    many = [o for b in batches(40) for o in b.offers]
    given = GivenUp("k", ("idx", "a1"), many)
    letters = [json.loads(p) for p in given.letters(max_bytes=4000)]
    assert len(letters) > 1 and all(len(p) <= 4000 + 500 for p in given.letters(max_bytes=4000))
    assert [(x["part"], x["parts"]) for x in letters] == [(i, len(letters)) for i in range(1, len(letters) + 1)]
    got = [d["detection"]["detection_id"] for x in letters for d in x["detections"]]
    assert got == [o.item.to_dict()["detection_id"] for o in many]  # every detection once, in order
    assert all(x["alert"] == {"index": "idx", "id": "a1"} and x["dedup_key"] == "k" for x in letters)
