"""Loading: bad files never stop the others, errors carry lines; routing; index; suppression."""

import random
from pathlib import Path

import pytest

from detectors.common.times import iso_ms as iso
from detectors.sigma import Engine, Suppressor, load_rules

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SPEC_TESTS = SHARED / "sigma" / "spec" / "tests" / "schema"

GOOD = """title: Good
id: 0a0a0a0a-0000-4000-8000-000000000001
logsource: {product: linux, service: sshd}
detection:
    sel: {message|contains: evil}
    condition: sel
level: high
tags: [attack.t1110]
"""


def test_bad_files_are_reported_with_lines_and_others_load(tmp_path):
    (tmp_path / "good.yml").write_text(GOOD)
    (tmp_path / "broken.yml").write_text("title: x\ndetection: [unclosed\n")
    (tmp_path / "badmod.yml").write_text(GOOD.replace("contains", "containz").replace("01", "02"))
    (tmp_path / "badre.yml").write_text(
        GOOD.replace("message|contains: evil", "message|re: '(a)\\1'").replace("01", "03")
    )
    (tmp_path / "nocond.yml").write_text("title: y\nlogsource: {product: linux}\ndetection:\n    sel: {a: 1}\n")
    res = load_rules([tmp_path])
    assert [r.meta.title for r in res.rules] == ["Good"]
    by_file = {Path(e.path).name: e for e in res.errors}
    assert set(by_file) == {"broken.yml", "badmod.yml", "badre.yml", "nocond.yml"}
    assert by_file["badmod.yml"].line == 5 and "containz" in by_file["badmod.yml"].message
    assert by_file["badre.yml"].line == 5 and "regex" in by_file["badre.yml"].message
    assert by_file["broken.yml"].line >= 2
    assert res.documents == 5


def test_metadata_kept(tmp_path):
    (tmp_path / "good.yml").write_text(GOOD)
    rule = load_rules([tmp_path]).rules[0]
    assert rule.meta.level == "high" and rule.meta.tags == ["attack.t1110"]
    assert rule.meta.id.startswith("0a0a0a0a")


def test_unknown_correlation_reference_is_an_error(tmp_path):
    (tmp_path / "c.yml").write_text(
        "title: c\ncorrelation:\n  type: event_count\n  rules: [nope]\n"
        "  group-by: [x]\n  timespan: 1m\n  condition: {gte: 2}\n"
    )
    res = load_rules([tmp_path])
    assert not res.rules and "unknown rules" in res.errors[0].message


@pytest.mark.skipif(not SPEC_TESTS.is_dir(), reason="../shared/sigma/spec not present")
def test_spec_schema_examples_load(tmp_path):
    res = load_rules([SPEC_TESTS / "rules", SPEC_TESTS / "filter"])
    assert not res.errors and res.loaded == 4
    # correlation examples refer to rules the spec does not ship: with stand-ins they all load
    alone = load_rules([SPEC_TESTS / "correlation"])
    assert alone.documents == 8 and all("unknown rules" in e.message for e in alone.errors)
    refs = sorted(set(_spec_correlation_refs()))
    stubs = tmp_path / "stubs.yml"
    stubs.write_text(
        "\n---\n".join(
            f"title: stub {ref}\n{'id' if '-' in ref and len(ref) == 36 else 'name'}: {ref}\n"
            "logsource: {product: windows}\ndetection:\n  s: {EventID: 1}\n  condition: s\n"
            for ref in refs
        )
    )
    res = load_rules([SPEC_TESTS / "correlation", stubs])
    assert not res.errors, [str(e) for e in res.errors]
    assert sum(1 for r in res.rules if r.kind == "correlation") == 8
    Engine(res.rules)  # and the engine accepts them


def _spec_correlation_refs():
    import yaml

    for f in sorted((SPEC_TESTS / "correlation").glob("*.yml")):
        yield from yaml.safe_load(f.read_text())["correlation"]["rules"]


def test_logsource_routing(tmp_path):
    (tmp_path / "good.yml").write_text(GOOD)
    eng = Engine(load_rules([tmp_path]).rules)
    sshd = {"event.dataset": "system.auth", "process.name": "sshd", "message": "evil"}
    web = {"event.dataset": "apache.access", "message": "evil"}
    assert [r.meta.title for r in eng.matching_rules(sshd)] == ["Good"]
    assert eng.matching_rules(web) == []


def test_field_mapping_for_webserver_rules(tmp_path):
    (tmp_path / "w.yml").write_text("""title: W
logsource: {category: webserver}
detection:
    sel: {cs-method: POST, cs-uri-query|contains: '../', sc-status: 200}
    condition: sel
""")
    eng = Engine(load_rules([tmp_path]).rules)
    hit = {
        "event.dataset": "nginx.access",
        "http.request.method": "POST",
        "url.original": "/a?f=../../etc/passwd",
        "http.response.status_code": 200,
    }
    assert len(eng.matching_rules(hit)) == 1
    assert eng.matching_rules({**hit, "http.response.status_code": 404}) == []


@pytest.mark.skipif(not (SHARED / "sigma" / "rules").is_dir(), reason="SigmaHQ rules absent")
def test_candidate_index_never_loses_a_match():
    """Indexed evaluation == every rule on every event, over events built from rule values."""
    rules = load_rules([SHARED / "sigma" / "rules"]).rules
    eng = Engine(rules)
    rng = random.Random(7)
    words = []
    for r in rules:
        for sel in r.detection.values():
            for item in sel if isinstance(sel, list) else [sel]:
                vals = item.values() if isinstance(item, dict) else [item]
                for v in vals:
                    for x in v if isinstance(v, list) else [v]:
                        if isinstance(x, str):
                            words.append(x.strip("*"))
    datasets = [
        ("system.auth", "sshd"),
        ("system.syslog", "cron"),
        ("auditd.log", None),
        ("apache.access", None),
        ("nginx.access", None),
        ("iptables.log", "kernel"),
    ]
    checked = hits = 0
    for _ in range(1500):
        ds, proc = rng.choice(datasets)
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 3)))
        ev = {
            "event.dataset": ds,
            "message": text,
            "url.original": "/" + text,
            "user_agent.original": text,
            "process.command_line": text,
            "process.executable": text,
            "auditd.log.record_type": rng.choice(["EXECVE", "SYSCALL", "PATH"]),
            "auditd.log.a0": rng.choice(words),
            "http.request.method": rng.choice(["GET", "POST"]),
        }
        if proc:
            ev["process.name"] = proc
        bucket = eng._bucket(ev)
        naive = {r.meta.id for r in bucket.rules if r.match(ev)}
        indexed = {r.meta.id for r in eng.matching_rules(ev)}
        assert indexed == naive, text
        checked += 1
        hits += bool(naive)
    assert hits > 50  # the generated events really exercise matching rules


def _det(eng, t):
    ev = {
        "event.dataset": "system.auth",
        "process.name": "sshd",
        "message": "evil",
        "@timestamp": iso(1_780_000_000 + t),
        "host.name": "h1",
        "log.file.line": t,
    }
    return eng.process(ev)[0]


def test_suppressor_folds_repeats_within_window(tmp_path):
    (tmp_path / "good.yml").write_text(GOOD)
    eng = Engine(load_rules([tmp_path]).rules)
    sup = Suppressor(window=600)
    first = sup.offer(_det(eng, 0))
    second = sup.offer(_det(eng, 100))
    third = sup.offer(_det(eng, 700))
    assert first.action == "new" and second.action == "update" and third.action == "new"
    assert second.alert_id == first.alert_id and second.count == 2
    assert third.alert_id != first.alert_id
    again = Suppressor(window=600)
    again.load_data(sup.to_data())
    assert again.offer(_det(eng, 750)).action == "update"


def test_single_detection_ids_are_deterministic(tmp_path):
    (tmp_path / "good.yml").write_text(GOOD)
    rules = load_rules([tmp_path]).rules
    a, b = _det(Engine(rules), 5), _det(Engine(rules), 5)
    assert a.detection_id == b.detection_id and a.dedup_key == b.dedup_key
    assert _det(Engine(rules), 6).detection_id != a.detection_id


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st

_REPO_RULES = Path(__file__).resolve().parents[2] / "rules"
_FUZZ_ENGINE = Engine(load_rules([_REPO_RULES]).rules)
_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.lists(st.text(max_size=8), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_keys = st.sampled_from(
    [
        "@timestamp",
        "event.dataset",
        "process.name",
        "message",
        "source.ip",
        "user.name",
        "url.original",
        "event.category",
        "organization.id",
        "process.command_line",
        "auditd.paths",
        "destination.port",
        "http.response.status_code",
        "event.outcome",
        "process.args",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["system.auth", "auditd.log", "apache.access", "nginx.error", "iptables.log", None]),
    st.sampled_from(["sshd", "sudo", "su", "kernel", None]),
    st.dictionaries(_keys, _values, max_size=10),
)
def test_hostile_events_never_break_the_engine(dataset, process, event):
    event.setdefault("event.dataset", dataset)
    event.setdefault("process.name", process)
    _FUZZ_ENGINE.process(event)
    _FUZZ_ENGINE.advance(2e9)
