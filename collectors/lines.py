"""Bytes to lines to wire records, with no I/O: the agent's hot path, kept allocation-light.

Lines are encoded straight to the JSON that `collectors.wire.LineBatch.to_bytes` produces (same keys,
same order), because building a LogLine per line and `asdict` would cost more than everything else.
`tests/unit/test_agent_lines.py` checks the bytes decode with `LineBatch.from_bytes`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from json.encoder import encode_basestring  # the C encoder json.dumps(ensure_ascii=False) uses
from typing import Any

from collectors.wire import WIRE_VERSION

FLAG_TRUNCATED = "truncated"
FLAG_INVALID_UTF8 = "invalid_utf8"
FLAG_PARTIAL = "partial"  # shipped without its newline after the partial-line timeout


def decode(raw: bytes) -> tuple[str, bool]:
    """UTF-8 with replacement; the bool says whether anything was replaced."""
    try:
        return raw.decode(), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace"), True


def encode_line(text: str, offset: int, line_no: int, seq: int, read_at: float, flags: tuple[str, ...] = ()) -> str:
    f = ",".join(f'"{x}"' for x in flags)
    return (
        f'{{"text":{encode_basestring(text)},"offset":{offset},"line_no":{line_no},"seq":{seq},'
        f'"read_at":{read_at!r},"flags":[{f}]}}'
    )


@dataclass(slots=True)
class SplitLine:
    raw: bytes
    offset: int
    line_no: int
    truncated: bool = False
    partial: bool = False


class LineSplitter:
    """Splits one file's byte stream into complete lines, holding a partial last line.

    `offset`/`line_no` always describe the end of the last line handed out, so they are the position a
    checkpoint may record: resuming there re-reads the held partial line, never skips it.
    """

    def __init__(self, offset: int = 0, line_no: int = 0, max_line_bytes: int = 64 * 1024):
        self.offset = offset  # byte offset just after the last emitted line
        self.line_no = line_no  # number of lines emitted so far (1-based numbering of the next is +1)
        self.max_line_bytes = max_line_bytes
        self._carry = b""  # bytes of the current unfinished line (at most max_line_bytes)
        self._carry_len = 0  # its true length, counting bytes dropped from an over-long line

    @property
    def pending_bytes(self) -> int:
        return self._carry_len

    def feed(self, chunk: bytes) -> list[SplitLine]:
        if not chunk:
            return []
        out: list[SplitLine] = []
        limit = self.max_line_bytes
        if self._carry_len:
            nl = chunk.find(b"\n")
            if nl < 0:
                self._hold(chunk)
                return out
            self._hold(chunk[:nl])
            out.append(self._emit_carry(self._carry_len + 1))
            chunk = chunk[nl + 1 :]
        parts = chunk.split(b"\n")
        rest = parts.pop()
        off = self.offset
        n = self.line_no
        for p in parts:
            n += 1
            size = len(p)
            if size > limit:
                out.append(SplitLine(p[:limit], off, n, truncated=True))
            else:
                out.append(SplitLine(p, off, n))
            off += size + 1
        self.offset, self.line_no = off, n
        if rest:
            self._hold(rest)
        return out

    def held_line(self) -> bytes | None:
        """The held partial line, or None when it was cut (over-long): then only feed() handles it."""
        return self._carry if self._carry_len == len(self._carry) else None

    def replace_held(self, data: bytes) -> None:
        """For a caller that consumed the held bytes itself (after emitting complete lines)."""
        self._carry, self._carry_len = b"", 0
        if data:
            self._hold(data)

    def flush_partial(self) -> SplitLine | None:
        """Hand out the held partial line (after the timeout); its continuation becomes a new line."""
        if not self._carry_len:
            return None
        line = self._emit_carry(self._carry_len)
        line.partial = True
        return line

    def _hold(self, data: bytes) -> None:
        room = self.max_line_bytes - len(self._carry)
        if room > 0:
            self._carry += data[:room]
        self._carry_len += len(data)

    def _emit_carry(self, consumed: int) -> SplitLine:
        self.line_no += 1
        line = SplitLine(self._carry, self.offset, self.line_no, truncated=self._carry_len > self.max_line_bytes)
        self.offset += consumed
        self._carry, self._carry_len = b"", 0
        return line


def emit_lines(lines: Iterable[SplitLine], seq: int, wall: float, out: list[str]) -> int:
    """The general path: any bytes, with flags, numbered from `seq`; returns the next seq. See
    emit_ascii for the common case."""
    append = out.append
    for ln in lines:
        raw = ln.raw
        if raw[-1:] == b"\r":
            raw = raw[:-1]
        try:
            text = raw.decode()
            bad = False
        except UnicodeDecodeError:
            text, bad = decode(raw)
        if bad or ln.truncated or ln.partial:
            flags = tuple(
                x
                for x, on in ((FLAG_TRUNCATED, ln.truncated), (FLAG_INVALID_UTF8, bad), (FLAG_PARTIAL, ln.partial))
                if on
            )
        else:
            flags = ()
        append(encode_line(text, ln.offset, ln.line_no, seq, wall, flags))
        seq += 1
    return seq


def emit_ascii(chunk: bytes, sp: LineSplitter, seq: int, wall: float, out: list[str]) -> int | None:
    """Fast path for the common chunk: pure ASCII, no CR, no over-long line.
    Decodes the chunk once and formats each line with one f-string. Returns the next seq, or None
    (nothing consumed) when the chunk needs the general path (emit_lines). Output is identical to encode_line."""
    carry = sp.held_line()
    if carry is None or not chunk.isascii() or b"\r" in chunk or not carry.isascii():
        return None
    text = (carry + chunk).decode("ascii") if carry else chunk.decode("ascii")
    parts = text.split("\n")
    rest = parts.pop()
    limit = sp.max_line_bytes
    if len(rest) > limit or (parts and max(map(len, parts)) > limit):
        return None
    tail = f',"read_at":{wall!r},"flags":[]}}'
    off, n = sp.offset, sp.line_no
    append = out.append
    for p in parts:
        n += 1
        append(f'{{"text":{encode_basestring(p)},"offset":{off},"line_no":{n},"seq":{seq}{tail}')
        off += len(p) + 1
        seq += 1
    sp.offset, sp.line_no = off, n
    sp.replace_held(rest.encode("ascii"))
    return seq


@dataclass(slots=True)
class BatchBuilder:
    """Encoded lines of ONE source waiting to become one Kafka record."""

    source: str
    dataset: str | None = None
    lines: list[str] = field(default_factory=list)
    nbytes: int = 0
    first_at: float = 0.0  # when the first line was added (for linger)
    position: dict[str, Any] | None = None  # the source's checkpoint after the last line added

    def add(self, encoded: str, now: float) -> None:
        if not self.lines:
            self.first_at = now
        self.lines.append(encoded)
        self.nbytes += len(encoded) + 1

    def encode(self, agency_id: str, agent_id: str, host: str, dataset: str | None, timezone: str) -> bytes:
        ds = "null" if not dataset else encode_basestring(dataset)
        return (
            f'{{"agency_id":{encode_basestring(agency_id)},"agent_id":{encode_basestring(agent_id)},'
            f'"host":{encode_basestring(host)},"source":{encode_basestring(self.source)},'
            f'"lines":[{",".join(self.lines)}],"dataset":{ds},"timezone":{encode_basestring(timezone)},'
            f'"v":{WIRE_VERSION}}}'
        ).encode()

    def clear(self) -> None:
        self.lines = []
        self.nbytes = 0
        self.position = None
