"""A worker stopped (SIGTERM, as on a rolling restart) while Elasticsearch refuses its writes exits by
itself at once and leaves both consumer groups: the group coordinator has no member left the moment it
is gone, instead of keeping it a session timeout longer (the worker used to retry its batch until
Elasticsearch came back, ignoring the stop, and was killed by its service manager meanwhile). Its batch
is not committed: whoever gets the partitions next reads it again. Real worker process, Kafka, and
Elasticsearch behind the outage proxy of test_detector_es_outage."""

from __future__ import annotations

import time

from kafka import KafkaAdminClient

from tests.integration.conftest import wait_for
from tests.integration.test_detector_e2e import brute_force_batches, detector_env, produce
from tests.integration.test_detector_es_outage import FlakyProxy

STOP_S = 20  # how long the test lets the stopped worker take before it is killed


def test_a_worker_stopped_during_an_es_outage_leaves_its_groups_at_once(kafka_bootstrap, es_url, unique, procs):
    proxy = FlakyProxy(es_url)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap.split(","), request_timeout_ms=5000)
    try:
        env = detector_env(kafka_bootstrap, es_url, unique) | {"SOCPIPE_ES_URL": proxy.url}
        groups = [env["SOCPIPE_GROUP_ID"], env["SOCPIPE_GROUP_ID"] + ".correlation"]

        def members() -> list[int]:
            described = admin.describe_groups(groups)
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
