"""The dead-letter topic read back (pipeline.worker.dead_letters, `socpipe detect dead-letters list`):
each kind the worker writes is recognised and summarised, filters and the latest-N cut, the growth of an
`episode_growth` letter read back exactly as the worker held it, and garbled or forged letters refused
with a reason, one letter at a time (pipeline.worker.replay with fakes for Elasticsearch; the real one
in tests/integration/test_dead_letters_replay.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from collectors import wire
from detectors.alerts.plan import BatchEpisode, Offer
from detectors.anomaly.finding import AnomalyFinding
from detectors.sigma.detection import make_detection
from detectors.sigma.model import RuleMeta
from pipeline.cli import main
from pipeline.elastic.episodes import EpisodeWriter
from pipeline.worker.dead_letters import DeadLetter, LetterError, growth_of, letter_row, select_rows
from pipeline.worker.episode_sink import GIVEN_UP_REASON, EpisodeSink, GivenUp
from pipeline.worker.replay import GrowthReplay
from tests.unit.test_alerts_build import _finding

T0 = 1_795_000_000.0
META = RuleMeta(id="00000000-0000-4000-8000-000000000001", title="Failed SSH login", level="low", tags=[])


def offers(n: int, first: int = 0, ip: str = "198.51.100.9") -> list[Offer]:
    out = []
    for i in range(first, first + n):
        ev = {"@timestamp": "2026-11-19T08:00:00.000Z", "source.ip": ip, "user.name": f"u{i}"}
        det = make_detection(META, "single", {"source.ip": ip}, [T0 + i] * 2, [ev], 1, T0, identity=i)
        out.append(Offer.of(det, "corr/0", i))
    return out


def anomaly() -> AnomalyFinding:
    return _finding(start_ts=T0, end_ts=T0 + 60, evidence=[{"source.ip": "198.51.100.4"}])


def letter(
    value: bytes | None, reason: str = GIVEN_UP_REASON, offset: int = 0, ms: int = 1_795_000_000_000
) -> DeadLetter:
    return DeadLetter(0, offset, ms, [("reason", reason.encode())], value)


def growth_letter(
    n: int = 3, alert: tuple[str, str] | None = ("p-alerts-2026.11.19", "a1"), ip: str = "198.51.100.9"
) -> bytes:
    got = offers(n, ip=ip)
    return GivenUp(got[0].dedup_key, alert, got).letters()[0]


def test_each_kind_is_recognised_and_summarised() -> None:
    rows = [
        letter_row(letter(growth_letter(), offset=1)),
        letter_row(letter(wire.encode(offers(1)[0].item.to_dict()), "cannot build alert: bad", 2)),
        letter_row(letter(wire.encode(anomaly().to_dict()), "elasticsearch rejected alert: mapper", 3)),
        letter_row(
            letter(
                b'{"@timestamp":"2026-11-19T08:00:00Z","event.dataset":"system.auth"}',
                "elasticsearch rejected event: x",
                4,
            )
        ),
        letter_row(letter(b"\x00\xff", "undecodable correlation input at 3@17: bad", 5)),
        letter_row(letter(b"[1, 2]", "something", 6)),
        letter_row(letter(b"not json", "", 7)),
        letter_row(letter(None, "", 8)),
    ]
    assert [r["kind"] for r in rows] == [
        "episode_growth",
        "finding",
        "finding",
        "event",
        "correlation_input",
        "other",
        "unreadable",
        "unreadable",
    ]
    assert rows[0]["summary"].startswith("3 detection(s) of Failed SSH login for alert a1 part 1/1, key ")
    assert rows[0]["alert_id"] == "a1" and rows[0]["time"] == "2026-11-18T11:06:40.000Z"
    assert rows[1]["summary"].startswith("rule Failed SSH login (single, 1 event(s) from 2026-11-18T11:06:40")
    assert rows[1]["alert_id"] == offers(1)[0].item.alert_id
    assert rows[2]["summary"].startswith("model auth-rate entity ") and rows[2]["alert_id"] == "f-1"
    assert rows[3]["summary"] == "event system.auth at 2026-11-19T08:00:00Z host ?"
    assert rows[4]["summary"] == "2 bytes, undecodable" and rows[4]["partition"] == 0 and rows[4]["offset"] == 5
    assert rows[6]["summary"] == "8 bytes, not JSON" and rows[7]["bytes"] == 0


def test_a_growth_letter_of_no_alert_and_hostile_fields_is_summarised_not_trusted() -> None:
    row = letter_row(letter(growth_letter(alert=None)))
    assert "for alert (none named: open alert of its key)" in row["summary"]
    forged = {"kind": "episode_growth", "alert": "x", "detections": {"a": 1}, "part": [1], "dedup_key": {"k": 1}}
    row = letter_row(letter(json.dumps(forged).encode()))
    assert row["kind"] == "episode_growth" and row["summary"].startswith("0 detection(s) of ? for alert (none")


def test_select_by_reason_or_its_start_and_kind_latest_last() -> None:
    rows = [
        {
            "time": "2026-11-19T08:00:02.000Z",
            "partition": 0,
            "offset": 2,
            "reason": "cannot build alert: x",
            "kind": "finding",
        },
        {
            "time": "2026-11-19T08:00:01.000Z",
            "partition": 1,
            "offset": 0,
            "reason": GIVEN_UP_REASON,
            "kind": "episode_growth",
        },
        {
            "time": "2026-11-19T08:00:03.000Z",
            "partition": 0,
            "offset": 3,
            "reason": "cannot build alert: y",
            "kind": "finding",
        },
    ]
    assert [r["offset"] for r in select_rows(rows, reason=None, kind=None, limit=10)] == [0, 2, 3]
    assert [r["offset"] for r in select_rows(rows, reason="cannot build alert", kind=None, limit=10)] == [2, 3]
    assert [r["offset"] for r in select_rows(rows, reason=None, kind="finding", limit=1)] == [3]
    assert select_rows(rows, reason=GIVEN_UP_REASON, kind="finding", limit=10) == []


def test_a_growth_letter_reads_back_as_the_worker_held_it() -> None:
    held = offers(4) + [Offer.of(anomaly(), None, -1)]
    held[-1] = Offer(anomaly(), held[0].dedup_key, T0, T0 + 60, 44, anomaly().evidence)  # one key per letter
    for part in GivenUp(held[0].dedup_key, ("p-alerts-x", "a1"), held[:4]).letters(max_bytes=400):
        g = growth_of(letter(part))
        assert g.key == held[0].dedup_key and g.alert == ("p-alerts-x", "a1") and g.parts == 4
        o = g.offers[0]
        want = held[g.part - 1]
        assert (o.alert_id, o.dedup_key, o.first_ts, o.last_ts, o.count, o.evidence, o.source, o.offset) == (
            want.alert_id,
            want.dedup_key,
            want.first_ts,
            want.last_ts,
            want.count,
            want.evidence,
            want.source,
            want.offset,
        )
        assert o.item.to_dict() == want.item.to_dict()
    f = anomaly()
    fl = GivenUp(f.dedup_key, None, [Offer.of(f, None, -1)]).letters()[0]
    back = growth_of(letter(fl)).offers[0]
    assert back.item.to_dict() == f.to_dict() and back.alert_id == "f-1" and back.count == 44


def _garbled(**change: Any) -> bytes:
    doc = json.loads(growth_letter(2))
    for k, v in change.items():
        if v is KeyError:
            doc.pop(k)
        else:
            doc[k] = v
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"\xff\xfe", "not a JSON object"),
        (b"[]", "JSON, but not an object"),
        (_garbled(kind="finding"), "kind 'finding', not episode_growth"),
        (_garbled(dedup_key=KeyError), "no dedup_key"),
        (_garbled(alert={"index": 3, "id": "a"}), "alert is neither null nor {index, id} strings"),
        (_garbled(part=3, parts=2), "part 3 of 2 is not a part number"),
        (_garbled(detections=[]), "no detections"),
        (_garbled(detections=[7]), "detection 1: not an object"),
        (_garbled(detections=[{"detection": {"finding_id": "f"}}]), "detection 1: finding 'f': "),
        (_garbled(detections=[{"detection": {"rule_id": "r"}}]), "detection 1: neither a detection"),
        (
            _garbled(detections=[{"detection": {"detection_id": "d", "rule_id": "r"}}]),
            "detection 1: detection 'd' has no",
        ),
    ],
)
def test_a_garbled_growth_letter_is_refused_with_a_reason(value: bytes, message: str) -> None:
    with pytest.raises(LetterError) as err:
        growth_of(letter(value))
    assert str(err.value).startswith(message), str(err.value)


def test_a_detection_of_another_key_or_a_forged_record_is_refused() -> None:
    doc = json.loads(growth_letter(2))
    doc["detections"][1]["detection"]["dedup_key"] = "other"
    with pytest.raises(LetterError, match="detection 2: its dedup key is not the letter's"):
        growth_of(letter(json.dumps(doc).encode()))
    doc = json.loads(growth_letter(2))
    doc["detections"][0]["record"] = {"source": "corr/0", "offset": "12"}
    with pytest.raises(LetterError, match="detection 1: record is not"):
        growth_of(letter(json.dumps(doc).encode()))
    doc = json.loads(growth_letter(2))
    doc["detections"][0]["detection"]["count"] = True
    with pytest.raises(LetterError, match="count is bool"):
        growth_of(letter(json.dumps(doc).encode()))


class FakeWriter(EpisodeWriter):
    """No Elasticsearch: every alert `unmerged` asks for is at 5 detections and lacks every offer."""

    def __init__(self) -> None:
        self.quiet_s, self.max_span_s = 900.0, 86400.0
        self.targets: dict[str, tuple[str, str]] = {}
        self.keys: dict[tuple[str, str], str] = {}  # the dedup key of each alert there is (none: gone)

    def key_of(self, target: tuple[str, str]) -> str | None:
        return self.keys.get(target)

    def remember_target(self, key: str, target: tuple[str, str]) -> None:
        self.targets[key] = target

    def find_open_many(self, batches: list[BatchEpisode]) -> list[tuple[str, str] | None]:
        return [self.targets.get(b.key) for b in batches]

    def unmerged(self, batch: BatchEpisode, target: tuple[str, str]) -> tuple[dict[str, Any], list[Offer]] | None:
        return {"socpipe": {"episode": {"detections": 5}}}, list(batch.offers)


def test_a_dry_run_goes_on_past_garbled_forged_and_other_letters() -> None:
    sink = EpisodeSink.__new__(EpisodeSink)
    sink.episodes = FakeWriter()
    letters = [
        letter(b'{"kind":"episode_growth"', offset=1),  # cut short
        letter(growth_letter(2, alert=(".security-7", "a1")), offset=2),  # names an index not an alert index
        letter(wire.encode(offers(1)[0].item.to_dict()), "cannot build alert: x", offset=3),
        letter(growth_letter(3), offset=4),
        letter(growth_letter(3, alert=None, ip="198.51.100.10"), offset=5),
    ]
    rows = GrowthReplay(sink, "p-alerts-", lambda: []).run(letters, apply=False)
    got = [(r.letters, r.outcome) for r in rows]
    assert got == [
        (["0:1"], "error"),
        (["0:2"], "error"),
        (["0:3"], "skipped"),
        (["0:4"], "would-merge"),
        (["0:5"], "would-create"),
    ], got
    assert rows[0].message == "cannot replay: not a JSON object"
    assert rows[1].message == "cannot replay: names index '.security-7', not one of p-alerts-*"
    assert rows[2].message.startswith("kind finding: listed, not replayed")
    assert rows[3].message == "would add 3 of 3 detection(s) to alert a1 (now 5)"
    assert rows[4].message.startswith("no open alert continues this episode: would create alert ")
    assert [r.failed for r in rows] == [True, True, False, False, False]


def test_the_list_command_prints_a_clean_table_and_json(monkeypatch: pytest.MonkeyPatch) -> None:
    hostile = "elasticsearch rejected alert: \x1b]0;owned\x07\u202e"
    letters = [letter(growth_letter(), offset=1), letter(b"x", hostile, offset=2, ms=1_795_000_001_000)]
    monkeypatch.setattr("pipeline.cli.dead_letters._read", lambda cfg, since, tail: letters)
    runner = CliRunner()
    table = runner.invoke(main, ["detect", "dead-letters", "list"])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split() == ["TIME", "AT", "KIND", "REASON", "SUMMARY"]
    assert lines[1].split()[:10] == ["2026-11-18T11:06:40.000Z", "0:1", "episode_growth", *GIVEN_UP_REASON.split(), "3"]
    assert "\x1b" not in table.output and "\u202e" not in table.output and "rejected alert: \\x1" in table.output
    js = runner.invoke(main, ["detect", "dead-letters", "list", "--json", "--kind", "unreadable"])
    assert [json.loads(x)["reason"] for x in js.output.splitlines()] == [hostile]
    assert "\u202e" not in js.output
    none = runner.invoke(main, ["detect", "dead-letters", "list", "--reason", "nope"])
    assert none.output == "no dead letters in socpipe.deadletter with reason nope\n"
    bad = runner.invoke(main, ["detect", "dead-letters", "list", "--since", "yesterday"])
    assert bad.exit_code == 2 and "not a time" in bad.output


def test_the_parts_of_one_alert_are_replayed_together_and_a_missing_part_is_named() -> None:
    sink = EpisodeSink.__new__(EpisodeSink)
    sink.episodes = FakeWriter()
    held = offers(6)
    parts = GivenUp(held[0].dedup_key, ("p-alerts-x", "a1"), held).letters(max_bytes=700)
    assert len(parts) == 6
    letters = [letter(p, offset=i) for i, p in enumerate(parts) if i != 2]  # part 3 not read (e.g. --at)
    rows = GrowthReplay(sink, "p-alerts-", lambda: []).run(letters, apply=False)
    assert len(rows) == 1 and rows[0].letters == ["0:0", "0:1", "0:3", "0:4", "0:5"]
    assert rows[0].message == "would add 5 of 5 detection(s) to alert a1 (now 5) (parts 3 not among the letters read)"


def test_elasticsearch_failing_for_one_alert_is_that_row_s_retry_and_the_rest_go_on() -> None:
    class Failing(FakeWriter):
        def find_open_many(self, batches: list[BatchEpisode]) -> list[tuple[str, str] | None]:
            if batches[0].key == offers(1)[0].dedup_key:
                raise ConnectionError("connection refused")
            return super().find_open_many(batches)

    sink = EpisodeSink.__new__(EpisodeSink)
    sink.episodes = Failing()
    letters = [letter(growth_letter(2), offset=1), letter(growth_letter(2, ip="198.51.100.10"), offset=2)]
    rows = GrowthReplay(sink, "p-alerts-", lambda: []).run(letters, apply=False)
    assert [(r.outcome, r.failed) for r in rows] == [("retry", True), ("would-merge", False)]
    assert rows[0].message == "Elasticsearch failed (ConnectionError: connection refused): run the replay again"


def test_a_letter_naming_an_alert_of_another_key_is_refused() -> None:
    """A forged letter: its detections are of one key (each checked against the letter's), the alert it
    names is another key's; merged, they would grow an unrelated alert (find_open checks the episode's
    times only)."""
    writer = FakeWriter()
    other = offers(1, ip="198.51.100.77")[0].dedup_key
    writer.keys[("p-alerts-2026.11.19", "a1")] = other
    writer.keys[("p-alerts-2026.11.19", "a2")] = offers(1, ip="198.51.100.10")[0].dedup_key
    sink = EpisodeSink.__new__(EpisodeSink)
    sink.episodes = writer
    letters = [
        letter(growth_letter(3), offset=1),
        letter(growth_letter(2, alert=("p-alerts-2026.11.19", "a2"), ip="198.51.100.10"), offset=2),
    ]
    rows = GrowthReplay(sink, "p-alerts-", lambda: []).run(letters, apply=False)
    assert [(r.letters, r.outcome) for r in rows] == [(["0:1"], "error"), (["0:2"], "would-merge")]
    assert rows[0].message.startswith("cannot replay: names alert 'a1', which is of another dedup key ("), rows[0]
    assert other[:60] in rows[0].message
    assert offers(1, ip="198.51.100.77")[0].dedup_key not in writer.targets  # never taken as a target


def test_a_detection_in_two_letters_is_counted_once() -> None:
    """The same letter twice on the topic (or a part sent again): one alert's detections merged once."""
    sink = EpisodeSink.__new__(EpisodeSink)
    sink.episodes = FakeWriter()
    same = growth_letter(3)
    rows = GrowthReplay(sink, "p-alerts-", lambda: []).run([letter(same, offset=1), letter(same, offset=2)], False)
    assert len(rows) == 1 and rows[0].letters == ["0:1", "0:2"]
    assert (rows[0].detections, rows[0].added) == (3, 3), rows[0]
    assert rows[0].message == "would add 3 of 3 detection(s) to alert a1 (now 5)"


def test_a_letter_nested_too_deeply_is_its_row_s_error_and_the_replay_goes_on() -> None:
    """JSON reads nesting ~1000 deep; copying a detection's evidence recursed out of the stack well
    before (RecursionError ended the whole replay with a traceback)."""
    doc = json.loads(growth_letter(2))
    deep: list[Any] = []
    cur = deep
    for _ in range(700):
        cur.append([])
        cur = cur[0]
    doc["detections"][1]["detection"]["evidence"] = [{"x": deep}]
    hostile = json.dumps(doc).encode()
    with pytest.raises(LetterError, match="detection 2: nested too deeply"):
        growth_of(letter(hostile))
    sink = EpisodeSink.__new__(EpisodeSink)
    sink.episodes = FakeWriter()
    rows = GrowthReplay(sink, "p-alerts-", lambda: []).run(
        [letter(hostile, offset=1), letter(growth_letter(2, ip="198.51.100.10"), offset=2)], apply=False
    )
    assert [(r.letters, r.outcome) for r in rows] == [(["0:1"], "error"), (["0:2"], "would-merge")]


@pytest.mark.parametrize("ts", [-1e308, 2**70, 1e300, "NaN"])
def test_a_detection_time_no_date_can_be_is_refused(ts: Any) -> None:
    """A forged end_ts the alert's dates (iso_ms) cannot render raised ValueError in the open-alert query,
    outside the row's handling: the whole replay ended with a traceback."""
    doc = json.loads(growth_letter(2))
    doc["detections"][0]["detection"]["end_ts"] = float("nan") if ts == "NaN" else ts
    with pytest.raises(LetterError, match="detection 1: time .* is not an epoch time between 1970 and 5138"):
        growth_of(letter(json.dumps(doc).encode()))


def test_a_model_finding_whose_evidence_is_not_events_is_refused() -> None:
    """As a detection's: building the alert reads each evidence item as an event (AttributeError on an
    int, outside every row's handling: the replay ended with a traceback, dry run or not)."""
    found = Offer.of(anomaly(), "corr/0", 5)
    doc = json.loads(GivenUp(found.dedup_key, None, [found]).letters()[0])
    doc["detections"][0]["detection"]["evidence"] = [{"source.ip": "198.51.100.4"}, 1]
    with pytest.raises(LetterError, match="detection 1: finding .*: evidence holds something other than events"):
        growth_of(letter(json.dumps(doc).encode()))


def test_a_forged_part_count_is_refused_and_missing_parts_are_named_briefly() -> None:
    """parts 10**12 was accepted: the replay then built the set of every part number (memory without
    end). At most MAX_PARTS; the missing ones of a real count are named, the first ten and how many."""
    doc = json.loads(growth_letter(1))
    doc["parts"] = 10**12
    with pytest.raises(LetterError, match=r"part 1 of 1000000000 is not a part number \(at most 100000\)"):
        growth_of(letter(json.dumps(doc).encode()))
    doc["parts"] = 40
    sink = EpisodeSink.__new__(EpisodeSink)
    sink.episodes = FakeWriter()
    (row,) = GrowthReplay(sink, "p-alerts-", lambda: []).run([letter(json.dumps(doc).encode())], apply=False)
    assert row.message.endswith("(parts 2,3,4,5,6,7,8,9,10,11,... (39 parts) not among the letters read)"), row


def test_a_record_kafka_does_not_have_is_refused() -> None:
    """A forged record offset (past the partition's end, or of a partition that does not exist) merged
    would make the alert take that partition's records up to it for merged already: refused."""
    asked: list[set[str]] = []

    def ends(sources: set[str]) -> dict[str, int]:
        asked.append(sources)
        return {"corr/0": 3}

    sink = EpisodeSink.__new__(EpisodeSink)
    sink.episodes = FakeWriter()
    far = json.loads(growth_letter(3, ip="198.51.100.10"))
    far["detections"][1]["record"]["offset"] = 2**62
    elsewhere = json.loads(growth_letter(1, ip="198.51.100.11"))
    elsewhere["detections"][0]["record"]["source"] = "raw/7"
    letters = [
        letter(growth_letter(3), offset=1),
        letter(json.dumps(far).encode(), offset=2),
        letter(json.dumps(elsewhere).encode(), offset=3),
    ]
    rows = GrowthReplay(sink, "p-alerts-", lambda: [], record_ends=ends).run(letters, apply=False)
    assert asked == [{"corr/0", "raw/7"}]
    assert [(r.letters, r.outcome) for r in rows] == [(["0:2"], "error"), (["0:3"], "error"), (["0:1"], "would-merge")]
    assert rows[0].message == f"cannot replay: a detection's record corr/0@{2**62} is not one Kafka has (end offset 3)"
    assert rows[1].message == "cannot replay: a detection's record raw/7@0 is not one Kafka has (no such partition)"


def test_a_record_timestamp_no_date_can_be_is_shown_as_its_number(monkeypatch: pytest.MonkeyPatch) -> None:
    """A producer may set any 64-bit CreateTime: one such letter (or quarantined record) ended the whole
    listing with 'year 146140482 is out of range'."""
    from pipeline.worker.intake import quarantine_row

    odd = DeadLetter(0, 2, 2**62, [("reason", b"x")], b"{}")
    assert letter_row(odd)["time"] == f"{2**62} ms"
    assert quarantine_row(-(2**62), b"a|b|c", [], b"")["time"] == f"{-(2**62)} ms"
    monkeypatch.setattr(
        "pipeline.cli.dead_letters._read", lambda cfg, since, tail: [letter(growth_letter(), offset=1), odd]
    )
    res = CliRunner().invoke(main, ["detect", "dead-letters", "list"])
    assert res.exit_code == 0 and f"{2**62} ms" in res.output, res.output
