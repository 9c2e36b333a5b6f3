"""Per-source batches -> spool records, each carrying its source's checkpoint.

The agent's loop hands every read (file lines, listener messages) to `Batcher.add`; a full batch, or
one older than `batch.linger_s`, becomes one spool record: encoded, signed (counter and MAC go into
the spool with the record, so a resend carries the same ones) and holding the source's position after
its last line. The positions that reached the spool are what `checkpoints.json` saves: after a crash
the spool replays what was read past them. Used by the agent's loop thread; `spooled_positions()` is
also read from the spool's thread (before it deletes a segment).
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from itertools import accumulate
from typing import Any

from collectors.config import AgentConfig
from collectors.identity import Identity
from collectors.lines import BatchBuilder
from collectors.spool import Spool
from collectors.wire import MessageCounter, batch_mac


class Batcher:
    def __init__(
        self,
        config: AgentConfig,
        identity: Identity,
        host: str,
        counter: MessageCounter,
        spool: Spool,
        positions: dict[str, dict[str, Any]],
    ) -> None:
        self.config, self.identity, self.host, self.counter, self.spool = config, identity, host, counter, spool
        self._batches: dict[str, BatchBuilder] = {}
        self._spooled = dict(positions)  # source -> the position its last spooled record carried
        self._lock = threading.Lock()

    def track(self, source: str, position: dict[str, Any]) -> None:
        """A newly found source starts at `position` unless a spooled record already moved it."""
        with self._lock:
            self._spooled.setdefault(source, position)

    def spooled_positions(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self._spooled)

    def add(self, source: str, dataset: str | None, lines: list[str], position: dict[str, Any], now: float) -> None:
        """Append lines to the source's batch; a full batch goes to the spool. Only the record holding
        the last of these lines carries the source's checkpoint (the position after all of them)."""
        b = self._batches.get(source)
        if b is None:
            b = self._batches[source] = BatchBuilder(source, dataset)
        max_lines, max_bytes = self.config.batch.max_lines, self.config.batch.max_bytes - 512  # envelope
        i, n = 0, len(lines)
        while i < n:
            room_lines = max_lines - len(b.lines)
            room_bytes = max_bytes - b.nbytes
            chunk = lines[i : i + room_lines]
            sizes = list(accumulate(map(len, chunk)))  # +1 per line for the comma
            k = bisect_right(range(len(chunk)), room_bytes, key=lambda j: sizes[j] + j + 1)
            if k == 0 and not b.lines:
                k = 1  # a single line always fits an empty batch (max_line_bytes < max_bytes / 2)
            if k:
                if not b.lines:
                    b.first_at = now
                b.lines.extend(chunk[:k])
                b.nbytes += sizes[k - 1] + k
                i += k
            if i < n:
                b.position = None  # more lines of this read follow: no checkpoint in this record
                self._flush(b)
        b.position = position

    def sign(self, meta: dict[str, Any], value: bytes) -> None:
        """Counter and MAC go into the spool with the record: a resend carries the same ones."""
        ctr = self.counter.next()
        meta["c"] = ctr
        meta["m"] = batch_mac(self.identity.secret, meta["k"].encode(), ctr, int(meta["n"]), meta["d"], value)

    def flush_lingering(self, now: float) -> None:
        linger = self.config.batch.linger_s
        for b in self._batches.values():
            if b.lines and now - b.first_at >= linger:
                self._flush(b)

    def flush_all(self) -> None:
        for b in self._batches.values():
            self._flush(b)

    def _flush(self, b: BatchBuilder) -> None:
        if not b.lines:
            return
        ident = self.identity
        dataset = b.dataset
        value = b.encode(ident.agency_id, ident.agent_id, self.host, dataset, self.config.timezone)
        meta = {
            "s": b.source,
            "k": f"{ident.agency_id}|{ident.agent_id}|{b.source}",
            "n": len(b.lines),
            "d": dataset or "",
        }
        self.sign(meta, value)
        if b.position is not None:
            meta["p"] = b.position
        self.spool.append(meta, value)
        if b.position is not None:
            with self._lock:
                self._spooled[b.source] = b.position
        b.clear()
