"""The leader's check of claimed generations on the real broker: `StageConsumers` wires each load
assignor to its consumer's generation as the coordinator has it while the leader assigns, which must be
the generation the join is forming (one lower, and every honest claim would be refused: nothing kept
through any rebalance). Two honest members keep their partitions through a rebalance, nothing refused;
a member whose user_data claims every partition with a generation it was never given owns nothing of
them (the unit tests with forged user_data: tests/unit/test_worker_assign.py)."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from collectors.configfile import KafkaConfig
from pipeline import kafka_io
from pipeline.worker.assign import Claim, LoadAssignor, PartitionLoads
from pipeline.worker.consumers import _forming_generation

pytestmark = pytest.mark.integration

PARTITIONS = 4


class Recording(LoadAssignor):
    """The socpipe assignor, noting the generation it read while assigning and the one it was synced to."""

    def __init__(self) -> None:
        super().__init__(PartitionLoads())
        self.formed: list[tuple[int | None, int]] = []
        self._read: int | None = None

    def assign(self, cluster: Any, members: Any) -> dict[str, Any]:
        self._read = self._forming()
        return super().assign(cluster, members)

    def on_assignment(self, assignment: Any, generation: Any) -> None:
        if self._read is not None:
            self.formed.append((self._read, generation))
            self._read = None
        super().on_assignment(assignment, generation)


class Forger(LoadAssignor):
    """A member (with the SOC's credential) claiming every partition in a generation far ahead."""

    def metadata(self, topics: Any) -> Any:
        got = super().metadata(topics)
        forged = Claim(self.generation + 50, {t: tuple(range(PARTITIONS)) for t in topics})
        return type(got)(got.version, got.topics, forged.encode())


@pytest.mark.timeout(120)
def test_the_leader_reads_the_forming_generation_and_refuses_a_forged_one(kafka_bootstrap, unique, caplog):
    caplog.set_level(logging.WARNING, logger="socpipe.detector")
    cfg = KafkaConfig(bootstrap=kafka_bootstrap)
    topic = group = f"claims-{unique}"
    kafka_io.ensure_topics(cfg, {topic: {"partitions": PARTITIONS}})
    consumers: dict[str, Any] = {}

    def join(name: str, assignor: LoadAssignor) -> None:
        c = kafka_io.consumer(cfg, group, partition_assignment_strategy=(assignor,))
        assignor.forming = _forming_generation(c)  # as StageConsumers wires it
        c.subscribe([topic])
        consumers[name] = (c, assignor)

    def settle(names: list[str]) -> dict[str, list[int]]:
        """Poll every member until the group is stable with all of them and every partition assigned."""
        deadline = time.monotonic() + 40
        while True:
            for c, _ in consumers.values():
                kafka_io.poll(c, 100)
            held = {n: sorted(tp.partition for tp in consumers[n][0].assignment()) for n in names}
            gens = {consumers[n][1].generation for n in names}
            if len(gens) == 1 and sorted(p for ps in held.values() for p in ps) == list(range(PARTITIONS)):
                if all(not c._coordinator.need_rejoin() for c, _ in consumers.values()):
                    return held
            assert time.monotonic() < deadline, f"not settled: {held} generations {gens}"

    try:
        a = Recording()
        join("a", a)
        assert settle(["a"]) == {"a": [0, 1, 2, 3]}
        join("b", Recording())
        before = settle(["a", "b"])
        assert sorted(map(len, before.values())) == [2, 2]
        leaders = [r for _, r in consumers.values() if isinstance(r, Recording) and r.formed]
        assert leaders and all(read == synced for r in leaders for read, synced in r.formed), [
            r.formed for r in leaders
        ]
        assert "assignment_claim_refused" not in caplog.text  # honest claims all believed
        join("forger", Forger(PartitionLoads()))
        after = settle(["a", "b", "forger"])
        for name in ("a", "b"):  # each gives up at most what the newcomer's share takes, keeps the rest
            assert set(after[name]) <= set(before[name]) and after[name], (before, after)
        assert "detector.assignment_claim_refused member=" in caplog.text and "(never given)" in caplog.text
        assert all(read == synced for r in leaders for read, synced in r.formed)
    finally:
        for c, _ in consumers.values():
            c.close(autocommit=False)
