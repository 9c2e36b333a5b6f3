"""`socpipe detect dead-letters list|replay` on the real Kafka and Elasticsearch: an alert's growth given
up at a stop during an Elasticsearch outage (the worker's own sink: deferred by episode_update_s, its last
flush behind the outage proxy, the letter sent by KafkaOutputs.dead_letters_confirmed) is listed, a dry
run writes nothing, the replay leaves the alert as the worker would have (the same alert grown without
an outage, in another index prefix), and a second replay changes nothing. A garbled growth letter is its
own row's error; a letter of another kind is skipped. Read with the SOC's Kafka identity: the loopback
listener, and SASL_SSL + SCRAM under the ACL authorizer when the stack runs --secure."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from collectors import wire
from detectors.alerts.plan import Offer, plan_batch
from detectors.sigma.detection import make_detection
from detectors.sigma.model import RuleMeta
from pipeline import kafka_io
from pipeline.cli import main as cli
from pipeline.config import KafkaConfig
from pipeline.elastic import AlertIndexer, connect
from pipeline.elastic.episodes import EpisodeWriter
from pipeline.elastic.setup import setup
from pipeline.worker.alerting import AlertPlan
from pipeline.worker.dead_letters import DeadLetter
from pipeline.worker.episode_sink import GIVEN_UP_REASON, GivenUp
from pipeline.worker.outputs import KafkaOutputs
from pipeline.worker.replay import GrowthReplay
from pipeline.worker.sink import AlertSink
from pipeline.worker_metrics import WorkerMetrics
from tests.integration.alerts_support import cleanup, es_env  # noqa: F401  (fixture)
from tests.integration.conftest import es_config
from tests.integration.secure import secure_kafka  # noqa: F401  (fixture)
from tests.integration.test_detector_es_outage import FlakyProxy

pytestmark = pytest.mark.integration
T0 = 1_795_000_000.0
META = RuleMeta(id="00000000-0000-4000-8000-00000000dead", title="Failed SSH login", level="low", tags=[])


def offers(first: int, count: int, ip: str = "198.51.100.9", source: str = "corr/0") -> list[Offer]:
    """Detections of one key, one per correlation-input record from offset `first`, 2 s apart."""
    out = []
    for i in range(first, first + count):
        ev = {
            "@timestamp": "2026-11-19T08:00:00.000Z",
            "source.ip": ip,
            "user.name": f"user{i}",
            "organization.id": "so-tc",
        }
        det = make_detection(META, "single", {"source.ip": ip}, [T0 + 2 * i] * 2, [ev], 1, T0, identity=i)
        out.append(Offer.of(det, source, i))
    return out


def deliver(sink: AlertSink, batch: list[Offer]) -> None:
    sink.deliver(AlertPlan(episodes=plan_batch(batch, 900.0, 86400.0)))


def alert(es: Any, prefix: str) -> dict[str, Any]:
    es.indices.refresh(index=f"{prefix}-alerts-*")
    hits = es.search(index=f"{prefix}-alerts-*", size=10, seq_no_primary_term=True)["hits"]["hits"]
    assert len(hits) == 1, [h["_id"] for h in hits]
    return dict(hits[0])


def grown(hit: dict[str, Any]) -> dict[str, Any]:
    """What growth changes in an alert: the episode, its evidence and counts, event times (not when the
    alert was written: event.created/ingested)."""
    s = hit["_source"]
    event = {k: v for k, v in s["event"].items() if k not in ("created", "ingested")}
    return {"event": event, **{k: s["socpipe"][k] for k in ("episode", "evidence", "evidence_count", "suppression")}}


@pytest.mark.parametrize("listener", ["plain", "secure"])
def test_given_up_growth_is_listed_replayed_like_the_worker_and_only_once(
    listener: str,
    es_env: Any,
    kafka_bootstrap: str,
    es_url: str,
    unique: str,
    request: Any,  # noqa: F811
) -> None:
    cfg, es = es_env
    if listener == "secure":
        secure = request.getfixturevalue("secure_kafka")
        kcfg, kenv = secure.soc_config(), secure.soc_env()
    else:
        kcfg, kenv = KafkaConfig(bootstrap=kafka_bootstrap), {"SOCPIPE_KAFKA_BOOTSTRAP": kafka_bootstrap}
    topic = f"t{unique}.deadletter"
    control = f"{cfg.index_prefix}c"
    ccfg = es_config(es_url, index_prefix=control)
    setup(es, ccfg)
    proxy = FlakyProxy(es_url)
    producer = kafka_io.producer(kcfg)
    try:
        # the records the detections came from: the replay checks Kafka has each one a letter names
        corr = f"t{unique}.corr"
        for _ in range(12):
            producer.send(corr, value=b"{}", partition=0)
        producer.flush(10)
        first, growth = offers(0, 6, source=f"{corr}/0"), offers(6, 6, source=f"{corr}/0")
        # the alert as the worker leaves it with Elasticsearch up: created, then grown
        csink = AlertSink(
            AlertIndexer(es, prefix=control),
            WorkerMetrics(),
            lambda p, r: None,
            episodes=EpisodeWriter(es, AlertIndexer(es, prefix=control), 900.0, 86400.0, refresh=True),
        )
        deliver(csink, first)
        deliver(csink, growth)
        expected = alert(es, control)
        assert expected["_source"]["socpipe"]["episode"]["detections"] == 12

        # the worker's sink behind the outage proxy: growth deferred, given up at the stop, dead-lettered
        pes = connect(es_config(proxy.url))
        indexer = AlertIndexer(pes, prefix=cfg.index_prefix)
        sink = AlertSink(
            indexer,
            WorkerMetrics(),
            lambda p, r: None,
            episodes=EpisodeWriter(pes, indexer, 900.0, 86400.0, refresh=True),
            episode_update_s=300.0,
        )
        deliver(sink, first)
        deliver(sink, growth)  # its alert was just written: the growth waits in memory
        proxy.set_down()
        outputs = KafkaOutputs(
            producer,
            WorkerMetrics(),
            correlation_topic="unused",
            quarantine_topic="unused",
            dead_letter_topic=topic,
            state_topic="unused",
        )
        assert sink.flush_at_stop(outputs.dead_letters_confirmed) == (1, 6)
        # a garbled growth letter and a finding whose alert could not be built, between/after it
        garbled = b'{"kind":"episode_growth","dedup_key":"k","detections":[{"detection":7}]}'
        producer.send(topic, value=garbled, headers=[("reason", b"episode growth given up at stop\x1b]0;x\x07")])
        outputs.dead_letter(wire.encode(first[0].item.to_dict()), "cannot build alert: test")
        producer.flush(10)
        before = alert(es, cfg.index_prefix)
        assert before["_source"]["socpipe"]["episode"]["detections"] == 6

        env = {**kenv, "SOCPIPE_DEAD_LETTER_TOPIC": topic, "SOCPIPE_ES_INDEX_PREFIX": cfg.index_prefix}
        env["SOCPIPE_ES_URL"] = es_url
        runner = CliRunner()

        def run(*args: str) -> Any:
            return runner.invoke(cli, ["detect", "dead-letters", *args], env=env, catch_exceptions=False)

        listed = run("list", "--json")
        assert listed.exit_code == 0, listed.output
        rows = [json.loads(line) for line in listed.output.splitlines()]
        assert sorted(r["kind"] for r in rows) == ["episode_growth", "episode_growth", "finding"], rows
        letter = next(r for r in rows if r["alert_id"] == before["_id"])
        assert letter["reason"] == "episode growth given up at stop" and letter["kind"] == "episode_growth"
        assert "6 detection(s) of Failed SSH login for alert " + before["_id"] in letter["summary"]
        # the garbled one's reason as written (JSON escapes it)
        assert "episode growth given up at stop\x1b]0;x\x07" in [r["reason"] for r in rows]
        table = run("list")
        assert table.exit_code == 0 and "cannot build alert: test" in table.output, table.output
        assert "\x1b" not in table.output, table.output  # the hostile reason shown escaped, never run

        dry = run("replay")  # a dry run: says what it would do, writes nothing
        assert dry.exit_code == 1, dry.output  # the garbled letter failed
        assert f"would add 6 of 6 detection(s) to alert {before['_id']} (now 6)" in dry.output, dry.output
        assert alert(es, cfg.index_prefix)["_seq_no"] == before["_seq_no"]

        applied = run("replay", "--apply", "--json")
        assert applied.exit_code == 1, applied.output
        out = [json.loads(line) for line in applied.output.splitlines()]
        by = {r["outcome"]: r for r in out}
        assert set(by) == {"merged", "error", "skipped"}, out
        assert by["merged"]["added"] == 6 and (by["merged"]["before"], by["merged"]["after"]) == (6, 12)
        assert by["error"]["message"].startswith("cannot replay: detection 1:"), by["error"]
        assert "not replayed" in by["skipped"]["message"]
        after = alert(es, cfg.index_prefix)
        got, want = grown(after), grown(expected)
        differ: dict[str, Any] = {k: (got[k], want[k]) for k in want if got.get(k) != want[k]}
        if "event" in differ:
            differ["event"] = {
                k: (got["event"].get(k), v) for k, v in want["event"].items() if got["event"].get(k) != v
            }
        assert not differ, differ  # as the worker would have written it

        again = run("replay", "--apply", "--at", by["merged"]["letters"][0])
        assert again.exit_code == 0, again.output
        assert f"already in alert {before['_id']}: nothing added" in again.output, again.output
        assert alert(es, cfg.index_prefix)["_seq_no"] == after["_seq_no"]

        # a forged record offset past the partition's end: merged, the alert would skip every later record
        forged = json.loads(
            GivenUp(growth[0].dedup_key, (after["_index"], after["_id"]), offers(20, 1, source=f"{corr}/0")).letters()[
                0
            ]
        )
        forged["detections"][0]["record"]["offset"] = 10**12
        sent = producer.send(topic, value=json.dumps(forged).encode(), headers=[("reason", GIVEN_UP_REASON.encode())])
        at = sent.get(10)
        refused = run("replay", "--apply", "--at", f"{at.partition}:{at.offset}")
        assert refused.exit_code == 1, refused.output
        assert f"record {corr}/0@{10**12} is not one Kafka has (end offset 12)" in refused.output, refused.output
        assert alert(es, cfg.index_prefix)["_seq_no"] == after["_seq_no"]
    finally:
        producer.close(timeout=5)
        proxy.close()
        cleanup(es, control)


def test_a_letter_is_merged_only_into_an_alert_of_its_key_and_each_detection_once(es_env: Any) -> None:  # noqa: F811
    """Forged or doubled letters on the real Elasticsearch: a letter naming an alert of another dedup key
    (its detections all of the letter's key) leaves that alert alone; the same letter read twice in one
    replay merges its detections once."""
    cfg, es = es_env
    indexer = AlertIndexer(es, prefix=cfg.index_prefix)
    refused: list[str] = []
    sink = AlertSink(
        indexer,
        WorkerMetrics(),
        lambda p, r: refused.append(r),
        episodes=EpisodeWriter(es, indexer, 900.0, 86400.0, refresh=True),
    )
    mine, theirs = offers(0, 6), offers(0, 6, ip="198.51.100.77")
    deliver(sink, mine)
    deliver(sink, theirs)
    es.indices.refresh(index=f"{cfg.index_prefix}-alerts-*")

    def hit(key: str) -> dict[str, Any]:
        q = {"term": {"socpipe.detection.dedup_key": key}}
        hits = es.search(index=f"{cfg.index_prefix}-alerts-*", query=q, seq_no_primary_term=True)["hits"]["hits"]
        assert len(hits) == 1, hits
        return dict(hits[0])

    a, b = hit(mine[0].dedup_key), hit(theirs[0].dedup_key)
    assert a["_id"] != b["_id"]
    forged = GivenUp(theirs[0].dedup_key, (a["_index"], a["_id"]), offers(6, 3, ip="198.51.100.77")).letters()[0]
    doubled = GivenUp(mine[0].dedup_key, (a["_index"], a["_id"]), offers(6, 6)).letters()[0]

    def letter(value: bytes, offset: int) -> DeadLetter:
        return DeadLetter(0, offset, 1_795_000_000_000, [("reason", GIVEN_UP_REASON.encode())], value)

    replay = GrowthReplay(sink.episode_sink, f"{cfg.index_prefix}-alerts-", lambda: [])  # type: ignore[arg-type]
    timeless = json.loads(GivenUp(mine[0].dedup_key, (a["_index"], a["_id"]), offers(20, 2)).letters()[0])
    timeless["detections"][0]["detection"]["end_ts"] = -1e308  # no date can be (a traceback before)
    hostile = letter(json.dumps(timeless).encode(), 4)
    rows = replay.run([letter(forged, 1), letter(doubled, 2), letter(doubled, 3), hostile], apply=True)
    by = {r.outcome: r for r in rows}
    assert set(by) == {"error", "merged"}, [r.as_dict() for r in rows]
    errors = {r.letters[0]: r.message for r in rows if r.outcome == "error"}
    assert "of another dedup key" in errors["0:1"] and "not an epoch time" in errors["0:4"], errors
    assert by["merged"].letters == ["0:2", "0:3"]
    assert (by["merged"].added, by["merged"].before, by["merged"].after) == (6, 6, 12), by["merged"]
    es.indices.refresh(index=f"{cfg.index_prefix}-alerts-*")
    after_a, after_b = hit(mine[0].dedup_key), hit(theirs[0].dedup_key)
    assert after_a["_source"]["socpipe"]["episode"]["detections"] == 12
    assert after_b["_seq_no"] == b["_seq_no"] and after_b["_source"]["socpipe"]["episode"]["detections"] == 6
    assert not refused, refused


def test_an_alert_s_growth_with_a_part_missing_is_not_written_unless_partial(es_env: Any) -> None:  # noqa: F811
    """A part merged without the others makes the alert remember the records of all of them as one offset
    range: the missing part, replayed later, would add nothing. So --apply writes an alert's parts only
    together (or with --partial, the others being lost)."""
    cfg, es = es_env
    indexer = AlertIndexer(es, prefix=cfg.index_prefix)
    sink = AlertSink(
        indexer,
        WorkerMetrics(),
        lambda p, r: None,
        episodes=EpisodeWriter(es, indexer, 900.0, 86400.0, refresh=True),
    )
    deliver(sink, offers(0, 6))
    before = alert(es, cfg.index_prefix)
    parts = GivenUp(offers(0, 1)[0].dedup_key, (before["_index"], before["_id"]), offers(6, 6)).letters(max_bytes=700)
    assert len(parts) == 6
    letters = [
        DeadLetter(0, i, 1_795_000_000_000, [("reason", GIVEN_UP_REASON.encode())], p) for i, p in enumerate(parts)
    ]
    replay = GrowthReplay(sink.episode_sink, f"{cfg.index_prefix}-alerts-", lambda: [])  # type: ignore[arg-type]

    cut = replay.run([x for x in letters if x.offset != 2], apply=True)  # part 3 not read (e.g. --at)
    assert [(r.outcome, r.failed) for r in cut] == [("error", True)], [r.as_dict() for r in cut]
    assert cut[0].message.startswith("not written: parts 3 of 6 are not among the letters read"), cut[0].message
    assert alert(es, cfg.index_prefix)["_seq_no"] == before["_seq_no"]

    whole = replay.run(letters, apply=True)
    assert [(r.outcome, r.before, r.after) for r in whole] == [("merged", 6, 12)], [r.as_dict() for r in whole]

    # what --partial accepts: a part written alone leaves the alert skipping the records of the others
    deliver(sink, offers(20, 1))
    grown_once = alert(es, cfg.index_prefix)
    n = grown_once["_source"]["socpipe"]["episode"]["detections"]
    later = GivenUp(offers(0, 1)[0].dedup_key, (before["_index"], before["_id"]), offers(30, 3)).letters(max_bytes=700)
    partial = GrowthReplay(sink.episode_sink, f"{cfg.index_prefix}-alerts-", lambda: [], partial=True)  # type: ignore[arg-type]
    first_last = [DeadLetter(0, 10 + i, 1, [("reason", GIVEN_UP_REASON.encode())], p) for i, p in enumerate(later)]
    assert [r.outcome for r in partial.run([first_last[0], first_last[2]], apply=True)] == ["merged"]
    assert [r.outcome for r in partial.run([first_last[1]], apply=True)] == ["nothing-to-add"]
    assert alert(es, cfg.index_prefix)["_source"]["socpipe"]["episode"]["detections"] == n + 2
