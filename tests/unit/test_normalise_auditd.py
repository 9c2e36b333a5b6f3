"""auditd parsing kept exactly as it was while made faster (issue 15): every event of the CAM-LDS audit
logs, per record and assembled, is what the parser gave before the restructuring (same fields, values
and key order), and the SYSCALL fast path gives, by property, the general path's event."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from unittest.mock import patch

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from collectors.wire import LineBatch, LogLine
from detectors.normalise import Normaliser, parse_line
from detectors.normalise.auditd import parse_record
from detectors.normalise.auditd_syscall import syscall_line

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
CAMLDS = DATASETS / "ait_camlds_attack_manifestations" / "sequences"
READ_AT = 1764288000.0  # lines without a time fall back to the read time: pinned

# sha256 of the canonical dump below, computed with the parser before the issue-15 restructuring
# (commit 0a79880, auditd.py as one module, no fast path). A deliberate change of auditd events
# changes it: recompute with `python tests/unit/test_normalise_auditd.py` and say why in the commit.
GOLDEN = {
    "files": 13,
    "records": 15920,
    "assembled": 3094,
    "digest": "7129a200a8a0c9797d87c1c3745ed924fccc991ef83197a74ccca124df5d3465",
}


def _lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        return [ln.rstrip("\n") for ln in fh if ln.strip()]


def corpus_dump() -> tuple[int, int, int, str]:
    """(files, records, assembled events, sha256) over every audit.log* of CAM-LDS: each line through
    parse_line, and each file through a Normaliser batch (records assembled by serial)."""
    files = sorted(p for p in CAMLDS.rglob("audit.log*") if p.is_file())
    digest = hashlib.sha256()
    records = assembled = 0
    for path in files:
        lines = _lines(path)
        digest.update(path.relative_to(CAMLDS).as_posix().encode())
        for line in lines:
            digest.update(json.dumps(list(parse_line(line, read_at=READ_AT).items())).encode())
            records += 1
        normaliser = Normaliser(default_timezone="UTC")
        # the source path as the agent would name it, not where this checkout sits: the digest must
        # not depend on the directory the corpus is found in (CI runs from another one)
        source = "/var/log/camlds/" + path.relative_to(CAMLDS).as_posix()
        batch = LineBatch(
            "a", "b", "h", source, [LogLine(text=t, line_no=i, read_at=READ_AT) for i, t in enumerate(lines, 1)]
        )
        for ev in normaliser.normalise_batch(batch) + normaliser.flush():
            digest.update(json.dumps(list(ev.items())).encode())
            assembled += 1
    return len(files), records, assembled, digest.hexdigest()


@pytest.mark.skipif(not CAMLDS.is_dir(), reason="../shared/datasets CAM-LDS corpus absent")
def test_camlds_audit_events_are_what_they_were_before_the_restructuring() -> None:
    files, records, assembled, digest = corpus_dump()
    assert (files, records, assembled) == (GOLDEN["files"], GOLDEN["records"], GOLDEN["assembled"])
    assert digest == GOLDEN["digest"]


def _general(line: str) -> dict | None:
    """The general path of parse_raw (per-key parsing), which the fast path must equal."""
    ev = {"message": line, "event.original": line, "event.kind": "event"}
    return ev if parse_record(ev, line) else None


_token = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=8)
_value = st.one_of(
    _token,
    st.sampled_from(["", "?", "(null)", "-1", "4294967295", "0", "1000", "yes", "no", "c000003e", "59", "322", "٣"]),
    st.builds(lambda t: f'"{t}"', _token),
    st.builds(lambda a, b: f'"{a} {b}"', _token, _token),
    st.text(st.sampled_from("0123456789ABCDEF"), min_size=2, max_size=12),
    st.text(max_size=4),
)
_KEYS = (
    "arch syscall success exit a0 a1 a2 a3 items ppid pid auid uid gid euid suid fsuid egid sgid fsgid tty ses comm exe"
)


@st.composite
def syscall_lines(draw: st.DrawFn) -> str:
    pairs = [f"{k}={draw(_value)}" for k in _KEYS.split()]
    if draw(st.booleans()):
        pairs.append(f"subj={draw(_value)}")
    pairs.append(f"key={draw(_value)}")
    if draw(st.integers(0, 9)) == 0:  # a stray or missing pair: not the layout
        pairs.insert(draw(st.integers(0, len(pairs))), f"{draw(_token)}={draw(_value)}")
    line = f"type=SYSCALL msg=audit({draw(st.sampled_from(['1764288000.123', '1764288061', '99999999999.5', '0.1']))}:{draw(st.integers(0, 10**20))}): "
    line += " ".join(pairs)
    if draw(st.booleans()):  # the enriched section auditd adds with log_format=ENRICHED
        extra = draw(
            st.lists(
                st.tuples(st.sampled_from(["ARCH", "SYSCALL", "UID", "EUID", "AUID", "GID", "X"]), _value), max_size=5
            )
        )
        line += "\x1d" + " ".join(f"{k}={v}" for k, v in extra)
    return line


@settings(max_examples=400, deadline=None)
@given(syscall_lines())
@example(
    "type=SYSCALL msg=audit(1765536454.200:3855): arch=c000003e syscall=59 success=yes exit=0 a0=55fb a1=55fc a2=55fd "
    "a3=0 items=2 ppid=2520 pid=2523 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=13 "
    'comm="ld-linux-x86-64" exe="/usr/lib/ld.so.2" subj=unconfined key="T1078"\x1dARCH=x86_64 SYSCALL=execve '
    'AUID="root" UID="root" GID="root" EUID="root"'
)
@example(
    "type=SYSCALL msg=audit(1764288000.5:7): arch=c000003e syscall=59 success=no exit=-2 a0=1 a1=2 a2=3 a3=4 items=1 "
    "ppid=1 pid=2 auid=4294967295 uid=-1 gid=? euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=1 "
    "comm=6C73 exe=2F62696E2F6C73 key=(null)"
)
def test_syscall_fast_path_gives_the_general_event(line: str) -> None:
    fast = syscall_line(line)
    if fast is not None:
        general = _general(line)
        assert general is not None and list(fast.items()) == list(general.items())
    for dataset in (None, "auditd.log"):  # parse_line's hot path, against parse_line without it
        got = parse_line(line, dataset, read_at=READ_AT)
        with patch("detectors.normalise.core.syscall_line", lambda _text: None):
            want = parse_line(line, dataset, read_at=READ_AT)
        assert list(got.items()) == list(want.items())


def test_the_fast_path_takes_the_kernel_layout_and_leaves_the_rest() -> None:
    line = (
        "type=SYSCALL msg=audit(1764288000.123:42): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 "
        "items=2 ppid=1 pid=4242 auid=1000 uid=1000 gid=1000 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 "
        'ses=3 comm="bash" exe="/usr/bin/bash" key="exec"'
    )
    ev = syscall_line(line)
    assert ev == _general(line) and ev is not None
    assert (ev["process.pid"], ev["process.name"], ev["user.effective.id"], ev["auditd.log.syscall"]) == (
        4242,
        "bash",
        "0",
        "execve",
    )
    assert (
        ev["event.action"] == "executed" and ev["tags"] == ["exec"] and ev["@timestamp"] == "2025-11-28T00:00:00.123Z"
    )
    assert syscall_line(line.replace('comm="bash"', 'comm="ba sh"')) is None  # a space in a value: general path
    assert syscall_line(line.replace(" key=", " per=1 key=")) is None


if __name__ == "__main__":
    print(corpus_dump())
