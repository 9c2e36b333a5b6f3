"""Durable on-disk spool: every batch is written here before Kafka sees it (a write-ahead log).

Why always, not only when Kafka is down: one path means one ordering and one recovery story. Each
record carries its source's checkpoint, so the file positions and the spooled lines can never disagree
after a crash (no re-read lines with new sequence numbers). Records are checksummed; a corrupt one is
skipped and counted, never crash-looped on. Reading page-cached data back costs little.

Layout: `<dir>/<segment no>.seg` files of records, `<dir>/ack.json` = first byte Kafka has not acked.
Record: magic "SPL1", u32 payload length, u32 crc32(payload); payload = u32 meta length, meta JSON,
value (the Kafka record value).
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("socpipe.agent.spool")

MAGIC = b"SPL1"
HEADER = struct.Struct("<4sII")
META_LEN = struct.Struct("<I")
MAX_RECORD = 64 * 1024 * 1024
READ_CHUNK = 2 * 1024 * 1024


@dataclass(slots=True)
class SpoolRecord:
    segment: int
    start: int
    end: int  # byte offset just after the record in its segment
    meta: dict[str, Any]
    value: bytes


def encode_record(meta: dict[str, Any], value: bytes) -> bytes:
    m = json.dumps(meta, separators=(",", ":")).encode()
    payload = META_LEN.pack(len(m)) + m + value
    return HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def decode_records(data: bytes, base: int = 0) -> tuple[list[tuple[int, int, dict[str, Any], bytes]], int, int]:
    """Parse records from `data` (pure). Returns ([(start, end, meta, value)], corrupt count, consumed).

    A bad record (wrong magic, checksum, meta) is counted and skipped by searching for the next magic.
    An incomplete record at the end is left unconsumed (the writer may still be writing it)."""
    out = []
    corrupt = 0
    pos = 0
    n = len(data)
    while pos + HEADER.size <= n:
        magic, length, crc = HEADER.unpack_from(data, pos)
        if magic == MAGIC and length <= MAX_RECORD:
            end = pos + HEADER.size + length
            if end > n:
                break  # incomplete
            payload = data[pos + HEADER.size : end]
            if zlib.crc32(payload) == crc:
                try:
                    (mlen,) = META_LEN.unpack_from(payload, 0)
                    meta = json.loads(payload[4 : 4 + mlen])
                    out.append((base + pos, base + end, meta, payload[4 + mlen :]))
                    pos = end
                    continue
                except (ValueError, struct.error):
                    pass
        corrupt += 1
        nxt = data.find(MAGIC, pos + 1)
        if nxt < 0:
            return out, corrupt, n  # the rest holds no record start: skip it all
        pos = nxt
    return out, corrupt, pos


class Spool:
    def __init__(
        self,
        directory: str | Path,
        segment_bytes: int,
        max_bytes: int,
        fsync: str = "interval",
        fsync_interval_s: float = 1.0,
    ):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.segment_bytes = segment_bytes
        self.max_bytes = max_bytes
        self.fsync_policy = fsync
        self.fsync_interval_s = fsync_interval_s
        self.corrupt = 0
        self._lock = threading.Condition()
        self._sizes: dict[int, int] = {}  # segment -> bytes written
        self._fd = -1
        self._active = 0
        self._last_sync = time.monotonic()
        self._dirty = False
        self.ack_segment, self.ack_offset = 0, 0
        self._ack_saved = (0, 0)
        self._read_segment, self._read_offset = 0, 0
        self._read_buf = b""
        self._read_buf_start = 0
        self.on_before_delete: Callable[[], None] = lambda: None

    # --- start-up -----------------------------------------------------------------------------
    def recover(self) -> dict[str, dict[str, Any]]:
        """Scan existing segments: return the latest checkpoint per source and set up the ack pointer."""
        try:
            ack = json.loads((self.dir / "ack.json").read_text())
            self.ack_segment, self.ack_offset = int(ack["segment"]), int(ack["offset"])
        except (OSError, ValueError, KeyError, TypeError):
            self.ack_segment, self.ack_offset = 0, 0
        positions: dict[str, dict[str, Any]] = {}
        for seg in self._segments():
            data = (self.dir / f"{seg:012d}.seg").read_bytes()
            recs, corrupt, consumed = decode_records(data)
            for _s, _e, meta, _v in recs:
                if "p" in meta:
                    positions[meta["s"]] = meta["p"]
            if consumed < len(data):  # torn tail from a crash mid-write: cut it so readers never stall
                corrupt += 1
                with open(self.dir / f"{seg:012d}.seg", "r+b") as f:
                    f.truncate(consumed)
                data = data[:consumed]
            if corrupt:
                log.warning("spool.corrupt segment=%d records=%d", seg, corrupt)
                self.corrupt += corrupt
            self._sizes[seg] = len(data)
        segs = sorted(self._sizes)
        if segs and self.ack_segment < segs[0]:
            self.ack_segment, self.ack_offset = segs[0], 0
        self._read_segment, self._read_offset = self.ack_segment, self.ack_offset
        self._active = (segs[-1] if segs else 0) + 1
        self._open_active()
        return positions

    def _segments(self) -> list[int]:
        out = []
        for p in self.dir.glob("*.seg"):
            try:
                out.append(int(p.stem))
            except ValueError:
                continue
        return sorted(out)

    def _open_active(self) -> None:
        self._fd = os.open(self.dir / f"{self._active:012d}.seg", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._sizes[self._active] = os.fstat(self._fd).st_size

    # --- writer side (the agent's reader thread) ------------------------------------------------
    @property
    def pending_bytes(self) -> int:
        with self._lock:
            return sum(size for seg, size in self._sizes.items() if seg >= self.ack_segment) - self.ack_offset

    @property
    def full(self) -> bool:
        return self.pending_bytes >= self.max_bytes

    def append(self, meta: dict[str, Any], value: bytes) -> None:
        rec = encode_record(meta, value)
        with self._lock:
            if self._sizes[self._active] + len(rec) > self.segment_bytes and self._sizes[self._active] > 0:
                self._roll()
            written = os.write(self._fd, rec)
            while written < len(rec):
                written += os.write(self._fd, rec[written:])
            self._sizes[self._active] += len(rec)
            self._dirty = True
            if self.fsync_policy == "always":
                os.fsync(self._fd)
                self._dirty = False
            self._lock.notify_all()
        self.maybe_sync()

    def maybe_sync(self) -> None:
        if (
            self.fsync_policy == "interval"
            and self._dirty
            and time.monotonic() - self._last_sync >= self.fsync_interval_s
        ):
            with self._lock:
                os.fsync(self._fd)
                self._dirty = False
            self._last_sync = time.monotonic()

    def _roll(self) -> None:
        if self.fsync_policy != "never":
            os.fsync(self._fd)
        os.close(self._fd)
        self._active += 1
        self._open_active()

    # --- reader side (the shipper thread) -------------------------------------------------------
    def read(self, max_records: int, timeout_s: float) -> list[SpoolRecord]:
        """Next records after the read cursor, waiting up to timeout_s for the writer."""
        out: list[SpoolRecord] = []
        deadline = time.monotonic() + timeout_s
        while len(out) < max_records:
            with self._lock:
                seg = self._read_segment
                avail = self._sizes.get(seg, 0) - self._read_offset
                if avail <= 0:
                    if seg < self._active:
                        self._read_segment, self._read_offset = self._next_segment(seg), 0
                        self._read_buf = b""
                        continue
                    if out:
                        break
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._lock.wait(left)
                    continue
            with open(self.dir / f"{seg:012d}.seg", "rb") as f:
                f.seek(self._read_offset)
                data = f.read(min(avail, READ_CHUNK))
            recs, corrupt, consumed = decode_records(data, self._read_offset)
            if corrupt:
                log.warning("spool.corrupt segment=%d offset=%d records=%d", seg, self._read_offset, corrupt)
                self.corrupt += corrupt
            if consumed == 0 and not recs:
                if len(data) >= avail and seg < self._active:  # garbage up to the end of a closed segment
                    self.corrupt += 1
                    self._read_offset += len(data)
                    continue
                if len(data) < READ_CHUNK:
                    break  # writer mid-record (cannot happen with whole-record writes); retry later
            room = max_records - len(out)
            if len(recs) > room:  # stop right after the last record handed out
                recs = recs[:room]
                consumed = recs[-1][1] - self._read_offset
            for start, end, meta, value in recs:
                out.append(SpoolRecord(seg, start, end, meta, value))
            self._read_offset += consumed
        return out

    def _next_segment(self, seg: int) -> int:
        later = [s for s in self._sizes if s > seg]
        return min(later) if later else seg + 1

    def rewind(self) -> None:
        """Re-read from the first unacked record (after a failed send)."""
        with self._lock:
            self._read_segment, self._read_offset = self.ack_segment, self.ack_offset

    def ack(self, segment: int, end: int) -> None:
        """Kafka acknowledged every record up to (segment, end). Deletes fully acked segments."""
        with self._lock:
            self.ack_segment, self.ack_offset = segment, end
            done = [
                s for s in self._sizes if s < segment or (s == segment and end >= self._sizes[s] and s < self._active)
            ]
        if done:
            self.on_before_delete()  # checkpoints must cover these segments before they vanish
            with self._lock:
                for s in done:
                    self._sizes.pop(s, None)
                    (self.dir / f"{s:012d}.seg").unlink(missing_ok=True)
                if self.ack_segment in done:
                    self.ack_segment, self.ack_offset = self._next_segment(self.ack_segment), 0

    def save_ack(self) -> None:
        with self._lock:
            current = (self.ack_segment, self.ack_offset)
        if current != self._ack_saved:
            write_json_atomic(
                self.dir / "ack.json", {"segment": current[0], "offset": current[1]}, self.fsync_policy != "never"
            )
            self._ack_saved = current

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                if self.fsync_policy != "never":
                    os.fsync(self._fd)
                os.close(self._fd)
                self._fd = -1
        self.save_ack()


def write_json_atomic(path: Path, data: Any, fsync: bool = True) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, separators=(",", ":"))
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
