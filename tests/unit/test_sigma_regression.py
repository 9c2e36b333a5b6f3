"""`socpipe rules regress`: SigmaHQ-style regression samples (a real event per rule, named after the
rule id, an info.yml beside it) through the production normaliser, mappings and engine."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from detectors.sigma.regression import read_samples
from pipeline.cli import main

RULE_ID = "6f0e3c59-7a52-4c59-9b1a-2a7c6a1d5e01"
RULE = f"""title: Whoami Run By A Web Server
id: {RULE_ID}
status: test
logsource: {{product: windows, category: process_creation}}
detection:
  selection:
    Image|endswith: '\\whoami.exe'
    ParentImage|endswith: '\\w3wp.exe'
  condition: selection
level: high
tags: [attack.discovery, attack.t1033]
"""


def sysmon_1(image: str, parent: str) -> dict:
    """A Sysmon process creation as the evtx crate renders an EVTX record (SigmaHQ's sample shape)."""
    return {
        "Event": {
            "#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
            "System": {
                "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}},
                "EventID": 1,
                "Level": 4,
                "TimeCreated": {"#attributes": {"SystemTime": "2026-11-30T10:00:00.000000Z"}},
                "EventRecordID": 7,
                "Channel": "Microsoft-Windows-Sysmon/Operational",
                "Computer": "web01.agency.example",
            },
            "EventData": {
                "ProcessId": 4242,
                "Image": image,
                "CommandLine": image,
                "ParentImage": parent,
                "User": "IIS APPPOOL\\portal",
            },
        }
    }


def sample_tree(tmp: Path, events: list[dict], match_count: int | None = None, ndjson: bool = False) -> Path:
    folder = tmp / "regression_data" / "rules" / "windows" / "process_creation" / "proc_creation_whoami_w3wp"
    folder.mkdir(parents=True)
    name = f"{RULE_ID}.{'ndjson' if ndjson else 'json'}"
    text = "\n".join(json.dumps(e) for e in events) if ndjson else json.dumps(events[0], indent=2)
    (folder / name).write_text(text)
    test: dict[str, object] = {
        "name": "Positive Detection Test",
        "type": "ndjson" if ndjson else "json",
        "path": f"x/{name}",
    }
    if match_count is not None:
        test["match_count"] = match_count
    info = {"id": "0", "rule_metadata": [{"id": RULE_ID, "title": "t"}], "regression_tests_info": [test]}
    (folder / "info.yml").write_text(json.dumps(info))  # JSON is YAML
    return tmp / "regression_data"


def rules_dir(tmp: Path) -> Path:
    d = tmp / "rules"
    d.mkdir(exist_ok=True)
    (d / "whoami_w3wp.yml").write_text(RULE)
    return d


def run(*args: str):
    return CliRunner().invoke(main, ["rules", "regress", *args])


def test_a_rule_fires_on_its_real_event_through_the_normaliser(tmp_path: Path) -> None:
    samples = sample_tree(
        tmp_path, [sysmon_1("C:\\Windows\\System32\\whoami.exe", "C:\\Windows\\System32\\inetsrv\\w3wp.exe")]
    )
    res = run(str(samples), "--rules", str(rules_dir(tmp_path)), "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["counts"] == {"fired": 1, "silent": 0, "unknown-rule": 0, "unreadable": 0}
    assert report["samples"][0]["matches"] == 1


def test_a_silent_rule_fails_and_is_named(tmp_path: Path) -> None:
    samples = sample_tree(tmp_path, [sysmon_1("C:\\Windows\\System32\\whoami.exe", "C:\\Windows\\explorer.exe")])
    res = run(str(samples), "--rules", str(rules_dir(tmp_path)))
    assert res.exit_code == 1
    assert "SILENT" in res.output and "Whoami Run By A Web Server" in res.output
    assert "0 of 1 samples fired their rule" in res.output


def test_match_count_from_info_yml_and_ndjson_samples(tmp_path: Path) -> None:
    hit = sysmon_1("C:\\Windows\\System32\\whoami.exe", "C:\\Windows\\System32\\inetsrv\\w3wp.exe")
    miss = sysmon_1("C:\\Windows\\System32\\hostname.exe", "C:\\Windows\\System32\\inetsrv\\w3wp.exe")
    samples = sample_tree(tmp_path, [hit, miss, hit], match_count=2, ndjson=True)
    (s,) = read_samples([samples])
    assert (s.rule_id, s.expected, len(s.lines)) == (RULE_ID, 2, 3)
    res = run(str(samples), "--rules", str(rules_dir(tmp_path)), "--json")
    assert json.loads(res.output)["samples"][0]["matches"] == 2 and res.exit_code == 0
    # asking for more matches than the events give is a failure
    info = next(samples.rglob("info.yml"))
    info.write_text(info.read_text().replace('"match_count": 2', '"match_count": 3'))
    res = run(str(samples), "--rules", str(rules_dir(tmp_path)), "--json")
    assert res.exit_code == 1 and json.loads(res.output)["counts"]["silent"] == 1


def test_unknown_rules_are_skipped_and_broken_samples_reported(tmp_path: Path) -> None:
    samples = sample_tree(tmp_path, [sysmon_1("C:\\x.exe", "C:\\y.exe")])
    other = samples / "rules" / "windows" / "other" / "some_rule"
    other.mkdir(parents=True)
    (other / "11111111-2222-3333-4444-555555555555.json").write_text(json.dumps(sysmon_1("a", "b")))
    (other.parent / "22222222-2222-3333-4444-555555555555.json").write_text('{"Event": {"System": ')
    res = run(str(samples), "--rules", str(rules_dir(tmp_path)), "--json")
    counts = json.loads(res.output)["counts"]
    assert counts == {"fired": 0, "silent": 1, "unknown-rule": 1, "unreadable": 1}
    assert res.exit_code == 1


def test_records_pretty_printed_back_to_back_are_each_an_event(tmp_path: Path) -> None:
    """`evtx_dump -o json` writes a file's records as pretty JSON objects one after another."""
    hit = sysmon_1("C:\\Windows\\System32\\whoami.exe", "C:\\Windows\\System32\\inetsrv\\w3wp.exe")
    samples = sample_tree(tmp_path, [hit])
    (path,) = samples.rglob("*.json")
    other = sysmon_1("C:\\Windows\\System32\\hostname.exe", "C:\\Windows\\explorer.exe")
    path.write_text(json.dumps(other, indent=2) + "\n" + json.dumps(hit, indent=2) + "\n")
    (s,) = read_samples([samples])
    assert (len(s.lines), s.error) == (2, "")
    res = run(str(samples), "--rules", str(rules_dir(tmp_path)), "--json")
    assert res.exit_code == 0 and json.loads(res.output)["samples"][0]["matches"] == 1
    path.write_text(json.dumps(hit, indent=2) + '\n{"Event": ')  # a truncated second record
    (s,) = read_samples([samples])
    assert s.error.startswith("not JSON or NDJSON")


def test_a_sample_nested_too_deeply_is_that_sample_s_error_and_the_others_run(tmp_path: Path) -> None:
    """Hostile samples: nesting orjson refuses to read (json's decoder then recursed out) or reads but
    will not write back; each is its own 'unreadable' row, never the end of the run."""
    hit = sysmon_1("C:\\Windows\\System32\\whoami.exe", "C:\\Windows\\System32\\inetsrv\\w3wp.exe")
    samples = sample_tree(tmp_path, [hit])
    (path,) = samples.rglob("*.json")
    deep = path.parent.parent / "deep"
    deep.mkdir()
    (deep / "11111111-2222-3333-4444-555555555555.json").write_text("[" * 200_000)
    (deep / "22222222-2222-3333-4444-555555555555.json").write_text('{"Event": ' + "[" * 500 + "]" * 500 + "}")
    got = {s.path.name: s.error for s in read_samples([samples])}
    assert got["11111111-2222-3333-4444-555555555555.json"] == "not JSON or NDJSON: nested too deeply"
    assert got["22222222-2222-3333-4444-555555555555.json"].startswith("a sample record cannot be forwarded:")
    res = run(str(samples), "--rules", str(rules_dir(tmp_path)), "--json")
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    counts = json.loads(res.output)["counts"]
    assert counts == {"fired": 1, "silent": 0, "unknown-rule": 0, "unreadable": 2}, counts


def test_an_info_yml_of_another_shape_is_read_as_naming_nothing(tmp_path: Path) -> None:
    """A hostile or broken info.yml (regression_tests_info a number, rule_metadata not a list): the sample
    is replayed with its file name's rule and one match asked, never a traceback ending the run."""
    hit = sysmon_1("C:\\Windows\\System32\\whoami.exe", "C:\\Windows\\System32\\inetsrv\\w3wp.exe")
    samples = sample_tree(tmp_path, [hit])
    (info,) = samples.rglob("info.yml")
    for text in ("regression_tests_info: 5\n", "rule_metadata: 7\nregression_tests_info: true\n", "- 1\n"):
        info.write_text(text)
        (s,) = read_samples([samples])
        assert (s.rule_id, s.expected, s.error) == (RULE_ID, 1, ""), text
        res = run(str(samples), "--rules", str(rules_dir(tmp_path)), "--json")
        assert res.exit_code == 0 and json.loads(res.output)["counts"]["fired"] == 1, (text, res.output)
