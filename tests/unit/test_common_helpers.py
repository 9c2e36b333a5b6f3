"""One home each for the small helpers (detectors.common, collectors.wire, collectors.kafka_settings).

The behaviour tests pin what every caller now shares; the tree scan fails when a copy of a helper
(a duration unit table, a severity table, an ISO-Z formatter, the time-zone literal, producer
settings, an age formatter, a token digest, the closing reasons, a lazy-export `__getattr__`) reappears outside its home, naming the file and line.
"""

from __future__ import annotations

import hashlib
import random
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from collectors import wire
from collectors.humanize import ago, size
from collectors.kafka_settings import AGENT_PRODUCER, PRODUCER_BASE, SOC_PRODUCER
from detectors.common import (
    DEFAULT_TIMEZONE,
    KIBANA_SEVERITY,
    SEVERITY,
    Severity,
    iso_ms,
    iso_s,
    parse_duration,
    to_datetime,
    to_epoch,
)
from pipeline.tokens import token_digest

ROOT = Path(__file__).resolve().parents[2]


def test_iso_ms_matches_datetime_formatting_to_the_millisecond() -> None:
    rng = random.Random(7)
    values = [0.0, 1.0, 59.9995, 1780000000.123, 1780000000.9999996, 1780000000.0005, 4102444799.999]
    values += [rng.uniform(0, 4.1e9) for _ in range(20000)]
    for ts in values:
        expected = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        assert iso_ms(ts) == expected, ts


def test_iso_ms_takes_datetimes_and_iso_s_cuts_to_seconds() -> None:
    dt = datetime(2026, 11, 28, 1, 0, 0, 250000, tzinfo=timezone(timedelta(hours=7)))
    assert iso_ms(dt) == "2026-11-27T18:00:00.250Z"
    assert iso_ms(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05.000Z"  # naive means UTC
    assert iso_s(1780000000.9) == "2026-05-28T20:26:40Z"


@pytest.mark.parametrize(
    "value,expected",
    [
        ("2026-05-28T20:26:40.123Z", 1780000000.123),
        ("2026-05-29T03:26:40.123+07:00", 1780000000.123),
        ("2026-05-28T20:26:40", 1780000000.0),  # naive: UTC
        (" 2026-05-28T20:26:40Z ", 1780000000.0),
        (1780000000, 1780000000.0),
        (1780000000.5, 1780000000.5),
        (datetime(2026, 5, 28, 20, 26, 40, tzinfo=UTC), 1780000000.0),
        ("yesterday", None),
        ("", None),
        (None, None),
        (True, None),
        (float("nan"), None),
        ({"a": 1}, None),
    ],
)
def test_to_epoch_reads_every_timestamp_form(value: object, expected: float | None) -> None:
    got = to_epoch(value)
    assert got == pytest.approx(expected) if expected is not None else got is None


def test_to_epoch_memo_reads_text_as_a_fresh_parse_and_stays_bounded() -> None:
    """ISO text read again (the memo) gives what reading it afresh gives, unreadable text included;
    the memo holds short text only and starts again when full."""
    from detectors.common import times

    texts = [f"2026-05-28T20:{m:02d}:{s:02d}.{s * 7:03d}+0{m % 10}:00" for m in range(60) for s in range(60)]
    texts += ["yesterday", "", " 2026-05-28T20:26:40Z ", "2026-05-28T20:26:40" + " " * 60]
    fresh = [times._read_text(t) for t in texts]
    for _ in range(2):
        assert [to_epoch(t) for t in texts] == fresh
    assert 0 < len(times._EPOCHS) <= times._EPOCH_MEMO_ENTRIES
    assert all(len(t) <= times._EPOCH_MEMO_CHARS for t in times._EPOCHS)


def test_to_datetime_is_aware_utc() -> None:
    dt = to_datetime("2026-05-28T20:26:40Z")
    assert dt == datetime(2026, 5, 28, 20, 26, 40, tzinfo=UTC) and dt.tzinfo is not None
    assert to_datetime("nope") is None and to_datetime(1e30) is None


@pytest.mark.parametrize(
    "value,seconds",
    [("90s", 90), ("15m", 900), ("1.5h", 5400), ("2d", 172800), ("1w", 604800), (30, 30), ("45", 45), (" 5 m ", 300)],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "-5m", "0", "0s", "5 weeks", "1h30", "1M", "1y", True, None, -1, float("inf")])
def test_bad_durations_name_the_accepted_form(value: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


def test_one_severity_type_for_rules_and_findings() -> None:
    assert Severity("high") == "high" and Severity.HIGH.score == 73 and Severity.HIGH.kibana == "high"
    assert Severity.INFORMATIONAL.kibana == "low" and Severity.CRITICAL.score == 99
    assert Severity.parse("HIGH") is Severity.HIGH and Severity.parse("bogus") is Severity.MEDIUM
    assert Severity.parse(None, Severity.LOW) is Severity.LOW
    assert set(SEVERITY) == set(KIBANA_SEVERITY) == {s.value for s in Severity}
    assert [SEVERITY[s] for s in Severity] == sorted(SEVERITY.values())  # declared in rising order


def test_wire_encoding_is_compact_utf8_and_round_trips() -> None:
    data = {"b": "Sở Nội vụ", "a": [1, 2.5, None], "t": datetime(2026, 1, 1, tzinfo=UTC)}
    blob = wire.encode(data)
    assert blob.startswith(b'{"b":"S\xe1\xbb\x9f') and b", " not in blob
    assert wire.decode(blob)["t"] == "2026-01-01 00:00:00+00:00"  # what JSON cannot carry becomes text
    assert wire.encode({"b": 1, "a": 2}, sort_keys=True) == b'{"a":2,"b":1}'
    assert DEFAULT_TIMEZONE == wire.DEFAULT_TIMEZONE == "Asia/Ho_Chi_Minh"


def test_every_producer_is_idempotent_with_acks_all() -> None:
    for settings in (AGENT_PRODUCER, SOC_PRODUCER):
        assert {k: settings[k] for k in PRODUCER_BASE} == {
            "acks": "all",
            "enable_idempotence": True,
            "compression_type": "zstd",
        }


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s ago"), (119, "119s ago"), (120, "2m ago"), (7199, "120m ago"), (7200, "2.0h ago"), (172800, "2d ago")],
)
def test_ago(seconds: float, text: str) -> None:
    assert ago(1_000_000 - seconds, 1_000_000) == text


def test_ago_of_nothing_and_of_the_future() -> None:
    assert ago(None, 5.0) == ago(0, 5.0) == "never"
    assert ago(10.0, 5.0) == "0s ago"  # a clock a little ahead is not a negative age


def test_size() -> None:
    assert [size(n) for n in (0, 1023, 1024, 1536 * 1024, 5 * 1024**3, 2048 * 1024**3)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "1.5 MiB",
        "5.0 GiB",
        "2048.0 GiB",
    ]


def test_token_digest_is_the_stored_sha256() -> None:
    assert token_digest("spt_x") == hashlib.sha256(b"spt_x").hexdigest()
    assert token_digest("a") != token_digest("b")


# (pattern, the one file allowed to hold it, what it is)
COPIES = [
    (re.compile(r"[\"']Asia/Ho_Chi_Minh[\"']"), "collectors/timezone.py", "the default time zone literal"),
    (re.compile(r"[\"']h[\"']\s*:\s*3600\b"), "detectors/common/durations.py", "a duration unit table"),
    (re.compile(r"[\"']critical[\"']\s*:\s*99\b"), "detectors/common/severity.py", "a severity table"),
    (re.compile(r"replace\(\s*[\"']\+00:00[\"']\s*,\s*[\"']Z[\"']"), None, "an ISO-Z formatter"),
    (re.compile(r"strftime\(\s*[\"']%Y-%m-%dT%H:%M:%S"), None, "an ISO-Z formatter"),
    (re.compile(r"\bKafkaProducer\(\s*(\*\*|bootstrap|acks)"), "pipeline/kafka_io.py", "producer settings"),
    (re.compile(r"[smhd] ago[\"']"), "collectors/humanize.py", "an age formatter"),
    (re.compile(r"sha256\(\s*token\b"), "pipeline/tokens.py", "a token digest"),
    (
        re.compile(r"[\"']true_positive[\"'],\s*[\"']false_positive"),
        "pipeline/triage/workflow.py",
        "the closing reasons",
    ),
    (re.compile(r"^def __getattr__\("), None, "a lazy-export __getattr__ (use collectors.lazy.lazy_exports)"),
]


def test_no_helper_is_copied_outside_its_home() -> None:
    bad = []
    for top in ("collectors", "detectors", "pipeline"):
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for n, line in enumerate(path.read_text().splitlines(), 1):
                for pattern, home, what in COPIES:
                    if rel != home and pattern.search(line):
                        bad.append(f"{rel}:{n}: {what} (use {home or 'detectors.common / collectors'})")
    assert not bad, "\n".join(bad)
