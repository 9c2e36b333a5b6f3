"""Which worker takes which partitions: by the lines each partition carried lately, keeping what each
worker already holds.

Raw records are keyed by agency|agent|source, and a hash spreads keys over partitions unevenly: the
64 equal sources of `bench_pipeline` land 268/203/236/293 records per 1,000 on 4 partitions, so
kafka-python's range assignor gave two workers 47% and 53% of the lines (1.89x at best). Real sources
differ far more (a portal's access log against a commune's auth.log). The split itself
(`pipeline.worker.balance`) is pure and sticky: a worker keeps its partitions while it carries no
more than its fair share + 5% (or what the greedy split from scratch would give the busiest), so a
restart or a join moves only what must move, and the rest goes heaviest first to the least-loaded.

What a partition weighs is the *lines* it received lately, not its records: a raw record is one
agent batch of 1 to thousands of lines, and a worker's cost is per line (parse, rules, models). The
group leader counts records per partition from end offsets (a few times a minute, every partition,
nothing read); each worker measures lines per record of the partitions it consumes (the verified
batch's line count, which the agent signs in the `lines` header: free, and a forged record counts
nothing), and reports them with what it owns in its subscription's user_data; load = records x lines
per record (a partition nobody reported: the average of those reported). The leader takes a figure
only from the member that owns the partition (`resolve`: a stale or contested claim teaches nothing),
and only a finite one above 0 and at most what an agent may put in a record (`MAX_BATCH_LINES`); a
claim whose generation no Kafka group can have (past int32), or one the coordinator never gave
(`check_claims`), owns nothing. Lines rather than bytes,
because they are known without decoding and the per-line work dominates the worker's CPU; a byte
count would weigh a 300-byte auditd line as three 100-byte auth lines.

`PartitionLoads` keeps the samples; `LoadAssignor` is what kafka-python calls (the leader's `assign`,
every member's `metadata` and `on_assignment`). Which worker gets which partition changes nothing about
correctness: the handover (snapshots with offsets) is the same whoever gets them. Workers without it in
a group fall back to range (listed second).
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kafka.coordinator.assignors.abstract import (
    AbstractPartitionAssignor,
    ConsumerProtocolAssignment,
    ConsumerProtocolSubscription,
)

from collectors.wire import MAX_BATCH_LINES
from pipeline.worker.balance import IDLE_FLOOR, TOLERANCE, balance, moved

__all__ = [
    "IDLE_FLOOR",
    "TOLERANCE",
    "Claim",
    "LoadAssignor",
    "PartitionLoads",
    "balance",
    "check_claims",
    "decode_claim",
]

log = logging.getLogger("socpipe.detector")

USER_DATA_VERSION = 1
MAX_USER_DATA = 64 * 1024  # bytes of a member's user_data the leader reads at most
MAX_PARTITIONS = 10_000  # partitions per member's claim, at most
MAX_GENERATION = 2**31 - 1  # Kafka's generation ids are int32


@dataclass(frozen=True)
class Claim:
    """What a member said it holds: the generation of that assignment, partitions per topic, lines per
    record it measured on them, and the generation since which it holds each (without a break).
    Anything unreadable is the empty claim (owns nothing). On the wire (JSON, `v` 1):
    {"v": 1, "gen": G, "topics": {topic: [[partition, lines per record (0: unknown), since], ...]}}."""

    generation: int = -1
    owned: dict[str, tuple[int, ...]] = field(default_factory=dict)
    lines_per_record: dict[str, dict[int, float]] = field(default_factory=dict)
    since: dict[str, dict[int, int]] = field(default_factory=dict)

    def encode(self) -> bytes:
        topics = {
            t: [
                [
                    p,
                    round(self.lines_per_record.get(t, {}).get(p, 0.0), 2),
                    self.since.get(t, {}).get(p, self.generation),
                ]
                for p in sorted(ps)
            ]
            for t, ps in sorted(self.owned.items())
        }
        return json.dumps(
            {"v": USER_DATA_VERSION, "gen": self.generation, "topics": topics}, separators=(",", ":")
        ).encode()


def _partition(x: Any) -> int | None:
    return x if type(x) is int and 0 <= x < 2**31 else None


def decode_claim(data: bytes | None) -> Claim:
    """A member's user_data as a claim; absent, another version, too large or malformed: owns nothing
    (the leader must never fail on what a member sends: a crash would stop the whole group's join)."""
    if not data or len(data) > MAX_USER_DATA:
        return Claim()
    try:
        doc = json.loads(bytes(data))
    except (ValueError, TypeError):
        return Claim()
    if not isinstance(doc, dict) or doc.get("v") != USER_DATA_VERSION or not isinstance(doc.get("topics"), dict):
        return Claim()
    gen = doc.get("gen")
    generation = gen if type(gen) is int else -1
    if not -1 <= generation <= MAX_GENERATION:  # forged: it would win every partition it claims
        return Claim()
    owned: dict[str, tuple[int, ...]] = {}
    ratios: dict[str, dict[int, float]] = {}
    since: dict[str, dict[int, int]] = {}
    count = 0
    for topic, rows in doc["topics"].items():
        if not isinstance(rows, list):
            return Claim()
        parts, rate, held = [], {}, {}
        for row in rows:
            if not (isinstance(row, list) and len(row) == 3) or (p := _partition(row[0])) is None:
                return Claim()
            parts.append(p)
            r, g = row[1], row[2]
            # the range first: math.isfinite raises OverflowError on a JSON integer past a float's range
            if type(r) in (int, float) and 0 < r <= MAX_BATCH_LINES and math.isfinite(r):
                rate[p] = float(r)
            held[p] = g if type(g) is int and -1 <= g <= generation else generation
        count += len(parts)
        if count > MAX_PARTITIONS:
            return Claim()
        owned[topic], ratios[topic], since[topic] = tuple(sorted(set(parts))), rate, held
    return Claim(generation, owned, ratios, since)


def resolve(claims: Mapping[str, Claim], topic: str) -> dict[str, list[int]]:
    """Who owns what of `topic`: a partition two members claim goes to the later generation's claim,
    and to nobody on a tie (a stale claim must not keep a partition from its real owner). The
    generation since which the owner holds each: `held_since`."""
    best: dict[int, tuple[int, list[str]]] = {}
    for member, claim in claims.items():
        for p in claim.owned.get(topic, ()):
            gen, who = best.get(p, (-2, []))
            if claim.generation > gen:
                best[p] = (claim.generation, [member])
            elif claim.generation == gen:
                who.append(member)
    out: dict[str, list[int]] = defaultdict(list)
    for p, (_, who) in best.items():
        if len(who) == 1:
            out[who[0]].append(p)
    return dict(out)


Given = Mapping[str, Mapping[str, Iterable[int]]]  # member -> topic -> partitions an assignment gave it


def check_claims(
    claims: Mapping[str, Claim], forming: int | None, made: tuple[int, Given] | None = None
) -> tuple[dict[str, Claim], dict[str, str]]:
    """The claims a leader may believe, and why each refused one was refused (member -> reason).

    Only SOC workers can join the detector's groups (the agents' principals have no group ACL:
    SECURITY.md), so a forged claim means a SOC credential in the wrong hands, which can do worse
    (commit offsets, write the state topic); what a claim can win is placement, never correctness.
    Still, the later generation wins a contested partition (`resolve`), so a claim must not be able to
    name a generation it was never given:

    * `forming`: the generation the coordinator gave this join (every member's assignment is of an
      earlier one). A claim of it or later is forged and owns nothing. None (unknown): not checked.
    * `made`: (generation, what each member was given) of the assignment this leader itself made last.
      When that is the generation just before `forming`, a claim of it keeps only what the member was
      really given; claims of older generations lose to it in `resolve` as stale ones do.

    A leader that did not make the last assignment (it just took over) cannot check what a claim of
    the last generation holds: a forged one then ties with the real owner, and a tie owns nothing (the
    partition is placed as if unowned), so a forger can make a partition move but not win it."""
    if forming is None or forming <= 0:
        return dict(claims), {}
    out: dict[str, Claim] = {}
    refused: dict[str, str] = {}
    last = made[1] if made is not None and made[0] == forming - 1 else None
    for member, claim in claims.items():
        if claim.generation >= forming:
            out[member] = Claim()
            refused[member] = f"generation={claim.generation} forming={forming} (never given)"
            continue
        if last is None or claim.generation != forming - 1:
            out[member] = claim
            continue
        given = last.get(member, {})
        owned = {t: tuple(p for p in ps if p in set(given.get(t, ()))) for t, ps in claim.owned.items()}
        extra = {t: sorted(set(ps) - set(owned[t])) for t, ps in claim.owned.items() if set(ps) - set(owned[t])}
        if extra:
            refused[member] = f"generation={claim.generation} not_given={extra}"
        out[member] = Claim(
            claim.generation,
            owned,
            {t: {p: r for p, r in rs.items() if p in owned.get(t, ())} for t, rs in claim.lines_per_record.items()},
            {t: {p: g for p, g in gs.items() if p in owned.get(t, ())} for t, gs in claim.since.items()},
        )
    return out, refused


def held_since(claims: Mapping[str, Claim], owned: Mapping[str, Iterable[int]], topic: str) -> dict[int, int]:
    return {p: claims[m].since.get(topic, {}).get(p, claims[m].generation) for m, ps in owned.items() for p in ps}


class PartitionLoads:
    """Lines per partition over the last `window_s`: records from end offsets sampled by the worker's
    loop, times lines per record measured on consumed records (own, or reported by the owner).

    Written by the worker's thread, read by kafka-python's while it assigns: each sample replaces the
    published figures in one assignment."""

    def __init__(self, window_s: float = 120.0) -> None:
        self.window_s = window_s
        self._samples: dict[str, deque[tuple[float, dict[int, int]]]] = defaultdict(deque)
        self._records: dict[str, dict[int, float]] = {}
        self._ratio: dict[str, dict[int, float]] = defaultdict(dict)
        self._lock = threading.Lock()

    def sample(self, topic: str, now: float, end_offsets: dict[int, int]) -> None:
        with self._lock:
            samples = self._samples[topic]
            samples.append((now, dict(end_offsets)))
            while len(samples) > 2 and samples[1][0] <= now - self.window_s:
                samples.popleft()  # keep one sample at or before the window's start
            first, last = samples[0][1], samples[-1][1]
            records = {p: float(off - first.get(p, off)) for p, off in last.items()} if len(samples) > 1 else {}
            self._records = {**self._records, topic: records}

    def observe(self, topic: str, partition: int, records: int, lines: int) -> None:
        """Lines of `records` consumed from a partition (a moving average per partition)."""
        if records <= 0:
            return
        with self._lock:
            now = lines / records
            was = self._ratio[topic].get(partition)
            self._ratio[topic][partition] = now if was is None else 0.8 * was + 0.2 * now

    def learn(self, topic: str, ratios: Mapping[int, float]) -> None:
        """Lines per record other members reported for the partitions they own."""
        with self._lock:
            self._ratio[topic].update(ratios)

    def ratios(self, topic: str, partitions: Iterable[int]) -> dict[int, float]:
        with self._lock:
            known = dict(self._ratio.get(topic, {}))
        return {p: known[p] for p in partitions if p in known}

    def records(self, topic: str) -> dict[int, float]:
        return self._records.get(topic, {})

    def loads(self, topic: str) -> dict[int, float]:
        """Lines per partition within the window (records x lines per record; a partition without a
        measured ratio: the average ratio, 1.0 when none is known)."""
        with self._lock:  # the worker's thread observes while kafka-python's assigns
            records, known = self._records.get(topic, {}), dict(self._ratio.get(topic, {}))
        average = sum(known.values()) / len(known) if known else 1.0
        return {p: n * known.get(p, average) for p, n in records.items()}


class LoadAssignor(AbstractPartitionAssignor):  # type: ignore[misc]
    """kafka-python's hook, one per consumer (it remembers that consumer's assignment): the group leader
    assigns every topic of the group with `balance`, from what each member says it owns."""

    name = "socpipe-load"
    version = 0

    def __init__(
        self, loads: PartitionLoads, tolerance: float = TOLERANCE, forming: Callable[[], int | None] | None = None
    ) -> None:
        self.loads = loads
        self.tolerance = tolerance
        self.generation = -1  # of the last assignment this assignor made for its consumer
        self.owned: dict[str, list[int]] = {}
        self.since: dict[str, dict[int, int]] = {}  # generation since which it holds each partition
        # the generation the coordinator gave the join being assigned (its consumer's, read while the
        # leader assigns: `consumer.group_metadata().generation_id`); None: claims' generations unchecked
        self.forming = forming
        self._pending: tuple[int, dict[str, dict[str, list[int]]]] | None = None  # assigned, not yet synced
        self._made: tuple[int, dict[str, dict[str, list[int]]]] | None = None  # what this leader gave last

    def _forming(self) -> int | None:
        try:
            got = self.forming() if self.forming is not None else None
        except Exception:  # kafka-python without it, or closing: unchecked, as before
            return None
        return got if type(got) is int and 0 < got <= MAX_GENERATION else None

    def assign(self, cluster: Any, members: Any) -> dict[str, Any]:
        by_topic: dict[str, list[str]] = defaultdict(list)
        decoded: dict[str, Claim] = {}
        for member in members:
            decoded[member.member_id] = decode_claim(getattr(member.metadata, "user_data", None))
            for topic in member.metadata.topics:
                by_topic[topic].append(member.member_id)
        forming = self._forming()
        claims, refused = check_claims(decoded, forming, self._made)
        for member_id, why in sorted(refused.items()):
            log.warning("detector.assignment_claim_refused member=%s %s", member_id, why)
        assignment: dict[str, dict[str, list[int]]] = defaultdict(dict)
        for topic, member_ids in by_topic.items():
            partitions = cluster.partitions_for_topic(topic)
            if not partitions:
                continue
            owned = resolve({m: claims[m] for m in member_ids}, topic)
            for member_id, parts in owned.items():  # figures of its owner only, of partitions the topic has
                rates = claims[member_id].lines_per_record.get(topic, {})
                self.loads.learn(topic, {p: rates[p] for p in parts if p in rates and p in partitions})
            split = balance(
                sorted(partitions),
                member_ids,
                self.loads.loads(topic),
                owned,
                self.tolerance,
                held_since(claims, owned, topic),
            )
            log.info(
                "detector.assignment topic=%s members=%d partitions=%d kept=%d moved=%d unowned_before=%d",
                topic,
                len(member_ids),
                len(partitions),
                sum(len(set(ps) & set(owned.get(m, ()))) for m, ps in split.items()),
                len(moved(owned, split)),
                len(set(partitions) - {p for ps in owned.values() for p in ps}),
            )
            for member_id, parts in split.items():
                assignment[member_id][topic] = parts
        self._pending = (forming, {m: dict(ts) for m, ts in assignment.items()}) if forming is not None else None
        return {
            m.member_id: ConsumerProtocolAssignment(self.version, sorted(assignment[m.member_id].items()), b"")
            for m in members
        }

    def metadata(self, topics: Any) -> Any:
        """This member's subscription, with what it owns (and lines per record there) as user_data."""
        owned = {t: tuple(ps) for t, ps in self.owned.items() if t in set(topics)}
        ratios = {t: self.loads.ratios(t, ps) for t, ps in owned.items()}
        claim = Claim(self.generation, owned, ratios, self.since)
        return ConsumerProtocolSubscription(self.version, sorted(topics), claim.encode())

    def on_assignment(self, assignment: Any, generation: Any) -> None:
        """Called on every member after each rebalance this assignor decided. A partition held in the
        generation just before keeps its `since`; any other starts now."""
        generation = generation if isinstance(generation, int) else -1
        pending, self._pending = self._pending, None  # this member led the join now synced: what it gave
        self._made = pending if pending is not None and pending[0] == generation else None
        owned: dict[str, list[int]] = defaultdict(list)
        for tp in assignment.partitions():
            owned[tp.topic].append(tp.partition)
        running = self.generation >= 0 and generation == self.generation + 1
        self.since = {
            t: {p: self.since.get(t, {}).get(p, generation) if running else generation for p in ps}
            for t, ps in owned.items()
        }
        self.owned = {t: sorted(ps) for t, ps in owned.items()}
        self.generation = generation
