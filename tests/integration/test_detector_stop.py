"""A worker stopped (SIGTERM, as on a rolling restart) while Elasticsearch refuses its writes exits by
itself at once and leaves both consumer groups: the group coordinator has no member left the moment it
is gone, instead of keeping it a session timeout longer (the worker used to retry its batch until
Elasticsearch came back, ignoring the stop, and was killed by its service manager meanwhile). Its batch
is not committed: whoever gets the partitions next reads it again. Real worker process, Kafka, and
Elasticsearch behind the outage proxy of test_detector_es_outage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from collectors.wire import LineBatch, LogLine
from tests.integration.conftest import alert_hits, describe_groups, es_client, wait_for
from tests.integration.test_detector_e2e import BRUTE_FORCE_RULE, brute_force_batches, detector_env, produce
from tests.integration.test_detector_es_outage import FlakyProxy

STOP_S = 20  # how long the test lets the stopped worker take before it is killed


def test_a_worker_stopped_during_an_es_outage_leaves_its_groups_at_once(kafka_bootstrap, es_url, unique, procs):
    proxy = FlakyProxy(es_url)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap.split(","), request_timeout_ms=5000)
    try:
        env = detector_env(kafka_bootstrap, es_url, unique) | {"SOCPIPE_ES_URL": proxy.url}
        groups = [env["SOCPIPE_GROUP_ID"], env["SOCPIPE_GROUP_ID"] + ".correlation"]

        def members() -> list[int] | None:
            """Members of each group; None while the cluster has no group coordinator yet (fresh stack)."""
            described = describe_groups(admin, groups)
            if described is None:
                return None
            return [len((described.get(g) or {}).get("members") or []) for g in groups]

        det = procs.start("detector", ["detect", "run", "--config", "config/detector.yaml"], env)
        wait_for(lambda: det.check_alive() and members() == [1, 1], 90, what="the worker in both groups")
        proxy.set_down()
        produce(kafka_bootstrap, env["SOCPIPE_RAW_TOPIC"], brute_force_batches("ward-phu-my", attackers=1, tries=6))
        wait_for(
            lambda: det.check_alive() and "detector.es_unavailable" in det.log_tail(500_000),
            60,
            what="the worker holding its batch while Elasticsearch refuses it",
        )
        started = time.monotonic()
        det.stop(timeout=STOP_S)  # SIGTERM; SIGKILL after STOP_S
        took = time.monotonic() - started
        left = members()  # right away: a member that did not leave stays until its session times out
        log = det.log_tail(500_000)
        assert det.popen.returncode == 0, f"killed after {took:.0f} s, still waiting for Elasticsearch:\n{log[-3000:]}"
        assert left == [0, 0], f"members left in {groups} after the worker exited ({took:.1f} s): {left}"
        assert "detector.stopped_during_es_outage" in log
    finally:
        admin.close()
        proxy.close()


def _failures(first_seq: int, count: int, start_s: int) -> list[LineBatch]:
    """`count` failed passwords from 198.51.0.1, 2 s apart from `start_s`, numbered from `first_seq`."""
    lines = []
    for i in range(count):
        sec, seq = start_s + i * 2, first_seq + i
        text = f"Nov 28 08:{sec // 60:02d}:{sec % 60:02d} web01 sshd[1000]: Failed password for root from 198.51.0.1 port {40000 + i} ssh2"
        lines.append(LogLine(text, offset=seq * 100, line_no=seq, seq=seq, read_at=time.time()))
    return [LineBatch("ward-phu-my", "agent-1", "web01", "/var/log/auth.log", lines, dataset="system.auth")]


def test_episode_growth_a_stopped_worker_cannot_write_goes_to_the_dead_letter_topic(
    kafka_bootstrap, es_url, unique, procs
):
    """The last flush at a stop during an outage: the alert's growth deferred by episode_update_s (its
    records committed already) is tried once, given up, and sent to the dead-letter topic with the
    alert's id and its detections (what an operator needs to merge it), reported in one structured line
    with its counts; no stack trace, no 'retry=yes' for a worker that is exiting; it still leaves at once."""
    proxy = FlakyProxy(es_url)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap.split(","), request_timeout_ms=5000)
    reader = KafkaConsumer(bootstrap_servers=kafka_bootstrap.split(","))
    try:
        env = detector_env(kafka_bootstrap, es_url, unique) | {
            "SOCPIPE_ES_URL": proxy.url,
            "SOCPIPE_EPISODE_UPDATE_S": "300",  # growth of the alert waits in memory the whole test
        }
        es, prefix = es_client(es_url), env["SOCPIPE_ES_INDEX_PREFIX"]
        group, corr_group = env["SOCPIPE_GROUP_ID"], env["SOCPIPE_GROUP_ID"] + ".correlation"

        def committed_to_end() -> bool:
            for g, topic in ((group, env["SOCPIPE_RAW_TOPIC"]), (corr_group, env["SOCPIPE_CORRELATION_TOPIC"])):
                tps = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or ()]
                ends = reader.end_offsets(tps)
                offsets = KafkaConsumer(bootstrap_servers=kafka_bootstrap.split(","), group_id=g)
                try:
                    if not tps or any((offsets.committed(tp) or 0) < ends[tp] for tp in tps):
                        return False
                finally:
                    offsets.close(autocommit=False)
            return True

        det = procs.start("detector", ["detect", "run", "--config", "config/detector.yaml"], env)
        produce(kafka_bootstrap, env["SOCPIPE_RAW_TOPIC"], _failures(1, 6, 0))
        hits = wait_for(lambda: det.check_alive() and alert_hits(es, prefix), 60, what="the brute-force alert")
        assert len(hits) == 1, hits
        produce(kafka_bootstrap, env["SOCPIPE_RAW_TOPIC"], _failures(7, 6, 12))  # the episode grows
        wait_for(lambda: det.check_alive() and committed_to_end(), 60, what="the growth processed and committed")
        proxy.set_down()
        stopping_at = len(det.log_path.read_text(errors="replace"))
        det.stop(timeout=STOP_S)
        log = det.log_path.read_text(errors="replace")[stopping_at:]
        assert det.popen.returncode == 0, log[-3000:]
        given_up = [ln for ln in log.splitlines() if "detector.stop_episode_growth_given_up" in ln]
        assert len(given_up) == 1 and "alerts=1 detections=" in given_up[0], log[-3000:]
        assert "dead_letters=1/1 " in given_up[0] and "LOST" not in given_up[0], given_up[0]
        assert "Traceback" not in log and "retry=yes" not in log, log[-3000:]
        detections = int(given_up[0].split("detections=")[1].split()[0])
        dlq = TopicPartition(env["SOCPIPE_DEAD_LETTER_TOPIC"], 0)
        reader.assign([dlq])
        reader.seek_to_beginning(dlq)
        records = [r for batch in reader.poll(timeout_ms=5000).values() for r in batch]
        assert len(records) == 1, records
        headers = dict(records[0].headers)
        letter = json.loads(records[0].value)
        assert headers["reason"] == b"episode growth given up at stop"
        assert headers["alert_id"].decode() == hits[0]["_id"] == letter["alert"]["id"]
        assert letter["alert"]["index"] == hits[0]["_index"] and letter["kind"] == "episode_growth"
        assert len(letter["detections"]) == detections > 0
        assert all(d["detection"]["rule_id"] == BRUTE_FORCE_RULE for d in letter["detections"])
        inputs = f"{env['SOCPIPE_CORRELATION_TOPIC']}/"  # a correlation fires on its input record
        assert all(
            d["record"]["source"].startswith(inputs) and d["record"]["offset"] >= 0 for d in letter["detections"]
        )
        # Elasticsearch back: the operator's replay merges that growth into the alert, once
        before = hits[0]["_source"]["socpipe"]["episode"]["detections"]
        replay = [sys.executable, "-m", "pipeline.cli", "detect", "dead-letters", "replay", "--apply", "--json"]
        for outcome, added in (("merged", detections), ("nothing-to-add", 0)):
            done = subprocess.run(
                [*replay, "--config", "config/detector.yaml"],
                env=os.environ | env | {"SOCPIPE_ES_URL": es_url},
                capture_output=True,
                text=True,
                timeout=120,
            )
            rows = [json.loads(line) for line in done.stdout.splitlines()]
            assert done.returncode == 0 and [r["outcome"] for r in rows] == [outcome], done.stdout + done.stderr
            assert rows[0]["alert"] == hits[0]["_id"] and rows[0]["added"] == added, rows
            now = alert_hits(es, prefix, {"ids": {"values": [hits[0]["_id"]]}})  # (another rule's alert too)
            assert now[0]["_source"]["socpipe"]["episode"]["detections"] == before + detections, (rows, now)
    finally:
        reader.close()
        admin.close()
        proxy.close()
