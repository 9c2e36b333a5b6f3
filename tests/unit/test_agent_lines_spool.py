"""Pure pieces of the agent: line splitting, wire encoding, spool records, dedup, framing, rate limit."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.flood import TokenBucket
from collectors.lines import BatchBuilder, LineSplitter, emit_ascii, encode_line
from collectors.listeners import StreamFramer, journal_entry_to_text, to_message
from collectors.spool import Spool, decode_records, encode_record
from collectors.wire import LineBatch, LogLine
from pipeline.dedup import SeenSequences


def test_encoded_batch_is_exactly_the_records_wire_format():
    b = BatchBuilder("/var/log/auth.log", "system.auth")
    b.add(encode_line('quote " back\\ tab\t ü 漢', 10, 2, 7, 1700000000.125, ("invalid_utf8",)), 0.0)
    b.add(encode_line("plain", 40, 3, 8, 1700000000.5), 0.0)
    data = b.encode("ag", "a1", "h", "system.auth", "Asia/Ho_Chi_Minh")
    expected = LineBatch(
        "ag",
        "a1",
        "h",
        "/var/log/auth.log",
        [
            LogLine('quote " back\\ tab\t ü 漢', 10, 2, 7, 1700000000.125, ["invalid_utf8"]),
            LogLine("plain", 40, 3, 8, 1700000000.5, []),
        ],
        "system.auth",
    )
    assert data == expected.to_bytes()
    assert LineBatch.from_bytes(data) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=30), st.integers(1, 64))
def test_splitter_offsets_and_line_numbers_match_the_bytes(pieces, cut):
    data = b"\n".join(pieces) + b"\n"
    sp = LineSplitter(max_line_bytes=1 << 20)
    lines = []
    for i in range(0, len(data), cut):
        lines += sp.feed(data[i : i + cut])
    assert [ln.raw for ln in lines] == data.split(b"\n")[:-1]
    for ln in lines:
        assert data[ln.offset : ln.offset + len(ln.raw) + 1] == ln.raw + b"\n"
    assert [ln.line_no for ln in lines] == list(range(1, len(lines) + 1))
    assert sp.offset == len(data) and sp.pending_bytes == 0


def test_splitter_holds_partial_line_and_truncates_overlong_lines():
    sp = LineSplitter(max_line_bytes=8)
    out = sp.feed(b"short\nthis line is far too long")
    assert [ln.raw for ln in out] == [b"short"]
    assert sp.offset == 6  # the checkpoint never covers the held line
    out = sp.feed(b" indeed\nok\npart")
    assert [(ln.raw, ln.truncated, ln.offset) for ln in out] == [(b"this lin", True, 6), (b"ok", False, 39)]
    assert sp.pending_bytes == 4
    flushed = sp.flush_partial()
    assert flushed is not None
    assert (flushed.raw, flushed.partial, flushed.offset, sp.offset) == (b"part", True, 42, 46)


def test_ascii_fast_path_matches_general_path():
    chunk = b'alpha\nbeta "q"\n\ngamma tail'
    slow_sp, fast_sp = LineSplitter(), LineSplitter()
    slow = [
        encode_line(ln.raw.decode(), ln.offset, ln.line_no, 5 + i, 1.5)
        for i, ln in enumerate(slow_sp.feed(b"x\n" + chunk))
    ]
    fast: list[str] = []
    fast_sp.feed(b"x")  # a held partial line is completed by the fast path
    nxt = emit_ascii(b"\n" + chunk, fast_sp, 5, 1.5, fast)
    assert fast == slow and nxt == 5 + len(slow)
    assert (fast_sp.offset, fast_sp.line_no, fast_sp.pending_bytes) == (slow_sp.offset, slow_sp.line_no, 10)
    assert emit_ascii("ü\n".encode(), LineSplitter(), 1, 1.0, []) is None  # non-ASCII: general path


def test_spool_record_checksum_skips_corrupt_records():
    recs = [encode_record({"s": "a", "n": i}, b"value%d" % i) for i in range(3)]
    bad = bytearray(recs[1])
    bad[-1] ^= 0xFF
    out, corrupt, consumed = decode_records(recs[0] + bytes(bad) + recs[2])
    assert [m["n"] for _, _, m, _ in out] == [0, 2] and corrupt == 1
    assert consumed == sum(map(len, recs))
    out, corrupt, consumed = decode_records(recs[0] + recs[1][:10])  # torn tail: left for later
    assert len(out) == 1 and corrupt == 0 and consumed == len(recs[0])


def test_spool_recovers_positions_truncates_torn_tail_and_resumes_after_ack(tmp_path):
    sp = Spool(tmp_path, segment_bytes=64 * 1024, max_bytes=1 << 20, fsync="always")
    assert sp.recover() == {}
    for i in range(50):
        sp.append({"s": "src", "k": "k", "n": 1, "p": {"q": i + 2}}, b"x" * 3000)
    recs = sp.read(10, 0)
    assert len(recs) == 10
    sp.ack(recs[-1].segment, recs[-1].end)
    sp.save_ack()
    sp.close()
    last_seg = max(tmp_path.glob("*.seg"))
    with open(last_seg, "ab") as f:
        f.write(b"SPL1\x00\x10")  # a crash mid-write
    sp2 = Spool(tmp_path, segment_bytes=64 * 1024, max_bytes=1 << 20)
    assert sp2.recover() == {"src": {"q": 51}}
    assert sp2.corrupt == 1
    again = sp2.read(100, 0)
    assert len(again) == 40  # exactly the unacked records, in order
    assert [r.meta["p"]["q"] for r in again] == list(range(12, 52))


def test_spool_full_and_segment_deletion_after_ack(tmp_path):
    sp = Spool(tmp_path, segment_bytes=64 * 1024, max_bytes=128 * 1024)
    sp.recover()
    calls: list[int] = []
    sp.on_before_delete = lambda: calls.append(1)

    def fill() -> None:  # a function, so the checker does not take `sp.full` for True ever after
        while not sp.full:
            sp.append({"s": "a", "k": "k", "n": 1}, b"y" * 4000)

    fill()
    recs = []
    while batch := sp.read(100, 0):
        recs += batch
    sp.ack(recs[-1].segment, recs[-1].end)
    assert calls and not sp.full and sp.pending_bytes == 0
    assert len(list(tmp_path.glob("*.seg"))) == 1  # only the active segment is left


def test_seen_sequences_drops_replays_and_reports_gaps():
    seen = SeenSequences()
    fresh = [seen.add("a", "s", q) for q in [1, 2, 3, 2, 3, 4, 6, 6, 5, 7]]
    assert fresh == [True, True, True, False, False, True, True, False, True, True]
    assert seen.duplicates == 3 and seen.gaps("a", "s") == [] and seen.high("a", "s") == 7
    seen.add("a", "s", 10)
    assert seen.gaps("a", "s") == [(8, 9)]
    assert seen.add("b", "s", 1)  # streams are independent


def test_stream_framer_octet_counting_and_newlines_across_reads():
    fr = StreamFramer(max_bytes=1024)
    stream = b"11 <13>hello a5 <13>b\n<13>nl framed\n<13>split"
    out = []
    for i in range(0, len(stream), 3):
        out += fr.feed(stream[i : i + 3])
    out += fr.feed(b" end\n")
    assert [m for m, _ in out] == [b"<13>hello a", b"<13>b", b"<13>nl framed", b"<13>split end"]
    fr = StreamFramer(max_bytes=8)
    assert fr.feed(b"20 <13>0123456789abcdef") == [(b"<13>0123", True)]
    assert fr.feed(b"<13>next\n") == [(b"<13>next", False)]


def test_listener_message_flags_and_journal_entry():
    msg = to_message(b"<13>bad \xff byte\r\n", 1024, 5.0)
    assert msg is not None
    assert msg.text == "<13>bad \ufffd byte" and msg.flags == ("invalid_utf8",)
    assert to_message(b"\n", 1024, 5.0) is None
    text = journal_entry_to_text(
        {"MESSAGE": [104, 105], "_HOSTNAME": "h", "SYSLOG_IDENTIFIER": "sshd", "__CURSOR": "c1", "_BOOT_ID": "x"}
    )
    assert text is not None and json.loads(text) == {"MESSAGE": "hi", "_HOSTNAME": "h", "SYSLOG_IDENTIFIER": "sshd"}


def test_token_bucket_limits_rate():
    b = TokenBucket(10, 10)
    assert b.available(0.0)
    b.take(25, 0.0)
    assert not b.available(1.0)  # -15 + 10
    assert b.available(2.0)


@pytest.mark.parametrize("n", [1, 3])
def test_batch_builder_clear(n):
    b = BatchBuilder("s")
    for _ in range(n):
        b.add("{}", 1.0)
    b.clear()
    assert b.lines == [] and b.nbytes == 0 and b.position is None
