"""File following on a real (temporary) filesystem: rotation, truncation, restarts, start position."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

from collectors.config import FileInputConfig
from collectors.file_input import FileInput
from collectors.tailer import FileSource


def source(path: Path, position=None, start_at_end=False, close_inactive_s=300.0, partial_s=5.0) -> FileSource:
    return FileSource(
        str(path), FileInputConfig(paths=[str(path)]), 1024, 65536, partial_s, close_inactive_s, position, start_at_end
    )


def read_all(src: FileSource, now: float = 0.0) -> list[dict]:
    src.refresh(now)
    out = []
    while lines := src.read(now, 1.0, 1 << 20):
        out += [json.loads(x) for x in lines]
    return out


def texts(lines) -> list[str]:
    return [ln["text"] for ln in lines]


def write(path: Path, lines: list[str], mode: str = "a") -> None:
    with open(path, mode) as f:
        f.write("".join(x + "\n" for x in lines))


def test_rename_rotation_finishes_old_file_first(tmp_path):
    log = tmp_path / "app.log"
    write(log, ["a1", "a2"])
    src = source(log)
    assert texts(read_all(src)) == ["a1", "a2"]
    write(log, ["a3"])  # written just before the rotation, not read yet
    log.rename(tmp_path / "app.log.1")
    write(log, ["b1"])
    lines = read_all(src)
    assert texts(lines) == ["a3", "b1"]
    assert [(ln["seq"], ln["line_no"], ln["offset"]) for ln in lines] == [(3, 3, 6), (4, 1, 0)]


def test_copytruncate_reads_rest_from_the_copy(tmp_path):
    log = tmp_path / "app.log"
    write(log, ["old1"])
    src = source(log)
    assert texts(read_all(src)) == ["old1"]
    write(log, ["old2", "old3"])  # unread when logrotate copies and truncates
    (tmp_path / "app.log.1").write_bytes(log.read_bytes())
    os.truncate(log, 0)
    write(log, ["new1"])
    assert texts(read_all(src)) == ["old2", "old3", "new1"]


def test_rotated_while_down_resumes_old_file_then_new(tmp_path):
    log = tmp_path / "app.log"
    write(log, ["a1", "a2"])
    src = source(log)
    assert texts(read_all(src)) == ["a1", "a2"]
    position = src.position()
    src.close()
    write(log, ["a3"])  # agent down: more lines, rotation, compressed older copies, a new file
    log.rename(tmp_path / "app.log.1")
    with gzip.open(tmp_path / "app.log.2.gz", "wb") as gz:
        gz.write(b"a1\na2\n")
    write(log, ["b1", "b2"])
    src = source(log, position=position)
    lines = read_all(src)
    assert texts(lines) == ["a3", "b1", "b2"]
    assert [ln["seq"] for ln in lines] == [3, 4, 5]


def test_deleted_while_open_is_read_to_the_end(tmp_path):
    log = tmp_path / "app.log"
    write(log, ["x1"])
    src = source(log, close_inactive_s=0.0)
    assert texts(read_all(src)) == ["x1"]
    with open(log, "a") as f:
        f.write("x2\n")
        f.flush()
        log.unlink()
        assert texts(read_all(src, 1.0)) == ["x2"]
    write(log, ["y1"])  # a new file under the same name (the inode may even be reused)
    assert texts(read_all(src, 2.0)) == ["y1"]


def test_start_at_end_skips_existing_lines_but_counts_them(tmp_path):
    log = tmp_path / "big.log"
    write(log, [f"old {i}" for i in range(1000)])
    src = source(log, start_at_end=True)
    assert read_all(src) == []
    write(log, ["fresh"])
    (line,) = read_all(src)
    assert line["text"] == "fresh" and line["line_no"] == 1001 and line["offset"] == log.stat().st_size - 6


def test_partial_line_waits_for_newline_or_timeout(tmp_path):
    log = tmp_path / "p.log"
    log.write_text("done\nhalf")
    src = source(log, partial_s=5.0)
    assert texts(read_all(src, 0.0)) == ["done"]
    assert read_all(src, 2.0) == []  # still waiting
    (line,) = read_all(src, 10.0)
    assert line["text"] == "half" and line["flags"] == ["partial"]
    with open(log, "a") as f:
        f.write(" rest\n")
    (line,) = read_all(src, 11.0)
    assert line["text"] == " rest" and line["offset"] == 9


def test_glob_ignores_compressed_files_and_rotated_copies(tmp_path):
    write(tmp_path / "a.log", ["a"])
    (tmp_path / "old.log.gz").write_bytes(gzip.compress(b"zzz\n"))
    cfg = FileInputConfig(paths=[str(tmp_path / "*.log*")])
    fi = FileInput(cfg, {}, 1024, 65536, 5.0, 300.0)
    assert [s.name for s in fi.discover()] == [str(tmp_path / "a.log")]
    src = fi.sources[str(tmp_path / "a.log")]
    src.refresh(0.0)
    (tmp_path / "a.log").rename(tmp_path / "a.log.1")  # matches the glob, but is a known file
    assert fi.discover() == []


def test_invalid_utf8_and_crlf(tmp_path):
    log = tmp_path / "w.log"
    log.write_bytes(b"caf\xe9\r\nok\r\n")
    lines = read_all(source(log))
    assert [(ln["text"], ln["flags"]) for ln in lines] == [("caf\ufffd", ["invalid_utf8"]), ("ok", [])]
    assert lines[1]["offset"] == 6
