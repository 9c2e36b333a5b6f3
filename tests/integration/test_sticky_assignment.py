"""Sticky partition assignment on the real broker: two `socpipe detect run` workers share the raw and
correlation partitions; one restarts (SIGTERM: it leaves the group, then joins again as a new member).
The other keeps exactly the partitions it held, in both groups, as the broker's own description of
the groups says, and keeps their state in memory (its log: kept, not restored).

Under load this failed (1 CI run in 5; 1 run in 8 here with CPU load, 16 leader assignments never taken
in 19) while kafka-python threw away group joins that completed between two polls of the worker's
short correlation poll: the group kept rebalancing and the survivor lost what it held
(pipeline.kafka_io.poll, tests/integration/test_kafka_join.py)."""

from __future__ import annotations

import re
import time

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from collectors.kafka_settings import SOC_CONSUMER
from collectors.wire import LineBatch, LogLine
from tests.integration.conftest import describe_groups, wait_for
from tests.integration.test_detector_e2e import detector_env, produce

PARTITIONS = 4


def cron_batches(agency: str, records: int = 2, lines: int = 5) -> list[LineBatch]:
    """Ordinary cron sessions of one agency's server: dedup state on its raw partition, no alert and no
    correlation input (so the correlation topic stays empty and weighs nothing)."""
    out, seq = [], 0
    for _ in range(records):
        chunk = []
        for _ in range(lines):
            seq += 1
            text = (
                f"Nov 28 08:00:{seq:02d} db01 CRON[{2000 + seq}]: pam_unix(cron:session): session opened for user root"
            )
            chunk.append(LogLine(text, offset=seq * 90, line_no=seq, seq=seq, read_at=time.time()))
        out.append(LineBatch(agency, "agent-1", "db01", "/var/log/auth.log", chunk, dataset="system.auth"))
    return out


# A worker that stops sends LeaveGroup (the others rejoin at their next heartbeat, 3 s); even one that
# did not would be expired after its session timeout: three of those for the rest of the rebalance.
ALONE_S = 3 * SOC_CONSUMER["session_timeout_ms"] / 1000

SEEN: dict[str, str] = {}  # each group as the coordinator last described it, for a failure's message


def view(admin: KafkaAdminClient, group: str, members: int) -> dict[str, tuple[int, ...]] | None:
    """Member id -> partitions, from the group coordinator; None unless Stable with `members` members
    holding every partition."""
    desc = (describe_groups(admin, [group]) or {}).get(group) or {}  # {} while no coordinator (fresh stack)
    out = {}
    for m in desc.get("members") or []:
        tps = (m.get("member_assignment") or {}).get("assigned_partitions") or []
        out[m["member_id"]] = tuple(sorted(p for tp in tps for p in tp["partitions"]))
    SEEN[group] = f"{desc.get('group_state')} {sorted(out.values())}"
    if desc.get("group_state") != "Stable" or len(out) != members or sum(map(len, out.values())) != PARTITIONS:
        return None
    return out


def test_a_restarted_worker_takes_back_only_its_own_partitions(kafka_bootstrap, es_url, unique, procs) -> None:
    env = {**detector_env(kafka_bootstrap, es_url, unique), "SOCPIPE_TOPIC_PARTITIONS": str(PARTITIONS)}
    group = env["SOCPIPE_GROUP_ID"]
    groups = [group, group + ".correlation"]
    detect = ["detect", "run", "--config", "config/detector.yaml"]
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap.split(","), request_timeout_ms=5000)

    def views(members: int) -> list[dict[str, tuple[int, ...]]] | None:
        got = [v for v in (view(admin, g, members) for g in groups) if v]
        return got if len(got) == len(groups) else None

    def settled(members: int, budget_s: float, what: str) -> list[dict[str, tuple[int, ...]]]:
        """Wait for `views(members)` (and both workers alive); a failure says how the groups looked."""
        alive = [stays] if members == 1 else [stays, restarts]
        try:
            return wait_for(lambda: all(p.check_alive() for p in alive) and views(members), budget_s, what=what)
        except pytest.fail.Exception as exc:
            pytest.fail(f"{exc}; the groups as last described (state, partitions per member): {SEEN}")

    try:
        # State worth keeping: dedup sequences of 6 agencies' logs (12 records), spread over the raw
        # partitions by key. Sent before the workers start, and feeding no correlation, so no traffic
        # arrives while they run: the leader sees no load, all partitions weigh the same, and the split
        # is by number (sticky by lines: the unit tests).
        admin.create_topics([NewTopic(env["SOCPIPE_RAW_TOPIC"], PARTITIONS, 1)])
        for agency in ("a1", "a2", "a3", "a4", "a5", "a6"):
            produce(kafka_bootstrap, env["SOCPIPE_RAW_TOPIC"], cron_batches(agency))
        stays = procs.start("worker-stays", detect, env)
        restarts = procs.start("worker-restarts", detect, env)
        before = settled(2, 90, "two workers in both groups")
        wait_for(
            lambda: sum(o.offset for o in admin.list_group_offsets(group).get(group, {}).values()) == 12,
            30,
            what="the records consumed and committed",
        )

        restarts.stop()  # SIGTERM: it leaves the group; the survivor takes every partition
        settled(1, ALONE_S, "the survivor alone holding every partition of both groups")
        restarts = procs.start("worker-restarts-again", detect, env)

        def back() -> list[dict[str, tuple[int, ...]]] | None:
            now = views(2)  # settled with a member id not seen before in each group
            return now if now and all(set(n) - set(b) for n, b in zip(now, before, strict=True)) else None

        after = wait_for(lambda: stays.check_alive() and restarts.check_alive() and back(), 60, what="both back")
        for g, old, new in zip(groups, before, after, strict=True):
            survivors = set(old) & set(new)
            assert len(survivors) == 1, (g, old, new)  # the worker that stayed is the same member ...
            survivor = survivors.pop()
            assert new[survivor] == old[survivor], (g, old, new)  # ... holding exactly what it held
        # and it kept their state through both rebalances: given back to it each time, never restored
        log = stays.log_tail(200_000)
        for stage in "12":
            handed = re.findall(rf"detector\.stage{stage}\.assigned partitions=(\[[^\]]*\]) kept=(\[[^\]]*\])", log)
            # ... when the other left (all four, its own kept) and when it came back (all it got kept)
            assert len(handed) >= 3, handed
            assert handed[-2][1] == handed[-3][0] and handed[-1][0] == handed[-1][1], handed
    finally:
        admin.close()
