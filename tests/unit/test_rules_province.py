"""The province rule set: every rule loads, has positive and negative tests, and they pass."""

import uuid
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from detectors.sigma import load_rules
from detectors.sigma.testing import coverage_problems, run_tests
from pipeline.cli import main

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "rules"
SHARED = REPO.parent / "shared"


def test_province_rules_load_without_errors():
    res = load_rules([RULES])
    assert not res.errors, [str(e) for e in res.errors]
    assert res.loaded >= 30


_RESULTS = run_tests([RULES])


@pytest.mark.parametrize("case", _RESULTS, ids=lambda c: f"{Path(c.file).stem}::{c.name}")
def test_rule_case(case):
    assert case.passed, case.message


def test_every_rule_file_has_positive_and_negative_cases():
    assert coverage_problems([RULES], _RESULTS) == []
    assert any(c.kind == "sequence" for c in _RESULTS)


def test_every_rule_has_attack_tags_and_level():
    rules = load_rules([RULES]).rules
    inputs = {ref for r in rules for ref in getattr(r, "rules", [])}
    for rule in rules:
        if rule.meta.id in inputs:
            continue  # correlation inputs never alert on their own
        assert any(t.startswith("attack.") for t in rule.meta.tags), rule.meta.title
        assert rule.meta.description, rule.meta.title


def test_every_rule_document_has_its_own_uuid():
    """Each province rule (and correlation) names itself with a UUID written in the file, unique in the
    set: an empty `id:` loads (the loader derives a uuid5 from path and title), so only this notices."""
    seen: dict[str, str] = {}
    for f in sorted(RULES.rglob("*.yml")):
        if f.name.endswith(".tests.yml"):
            continue
        for doc in yaml.safe_load_all(f.read_text(encoding="utf-8")):
            if not isinstance(doc, dict) or "detection" not in doc and "correlation" not in doc:
                continue
            rid = doc.get("id")
            assert rid and str(uuid.UUID(str(rid))) == str(rid).lower(), f"{f.name}: id {rid!r} is not a UUID"
            assert str(rid) not in seen, f"{f.name} and {seen.get(str(rid))} share id {rid}"
            seen[str(rid)] = f.name
    assert len(seen) >= 30


def test_ssh_bruteforce_rule_contract():
    rules = {r.meta.title: r for r in load_rules([RULES / "linux" / "ssh_bruteforce.yml"]).rules}
    bf = rules["SSH Brute Force From One Source"]
    assert bf.meta.level == "high" and bf.group_by == ["source.ip"] and bf.timespan == 60
    assert {"attack.credential_access", "attack.t1110"} <= set(bf.meta.tags)


def test_cli_rules_test_and_lint(tmp_path):
    runner = CliRunner()
    out = runner.invoke(main, ["rules", "test", str(RULES / "linux" / "ssh_bruteforce.yml")])
    assert out.exit_code == 0, out.output
    assert "passed" in out.output
    bad = tmp_path / "bad.yml"
    bad.write_text("title: t\nlogsource: {product: linux}\ndetection:\n  s: {a|nope: 1}\n  condition: s\n")
    out = runner.invoke(main, ["rules", "lint", str(RULES), str(bad)])
    assert out.exit_code == 1 and "bad.yml:4" in out.output and "unknown modifier" in out.output
    out = runner.invoke(main, ["rules", "lint", "--json", str(RULES)])
    assert out.exit_code == 0 and '"errors": []' in out.output


def test_cli_rules_test_fails_on_a_broken_expectation(tmp_path):
    rule = (RULES / "linux" / "ssh_bruteforce.yml").read_text()
    (tmp_path / "r.yml").write_text(rule)
    (tmp_path / "r.tests.yml").write_text(
        "defaults: {event.dataset: system.auth, process.name: sshd}\n"
        "tests:\n  - name: wrong\n    rule: ssh_failed_authentication\n"
        "    event: {message: 'Accepted password for a'}\n    match: true\n"
    )
    out = CliRunner().invoke(main, ["rules", "test", str(tmp_path)])
    assert out.exit_code == 1 and "FAIL" in out.output


def test_cli_scan_outputs_alert_documents(tmp_path):
    pytest.importorskip("detectors.normalise")
    log = tmp_path / "auth.log"
    log.write_text(
        "".join(
            f"Nov 28 01:02:{10 + i:02d} srv sshd[99]: Failed password for root from 203.0.113.9 port 4{i} ssh2\n"
            for i in range(6)
        )
    )
    out = CliRunner().invoke(main, ["scan", "--rules", str(RULES), "--input", str(log), "--agency", "so-tai-chinh"])
    assert out.exit_code == 0, out.output
    import json

    alerts = [json.loads(x) for x in out.stdout.splitlines() if x.startswith("{")]
    assert len(alerts) == 1
    a = alerts[0]
    assert a["rule.name"] == "SSH Brute Force From One Source" and a["source.ip"] == "203.0.113.9"
    assert a["kibana.alert.severity"] == "high" and a["event.severity"] == 73
    # the 6th attempt continues the fired window: the same alert grows (one episode)
    assert [e["log.file.line"] for e in a["socpipe.evidence"]] == [1, 2, 3, 4, 5, 6]
    assert (a["socpipe.episode.events"], a["socpipe.episode.detections"]) == (6, 2)
    assert a["event.start"].endswith("18:02:10.000Z") and a["event.end"].endswith("18:02:15.000Z")
    assert a["organization.id"] == "so-tai-chinh"


@pytest.mark.skipif(not (SHARED / "sigma" / "rules").is_dir(), reason="SigmaHQ rules absent")
def test_all_shared_sigmahq_rules_load():
    paths = [SHARED / "sigma" / d for d in ("rules", "rules-emerging-threats", "rules-threat-hunting")]
    res = load_rules(paths)
    assert res.documents > 500
    assert res.loaded == res.documents, [str(e) for e in res.errors[:10]]


def _windows_test_lines():
    import yaml

    for path in sorted((RULES / "windows").glob("*.tests.yml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8")).get("tests") or []:
            steps = case.get("sequence") or [case]
            for step in steps:
                if "line" in step:
                    yield path.name, case["name"], step["line"]


def test_every_windows_rule_test_line_is_a_forwarded_event():
    """A case whose line is not the JSON (or rendered XML) a forwarder sends is normalised as some
    other log and matches nothing, so a negative case would pass whatever the rule says."""
    import orjson

    bad, seen = [], 0
    for file, name, line in _windows_test_lines():
        seen += 1
        if line.lstrip().startswith("<"):
            continue
        try:
            ok = isinstance(orjson.loads(line), dict)
        except orjson.JSONDecodeError:
            ok = False
        if not ok:
            bad.append(f"{file}: {name}")
    assert seen > 500 and not bad, bad


def _evaluated_on_every_event(need: object) -> bool:
    """As the candidate index reads a rule's atoms (detectors/sigma/index.py: CandidateIndex.build)."""
    return not need or any(kind != "eq" and not text for _, kind, text in need)  # type: ignore[attr-defined]


def test_windows_process_creation_rules_are_indexed():
    """A rule without an atom the candidate index can look up (a value, or a regex literal of three or
    more characters in every branch) is evaluated on every event of its logsource: on every process
    start for process_creation, the busiest Windows logsource. Those rules give their regexes a literal
    guard."""
    slow = []
    for f in sorted((RULES / "windows").glob("*.yml")):
        if f.name.endswith(".tests.yml"):
            continue
        for rule in load_rules([f]).rules:
            if getattr(rule, "logsource", {}).get("category") != "process_creation":
                continue
            if _evaluated_on_every_event(rule.need):
                slow.append(f"{f.stem}: {rule.meta.title}")
    assert slow == []


# Event codes every Windows host logs in bulk: process starts (Sysmon 1, 4688), script blocks (4104),
# pipeline events (800). A rule whose index atoms include one of them (or a channel) is evaluated on
# every such event, however rare what it looks for.
BULK_EVENT_CODES = frozenset({"1", "4688", "4104", "800"})
# correlation inputs that must see every process start of their kind (the join needs each one)
EVERY_PROCESS_START = frozenset({"network_logon_session_process"})


def test_windows_rules_are_not_indexed_on_bulk_event_codes():
    """Any Windows logsource, not only process_creation: a rule that names the event by Channel and
    EventID (product: windows alone) keeps a literal of what it looks for (a regex's alternation, a
    guard) for the candidate index, so it is not evaluated on every process start or script block."""
    slow = []
    for f in sorted((RULES / "windows").glob("*.yml")):
        if f.name.endswith(".tests.yml") or f.stem in EVERY_PROCESS_START:
            continue
        for rule in load_rules([f]).rules:
            need = getattr(rule, "need", None)
            if need is None:
                continue  # a correlation: its inputs are rules checked here
            bulk = sorted(
                f"{fld}={text}"
                for fld, _, text in need
                if fld == "winlog.channel" or (fld == "event.code" and text in BULK_EVENT_CODES)
            )
            if bulk:
                slow.append(f"{f.stem}: {bulk}")
    assert slow == []


def test_ads_execution_is_indexed_by_its_extensions():
    (rule,) = load_rules([RULES / "windows" / "ads_execution.yml"]).rules
    atoms = {text for _, _, text in rule.need}
    assert {".vbs", ".hta", ".exe", ".txt"} <= atoms
