"""The worker's stage processors and alert sink in memory: no Kafka, no Elasticsearch.

Signed raw records (as the agent ships them) go into Stage1; its forwards go into Stage2 as the
correlation topic would deliver them; plans go to an AlertSink over a fake indexer. Each test asserts
what the real worker would write: alerts, count updates, correlation inputs, quarantined records and
dead letters.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from collectors.wire import LineBatch, LogLine, batch_headers
from detectors.normalise import Normaliser
from detectors.sigma import Engine, load_rules
from detectors.sigma.detection import Detection
from pipeline.elastic import AlertIndexer, EventIndexer, IndexResult
from pipeline.enrolment.registry import AgentRecord
from pipeline.notify import NotificationQueue, Notifier, NotifyConfig
from pipeline.worker.alerting import Candidate
from pipeline.worker.intake import Intake
from pipeline.worker.models import ModelSet
from pipeline.worker.sink import AlertSink, Stopping
from pipeline.worker.stages import Detected, Stage1, Stage2, new_suppressor
from pipeline.worker_metrics import WorkerMetrics

ROOT = Path(__file__).resolve().parents[2]
RULES = load_rules([str(ROOT / "rules")]).rules
AGENTS = {"agt-a": AgentRecord("agt-a", "xa-a", "srv-a", "secret-a", "1", 0.0, False)}
READ_AT = 1_795_000_000.0  # 2026-11-18T07:46:40Z
ATTACKER = "203.0.113.7"


@dataclass
class Rec:
    """A Kafka record as the stages read it."""

    value: bytes | None
    key: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    topic: str = "socpipe.raw"
    partition: int = 0
    offset: int = 0


def sigma(candidate: Candidate) -> Detection:
    """The Sigma detection behind a planned alert (these stages run no anomaly model)."""
    assert isinstance(candidate.item, Detection), candidate.item
    return candidate.item


def signed(lines: list[str], first_seq: int = 1, counter: int = 1, secret: str = "secret-a") -> Rec:
    b = LineBatch(
        "xa-a",
        "agt-a",
        "srv-a",
        "/var/log/auth.log",
        [LogLine(t, seq=first_seq + i, read_at=READ_AT) for i, t in enumerate(lines)],
        dataset="system.auth",
        timezone="UTC",
    )
    key, value = b.key(), b.to_bytes()
    return Rec(value, key, batch_headers(secret, key, counter, len(lines), "system.auth", value), offset=counter)


def failures(n: int, start_s: int = 0) -> list[str]:
    return [
        f"Nov 18 07:{40 + (start_s + i) // 60:02d}:{(start_s + i) % 60:02d} srv-a sshd[9{i}]: "
        f"Failed password for root from {ATTACKER} port {40000 + i} ssh2"
        for i in range(n)
    ]


def stages(suppression_s: float = 3600.0) -> tuple[Stage1, Stage2, WorkerMetrics]:
    metrics = WorkerMetrics()
    detected = Detected(metrics)
    s1 = Stage1(
        Engine(RULES, allowed_lateness=60),
        Normaliser(default_timezone="UTC"),
        Intake(AGENTS.get, 1000),
        ModelSet([]),
        new_suppressor(suppression_s, 1000),
        metrics,
        detected,
    )
    s2 = Stage2(lambda: Engine(RULES, allowed_lateness=60), lambda: new_suppressor(suppression_s, 1000), detected)
    return s1, s2, metrics


def forwarded(out: Any, partitions: int = 4) -> dict[int, list[Rec]]:
    """Forwards as the correlation topic delivers them: by partition of their key (one partition here)."""
    recs: dict[int, list[Rec]] = {}
    for i, f in enumerate(out.forwards):
        recs.setdefault(0, []).append(Rec(f.value, f.key, topic="socpipe.correlation-inputs", offset=i))
    return recs


def test_stage1_verifies_dedups_matches_and_forwards_correlation_inputs() -> None:
    s1, _, metrics = stages()
    out = s1.process([signed(failures(6)), signed(failures(2), first_seq=1, counter=2)])  # 2nd: re-sent lines
    assert (out.records, out.lines) == (2, 8)
    assert out.by_partition == {0: [2, 8]}  # lines as they came, re-sent ones included (they cost too)
    assert metrics.duplicate_lines._value.get() == 2
    assert len(out.forwards) == 6 and not out.quarantined  # one input per failed login, for the correlation
    assert all(f.key == f'["{ATTACKER}"]'.encode() or ATTACKER.encode() in f.key for f in out.forwards)
    names = {sigma(n.candidate).rule_title for n in out.plan.new}
    assert "SSH Failed Authentication" in names or out.plan.new == []  # a low-level building block at most


def test_stage1_quarantines_forged_records_and_keeps_the_rest() -> None:
    s1, _, _ = stages()
    good = signed(failures(1))
    forged = signed(failures(3), first_seq=10, counter=2, secret="guess")
    out = s1.process([forged, good])
    assert [r.reason for r in out.quarantined] == ["bad_mac"] and out.quarantined[0].record is forged
    assert out.quarantined[0].where == "socpipe.raw/0@2"
    assert out.lines == 1 and len(out.forwards) == 1
    # what the load assignor weighs the partition by: both records, only the verified one's lines
    assert out.by_partition == {0: [2, 1]}


def test_stage2_turns_forwarded_failures_into_one_brute_force_alert() -> None:
    s1, s2, _ = stages()
    out1 = s1.process([signed(failures(6))])
    assert s2.assign(0) is None
    out2 = s2.process(forwarded(out1))
    out2.plan.extend(s2.process({}).plan)  # a later poll: watermarks advance
    titles = [sigma(n.candidate).rule_title for n in out2.plan.new]
    assert titles.count("SSH Brute Force From One Source") == 1, titles
    [alert] = [n for n in out2.plan.new if sigma(n.candidate).rule_title == "SSH Brute Force From One Source"]
    assert sigma(alert.candidate).group == {"source.ip": ATTACKER}
    assert alert.candidate.start_ts < alert.candidate.end_ts  # epoch floats, not text


def test_stage2_state_survives_a_snapshot_and_restore() -> None:
    s1, s2, _ = stages()
    out1 = s1.process([signed(failures(3))])
    s2.assign(0)
    assert not s2.process(forwarded(out1)).plan  # 3 of 5: nothing yet
    snap = s2.snapshot(0, offset=3)
    assert snap is not None
    _, s2b, _ = stages()
    import json

    assert s2b.assign(0, json.loads(snap)) == 3
    out1b = s1.process([signed(failures(3, start_s=3), first_seq=4, counter=2)])
    plan = s2b.process(forwarded(out1b)).plan
    assert [sigma(n.candidate).rule_title for n in plan.new].count("SSH Brute Force From One Source") == 1


def test_stage2_dead_letters_an_undecodable_input() -> None:
    _, s2, _ = stages()
    s2.assign(0)
    out = s2.process({0: [Rec(b"not json", b"k", topic="socpipe.correlation-inputs", offset=7)]})
    assert len(out.dead_letters) == 1 and "undecodable correlation input at 0@7" in out.dead_letters[0].reason


def test_repeats_in_a_later_batch_become_a_count_update() -> None:
    s1, s2, _ = stages()
    s2.assign(0)
    first = s2.process(forwarded(s1.process([signed(failures(6))])))
    first.plan.extend(s2.process({}).plan)
    assert any(sigma(n.candidate).rule_title == "SSH Brute Force From One Source" for n in first.plan.new)
    later = s2.process(forwarded(s1.process([signed(failures(6, start_s=120), first_seq=7, counter=2)])))
    later.plan.extend(s2.process({}).plan)
    assert [sigma(u.candidate).rule_title for u in later.plan.updates] == ["SSH Brute Force From One Source"]
    assert not any(sigma(n.candidate).rule_title == "SSH Brute Force From One Source" for n in later.plan.new)


class FakeIndexer(AlertIndexer):
    """Refuses the first `down` bulk calls (everything to retry), rejects documents named in `bad` (no
    Elasticsearch: the bulk call and the suppression update are replaced)."""

    def __init__(self, down: int = 0, bad: tuple[str, ...] = ()):
        self.down, self.bad = down, bad
        self.docs: dict[str, dict[str, Any]] = {}
        self.calls = 0

    def index(self, docs: Iterable[dict[str, Any]]) -> IndexResult:
        self.calls += 1
        if self.calls <= self.down:
            return IndexResult(retry=list(docs))
        out = IndexResult()
        for d in docs:
            if d["rule"]["name"] in self.bad:
                out.rejected.append((d, "mapper_parsing_exception"))
            elif d["_id"] in self.docs:
                out.duplicates.append(d["_id"])
            else:
                self.docs[d["_id"]] = d
                out.created.append(d["_id"])
        return out

    def update_suppressed(
        self, dedup_key: str, count: int = 1, last_seen: Any = None, since: Any = None, attempts: int = 8
    ) -> str | None:
        for d in self.docs.values():
            if d["socpipe"]["detection"]["dedup_key"] == dedup_key:
                d["socpipe"]["suppression"]["count"] += count
                return str(d["_id"])
        return None


class Hold:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause(self) -> None:
        self.calls.append("pause")

    def keep_alive(self) -> None:
        self.calls.append("poll")

    def resume(self) -> None:
        self.calls.append("resume")


def _brute_force_plans() -> tuple[Any, Any]:
    s1, s2, _ = stages()
    s2.assign(0)
    first = s2.process(forwarded(s1.process([signed(failures(6))])))
    first.plan.extend(s2.process({}).plan)
    later = s2.process(forwarded(s1.process([signed(failures(6, start_s=120), first_seq=7, counter=2)])))
    later.plan.extend(s2.process({}).plan)
    return first.plan, later.plan


def test_sink_writes_alerts_then_counts_repeats_and_is_idempotent() -> None:
    first, later = _brute_force_plans()
    indexer, dead = FakeIndexer(), []
    sink = AlertSink(indexer, WorkerMetrics(), lambda p, r: dead.append(r), sleep=lambda s: None)
    sink.deliver(first)
    [doc] = [d for d in indexer.docs.values() if d["rule"]["name"] == "SSH Brute Force From One Source"]
    before = doc["socpipe"]["suppression"]["count"]  # repeats in the same batch are folded in already
    assert doc["source"]["ip"] == ATTACKER and before == sum(
        n.repeats for n in first.new if n.candidate.detection_id == doc["_id"]
    )
    sink.deliver(later)
    assert doc["socpipe"]["suppression"]["count"] == before + sum(u.repeats for u in later.updates)
    n = len(indexer.docs)
    sink.deliver(first)  # a replayed batch: create-only, nothing new
    assert len(indexer.docs) == n and not dead


def test_sink_pauses_while_elasticsearch_refuses_and_dead_letters_rejects() -> None:
    first, _ = _brute_force_plans()
    indexer, dead, slept = FakeIndexer(down=3, bad=("SSH Brute Force From One Source",)), list[str](), list[float]()
    sink = AlertSink(indexer, WorkerMetrics(), lambda p, r: dead.append(r), sleep=slept.append)
    hold = Hold()
    sink.deliver(first, hold)
    assert hold.calls == ["pause", "poll", "poll", "poll", "resume"] and slept == [0.5, 1.0, 2.0]
    assert dead == ["elasticsearch rejected alert: mapper_parsing_exception"]


def test_a_stop_while_elasticsearch_refuses_gives_the_batch_up_at_once() -> None:
    """SIGTERM during an outage: the backoff ends, no keep-alive poll or new attempt follows, and the
    batch is given up (uncommitted) so the worker can leave its groups; it used to retry until
    Elasticsearch came back, and was killed by its service manager meanwhile."""
    first, _ = _brute_force_plans()
    indexer, stop, hold = FakeIndexer(down=1000), threading.Event(), Hold()
    sink = AlertSink(
        indexer, WorkerMetrics(), lambda p, r: None, sleep=lambda s: stop.set(), stopping=stop.is_set
    )  # the stop comes during the first backoff
    with pytest.raises(Stopping, match="pending_alerts="):
        sink.deliver(first, hold)
    assert hold.calls == ["pause"] and indexer.calls == 1
    with pytest.raises(Stopping):  # and a batch after it does not wait at all
        sink.deliver(first, Hold())
    assert indexer.calls == 2


def test_event_indexing_pauses_and_backs_off_like_alerts() -> None:
    """deliver_events shares deliver's wait: pause once, back off doubling to the max, keep polling,
    resume, report the seconds blocked; a rejected event goes to the dead letters, the rest are kept."""

    class Events(EventIndexer):
        def __init__(self) -> None:
            self.calls = 0
            self.kept: list[dict[str, Any]] = []

        def index(self, batch: Iterable[dict[str, Any]]) -> IndexResult:
            events = list(batch)
            self.calls += 1
            if self.calls <= 4:
                return IndexResult(retry=list(events))
            self.kept += [e for e in events if e["message"] != "bad"]
            return IndexResult(
                created=[e["message"] for e in events if e["message"] != "bad"],
                rejected=[(e, "mapper_parsing_exception") for e in events if e["message"] == "bad"],
            )

    clock, dead, slept = [0.0], list[str](), list[float]()

    def sleep(s: float) -> None:
        slept.append(s)
        clock[0] += s

    metrics = WorkerMetrics()
    sink = AlertSink(
        FakeIndexer(),
        metrics,
        lambda p, r: dead.append(r),
        sleep=sleep,
        monotonic=lambda: clock[0],
        retry_backoff_max_s=1.5,
    )
    hold, indexer = Hold(), Events()
    blocked = sink.deliver_events(indexer, [{"message": "a"}, {"message": "bad"}], hold)
    assert hold.calls == ["pause", "poll", "poll", "poll", "poll", "resume"] and slept == [0.5, 1.0, 1.5, 1.5]
    assert blocked == 4.5 and indexer.kept == [{"message": "a"}]
    assert dead == ["elasticsearch rejected event: mapper_parsing_exception"]
    assert sink.deliver_events(indexer, [{"message": "b"}], Hold()) == 0.0


def test_notifications_run_off_the_write_path_and_drop_when_full() -> None:
    release = threading.Event()
    sent: list[str] = []

    def slow_send(url: str, payload: dict[str, Any], timeout_s: float) -> None:
        release.wait(5)
        sent.append(payload["text"])

    cfg = NotifyConfig(enabled=True, min_level="low", webhook_url="http://hook", max_per_minute=100)
    q = NotificationQueue(Notifier(cfg, send=slow_send), max_pending=1)
    first, _ = _brute_force_plans()
    indexer = FakeIndexer()
    sink = AlertSink(indexer, WorkerMetrics(), lambda p, r: None, notify=q.offer)
    for _ in range(3):  # the sender is stuck: the sink still returns at once, extra batches are dropped
        indexer.docs.clear()
        sink.deliver(first)
    assert q.dropped >= len(indexer.docs)
    release.set()
    q.join()
    assert sent and all("SSH" in s or "Sudo" in s or "[" in s for s in sent)
    q.close()


@pytest.mark.parametrize("bad", ["timestamp"])
def test_a_finding_that_cannot_become_a_document_is_dead_lettered(bad: str) -> None:
    first, _ = _brute_force_plans()
    item = first.new[0].candidate.item
    item.end_ts = float("inf")  # no date renders it
    dead: list[str] = []
    sink = AlertSink(FakeIndexer(), WorkerMetrics(), lambda p, r: dead.append(r))
    assert len(sink.documents(first.new)) == len(first.new) - 1
    assert dead and dead[0].startswith("cannot build alert:")


def test_time_blocked_on_elasticsearch_is_not_idleness() -> None:
    clock = [1000.0]
    s1, _, _ = stages()
    s2 = Stage2(
        lambda: Engine(RULES, allowed_lateness=60),
        lambda: new_suppressor(3600, 1000),
        Detected(WorkerMetrics()),
        monotonic=lambda: clock[0],
    )
    s2.assign(0)
    s2.process(forwarded(s1.process([signed(failures(3))])))
    assert s2.partitions[0].last_event_wall == 1000.0
    first, _ = _brute_force_plans()

    def sleep(s: float) -> None:
        clock[0] += s

    sink = AlertSink(FakeIndexer(down=2), WorkerMetrics(), lambda p, r: None, sleep=sleep, monotonic=lambda: clock[0])
    blocked = sink.deliver(first, Hold())
    assert blocked == 1.5  # backoffs 0.5 + 1.0 while Elasticsearch refused
    s2.shift_idle(blocked)
    assert s2.partitions[0].last_event_wall == 1001.5  # so the partition does not look idle for the outage
    # without an outage: just the time the writes took (not polling is not idleness either)
    assert 0.0 <= AlertSink(FakeIndexer(), WorkerMetrics(), lambda p, r: None).deliver(first) < 0.5


def test_stage1_fills_windows_process_context_per_verified_agent_and_counts_it() -> None:
    from tests.unit.test_normalise_windows import SHAPES, SYSMON_1

    sysmon = ("Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-Sysmon")
    connection = {"ProcessGuid": SYSMON_1["ProcessGuid"], "ProcessId": "2952", "Image": SYSMON_1["Image"]}
    connection |= {"DestinationIp": "198.51.100.7", "DestinationPort": "443", "Initiated": "true"}
    lines = [SHAPES["nxlog"](*sysmon, 1, SYSMON_1), SHAPES["nxlog"](*sysmon, 3, connection)]

    def windows(texts: list[str], counter: int) -> Rec:
        logs = [LogLine(t, seq=counter * 10 + i, read_at=READ_AT) for i, t in enumerate(texts)]
        b = LineBatch("xa-a", "agt-a", "srv-a", "winlog-tcp:6514/FS01", logs, dataset="windows", timezone="UTC")
        key, value = b.key(), b.to_bytes()
        return Rec(value, key, batch_headers("secret-a", key, counter, len(texts), "windows", value), offset=counter)

    s1, _, metrics = stages()
    s1.keep_events = True
    out = s1.process([windows(lines[:1], 1), windows(lines[1:], 2)])  # creation and connection in two records
    created, connected = out.events
    assert "socpipe.enriched" not in created
    assert connected["process.command_line"] == SYSMON_1["CommandLine"]
    assert connected["process.parent.executable"] == SYSMON_1["ParentImage"]
    assert metrics.events_enriched._value.get() == 1
    assert metrics.windows_processes._value.get() == 1
