"""A stage's per-partition state kept through a rebalance when the partition stays with this worker.

kafka-python rebalances eagerly: before every join each member is told that all its partitions are
revoked, and after it, which ones it has now. The sticky assignor (pipeline.worker.balance) gives most
back to the same worker, so instead of dropping their state at revocation and restoring it from the
state topic after, the runner parks it here, and takes back what it gets again, at the offset saved
with its last snapshot, with no restore and no pause.

Only when the new assignment is of the very next generation and made by the socpipe assignor:
generations are group-wide, so nobody else can have held the partition in between. Anything else (a
generation skipped because this worker was evicted, another assignor chose, membership lost) drops
the parked state and the partition is restored from its snapshot as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from kafka import TopicPartition

__all__ = ["Handover"]


class Handover:
    """Parked state of one stage's partitions. `detach(partition)` takes a partition's state out of the
    stage (None: it has none, e.g. not restored yet); `attach(partition, state)` puts it back."""

    def __init__(
        self,
        detach: Callable[[int], Any | None],
        attach: Callable[[int, Any], None],
        generation: Callable[[], int] | None = None,
    ) -> None:
        """`generation()`: that of the last assignment the socpipe assignor saw for this consumer (None:
        it is not in use, nothing is ever kept)."""
        self._detach, self._attach = detach, attach
        self.generation = generation
        self._parked: dict[TopicPartition, Any] = {}
        self._generation = -1
        # next offset of what each partition's state has taken in: its last snapshot's, or (a batch
        # processed, its writes held up by an Elasticsearch outage) the consumer's position then
        self.offsets: dict[TopicPartition, int] = {}

    def saved(self, tp: TopicPartition, offset: int) -> None:
        """A snapshot of the partition's state was written with the next offset `offset`."""
        self.offsets[tp] = offset

    def processed(self, tp: TopicPartition, offset: int) -> None:
        """The stage's state of the partition took in everything before `offset` (no snapshot yet): if
        the partition comes back through a rebalance now, it resumes there, not at its last snapshot
        (which fed the records in between again into the state that already held them)."""
        self.offsets[tp] = offset

    def park(self, partitions: Iterable[TopicPartition], generation: int) -> None:
        """At revocation: take the partitions' state out of the stage and keep it aside. `generation`:
        that of the assignment being revoked, as the socpipe assignor last saw it (-1: unknown)."""
        for tp in partitions:
            state = self._detach(tp.partition)
            if state is not None:
                self._parked[tp] = state
        self._generation = generation

    def revoked(self, partitions: Iterable[TopicPartition], unrestored: set[TopicPartition], lost: bool) -> None:
        """kafka-python revoked (or, `lost`, took away) these: park the state of those restored (those
        still in `unrestored` have none yet: they leave it), or drop it when lost."""
        partitions = list(partitions)
        restored = [tp for tp in partitions if tp not in unrestored]
        unrestored.difference_update(partitions)
        if lost or self.generation is None:
            self.drop(partitions)
        else:
            self.park(restored, self.generation())

    def assigned(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int | None]:
        """kafka-python assigned these: those whose state went back into the stage (see `take_back`)."""
        return self.take_back(partitions, self.generation() if self.generation is not None else -1)

    def drop(self, partitions: Iterable[TopicPartition]) -> None:
        """Membership lost (or state no longer wanted): nothing of these partitions is kept."""
        for tp in partitions:
            self._detach(tp.partition)
            self._parked.pop(tp, None)
            self.offsets.pop(tp, None)

    def take_back(self, assigned: Iterable[TopicPartition], generation: int) -> dict[TopicPartition, int | None]:
        """At assignment: partitions whose parked state goes back into the stage, with the offset to
        resume from (None: the committed one). Everything else parked is dropped."""
        kept: dict[TopicPartition, int | None] = {}
        if self._generation >= 0 and generation == self._generation + 1:
            for tp in assigned:
                if tp in self._parked:
                    self._attach(tp.partition, self._parked.pop(tp))
                    kept[tp] = self.offsets.get(tp)
        self.offsets = {tp: off for tp, off in self.offsets.items() if tp in kept}
        self._parked.clear()
        self._generation = -1
        return kept

    @property
    def parked(self) -> int:
        return len(self._parked)
