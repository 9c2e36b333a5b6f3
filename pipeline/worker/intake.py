"""Stage 1's intake: what a raw record must pass before any line of it is read, and the per-partition
dedup state saved with the offsets. No Kafka here: the worker hands in records and gets back batches,
rejections and snapshot bytes, so this plugs into any shape of worker loop.

1. `verify`: the record's MAC and key against the enrolment registry (`pipeline.verify`); agency and
   agent are stamped from the registry. A failure is a rejection reason (-> quarantine topic).
2. dedup: lines re-sent by the (verified) agent are dropped; a seq far ahead of its stream is
   processed, never made dedup state (`pipeline.dedup`), and reported as an ECS event of its own
   (`sequence_anomaly_event`) that the province rule `rules/socpipe/sequence_anomaly.yml` turns into
   an alert of the agency.
3. `snapshot`/`restore`: one partition's dedup state with the offset it is valid at.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from collectors.wire import LineBatch
from detectors.common.times import iso_ms, record_time
from pipeline.dedup import SeenSequences
from pipeline.verify import AgentLookup, RecordHeaders, verify_batch


@dataclass(slots=True)
class Accepted:
    batch: LineBatch
    lines_in: int  # lines in the record before dedup
    duplicates: int
    far_ahead: int  # lines processed despite a seq far ahead of the stream (an anomaly)
    stream_high: int  # the stream's highest seq remembered, for the anomaly's log line
    far_seq: int = 0  # the (latest) far-ahead seq


class Intake:
    def __init__(self, lookup: AgentLookup, max_seq_ahead: int):
        self.lookup = lookup
        self.max_seq_ahead = max_seq_ahead
        self.seen: dict[int, SeenSequences] = {}

    def _seen(self, partition: int) -> SeenSequences:
        seen = self.seen.get(partition)
        if seen is None:
            seen = self.seen[partition] = SeenSequences(self.max_seq_ahead, self.max_seq_ahead)
        return seen

    def accept(self, partition: int, key: bytes | None, headers: RecordHeaders, value: bytes | None) -> Accepted | str:
        """The verified batch with its new lines only, or the rejection reason."""
        batch, reason = verify_batch(key, headers, value, self.lookup)
        if batch is None:
            return reason
        seen = self._seen(partition)
        n, far = len(batch.lines), seen.far_ahead
        batch.lines = [ln for ln in batch.lines if not ln.seq or seen.add(batch.agent_id, batch.source, ln.seq)]
        far = seen.far_ahead - far
        if not far:
            return Accepted(batch, n, n - len(batch.lines), 0, 0)
        return Accepted(batch, n, n - len(batch.lines), far, seen.high(batch.agent_id, batch.source), seen.last_far)

    # --- persistence with the stage-1 offsets -------------------------------------------------------
    def snapshot(self, partition: int, offset: int) -> bytes:
        return json.dumps({"offset": offset, "seen": self._seen(partition).to_data()}, separators=(",", ":")).encode()

    def restore(self, partition: int, snap: dict[str, Any] | None) -> int | None:
        """Start a partition (from its snapshot if any); the offset to resume from, None for none."""
        seen = self.seen[partition] = SeenSequences(self.max_seq_ahead, self.max_seq_ahead)
        if not snap:
            return None
        seen.load_data(snap.get("seen") or [])
        return int(snap["offset"])

    def drop(self, partition: int) -> None:
        self.seen.pop(partition, None)

    def detach(self, partition: int) -> SeenSequences | None:
        """A partition's dedup state taken out (kept aside through a rebalance: pipeline.worker.handover)."""
        return self.seen.pop(partition, None)

    def attach(self, partition: int, seen: SeenSequences) -> None:
        self.seen[partition] = seen


def sequence_anomaly_event(got: Accepted, now: float) -> dict[str, Any]:
    """The ECS event reporting far-ahead seqs in one verified batch (agency and agent from the registry)."""
    b = got.batch
    return {
        "@timestamp": iso_ms(now),
        "event.kind": "event",
        "event.module": "socpipe",
        "event.dataset": "socpipe.integrity",
        "event.category": ["configuration"],
        "event.type": ["info"],
        "event.action": "sequence-anomaly",
        "message": (
            f"{got.far_ahead} line(s) of {b.source} numbered far ahead of the stream "
            f"(seq {got.far_seq}, stream at {got.stream_high}); processed, not trusted for duplicate removal"
        ),
        "organization.id": b.agency_id,
        "agent.id": b.agent_id,
        "agent.type": "socpipe",
        "host.name": b.host,
        "log.file.path": b.source,
        "socpipe.seq": got.far_seq,
        "socpipe.sequence.stream_high": got.stream_high,
        "socpipe.sequence.far_ahead": got.far_ahead,
    }


def quarantine_row(timestamp_ms: int, key: bytes | None, headers: RecordHeaders, value: bytes | None) -> dict[str, Any]:
    """One quarantined record as the SOC reads it back (`socpipe detect quarantine`): when, why, from
    where, and what it claimed (the key's agency and agent, never trusted, shown as they came)."""
    hdr = {k: v for k, v in headers or () if isinstance(k, str) and isinstance(v, bytes)}
    claimed = (key or b"").decode("utf-8", "replace").split("|", 2)
    return {
        "time": record_time(timestamp_ms),
        "reason": hdr.get("quarantine_reason", b"").decode("utf-8", "replace"),
        "from": hdr.get("quarantine_from", b"").decode("utf-8", "replace"),
        "claimed_agency": claimed[0] if len(claimed) == 3 else "",
        "claimed_agent": claimed[1] if len(claimed) == 3 else "",
        "source": claimed[2] if len(claimed) == 3 else "",
        "key": (key or b"").decode("utf-8", "replace")[:300],
        "lines": hdr.get("lines", b"").decode("ascii", "replace"),
        "bytes": len(value or b""),
    }
