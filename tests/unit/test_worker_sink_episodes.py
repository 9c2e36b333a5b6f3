"""The sink's episode path writes per call, not per alert: one lookup and one bulk create for all a
batch's new episodes, each item's outcome handled on its own (created, replay -> merge, retry with
back-off, rejected -> dead letter), and one incident pass plus one naming bulk for what was written.
Fakes for Elasticsearch here; tests/integration/test_incidents.py and test_detector_e2e run the real one."""

from __future__ import annotations

from typing import Any

from detectors.alerts.plan import BatchEpisode, Offer, plan_batch
from detectors.sigma.detection import make_detection
from detectors.sigma.model import RuleMeta
from pipeline.elastic.episodes import EpisodeWriter
from pipeline.elastic.incidents import IncidentStore
from pipeline.worker.alerting import AlertPlan
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
