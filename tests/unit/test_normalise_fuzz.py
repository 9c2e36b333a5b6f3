"""Hostile input never raises and never loses a line (property-based)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.wire import LineBatch, LogLine
from detectors.normalise import Normaliser, parse_line
from detectors.normalise.core import MAX_LINE_CHARS

DATASETS = [
    None,
    "system.auth",
    "system.syslog",
    "auditd.log",
    "apache.access",
    "nginx.access",
    "apache.error",
    "nginx.error",
    "iptables.log",
    "app.json",
    "unknown.thing",
]
# Prefixes that steer the generated text into each parser, so the fuzzing reaches past detection.
PREFIXES = [
    "",
    "Jan  1 00:00:00 h sshd[1]: ",
    "<13>1 2024-01-01T00:00:00Z h app 1 - - ",
    "type=SYSCALL msg=audit(1.2:3): ",
    "type=EXECVE msg=audit(99999999999.1:1): argc=9 a0=",
    '1.2.3.4 - - [01/Jan/2024:00:00:00 +0700] "',
    "[Mon Jan 01 00:00:00.1 2024] [x:error] [client ",
    "2024/01/01 00:00:00 [error] 1#1: ",
    "{",
    '{"time": ',
    "Feb 30 25:61:61 h kernel: IN=eth0 OUT= SRC=",
    "Dec 31 23:59:60 9999 h sudo: u : ",
    "node=x type=1300 audit(",
    "Jan  1 00:00:00 h sshd(pam_unix)[1]: authentication failure; rhost=",
    "0000-00-00T99:99:99 h p: ",
]


def check(ev: dict, text) -> None:
    assert isinstance(ev, dict)
    ts = ev["@timestamp"]
    assert isinstance(ts, str) and ts.endswith("Z") and len(ts) == 24, ts
    assert "event.original" in ev and "message" in ev
    json.dumps(ev, default=str)  # serialisable for Kafka/ES
    for key in ("event.category", "event.type", "tags"):
        assert isinstance(ev.get(key, []), list)


@settings(max_examples=1500, deadline=None)
@given(
    prefix=st.sampled_from(PREFIXES),
    body=st.text(max_size=300),
    dataset=st.sampled_from(DATASETS),
    tz=st.sampled_from(["Asia/Ho_Chi_Minh", "UTC", "Not/AZone", ""]),
)
def test_text_never_raises(prefix: str, body: str, dataset, tz: str) -> None:
    text = prefix + body
    check(parse_line(text, dataset=dataset, timezone=tz), text)


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=400), dataset=st.sampled_from(DATASETS))
def test_bytes_never_raise(data: bytes, dataset) -> None:
    ev = parse_line(data, dataset=dataset)
    check(ev, data)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        assert "invalid_utf8" in ev["tags"]


def test_huge_nul_and_empty_lines() -> None:
    huge = "Jan  1 00:00:00 h sshd[1]: Failed password for " + "x" * (2 * MAX_LINE_CHARS) + " from 1.2.3.4 port 1 ssh2"
    ev = parse_line(huge)
    assert "truncated" in ev["tags"] and len(ev["event.original"]) <= MAX_LINE_CHARS
    ev = parse_line("Jan  1 00:00:00 h sshd[1]: Invalid user a\x00b from 1.2.3.4")
    assert "nul_bytes" in ev["tags"] and ev["user.name"] == "ab"
    for empty in ("", "   ", "\n"):
        ev = parse_line(empty, read_at=1700000000.0)
        assert "_socpipe_parse_failure" in ev["tags"] and ev["@timestamp"] == "2023-11-14T22:13:20.000Z"


@settings(max_examples=200, deadline=None)
@given(
    texts=st.lists(st.sampled_from(PREFIXES).flatmap(lambda p: st.text(max_size=80).map(lambda b: p + b)), max_size=30)
)
def test_batches_keep_every_line(texts: list[str]) -> None:
    """Every non-audit line gives exactly one event; audit records give at most one each."""
    n = Normaliser()
    lines = [
        LogLine(text=t, line_no=i + 1, seq=i + 1, read_at=1.7e9, flags=["x"] if i % 2 else [])
        for i, t in enumerate(texts)
    ]
    events = n.normalise_batch(LineBatch("ag", "agent", "host1", "/var/log/mixed.log", lines)) + n.flush()
    audit_lines = {i + 1 for i, t in enumerate(texts) if _is_audit(t)}
    other_lines = [e["log.file.line"] for e in events if e.get("event.dataset") != "auditd.log"]
    assert sorted(other_lines) == [i + 1 for i in range(len(texts)) if i + 1 not in audit_lines]
    audit_events = [e for e in events if e.get("event.dataset") == "auditd.log"]
    assert {e["log.file.line"] for e in audit_events} <= audit_lines
    assert bool(audit_events) == bool(audit_lines)
    for ev in events:
        check(ev, None)
        assert ev["organization.id"] == "ag" and ev["agent.type"] == "socpipe" and ev["host.name"]


def _is_audit(text: str) -> bool:
    return parse_line(text).get("event.dataset") == "auditd.log"
