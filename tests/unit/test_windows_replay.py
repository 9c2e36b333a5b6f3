"""The shared EVTX attack samples, as forwarders send them, through the production normaliser and the
SigmaHQ Windows rules + province rules: every record normalises, the forwarder's shape does not
change what is detected, and the per-tactic figures (README, `python -m tests.winforward`) do not
fall. 'Fitting' (tests/winforward.py): an alert from a rule tagged with the folder's ATT&CK tactic
(Defense Evasion also as v18's stealth / defense-impairment); for AutomatedTestingTools and Other,
any alert of level medium or above."""

from __future__ import annotations

import pytest

from tests.winforward import SAMPLES, WINDOWS_RULES, detections_per_file, figures, forwarded_lines, sample_files

pytest.importorskip("evtx")
pytestmark = pytest.mark.skipif(
    not SAMPLES.is_dir() or not WINDOWS_RULES.is_dir(), reason="../shared EVTX samples or SigmaHQ rules missing"
)

# Files with a fitting alert per folder, all splits, as measured (README table): a floor, not a target
FLOOR = {
    "AutomatedTestingTools": 7,
    "Command and Control": 2,
    "Credential Access": 20,
    "Defense Evasion": 17,
    "Discovery": 3,
    "Execution": 17,
    "Lateral Movement": 15,
    "Other": 1,
    "Persistence": 11,
    "Privilege Escalation": 45,
}


@pytest.fixture(scope="module")
def per_file() -> dict:
    return detections_per_file(sample_files(), "nxlog")


def test_every_record_normalises_as_a_windows_event() -> None:
    from detectors.normalise import parse_line

    bad, total = [], 0
    for path in sample_files():
        for shape in ("nxlog", "winlogbeat", "xml"):
            for line in forwarded_lines(path, shape):
                total += 1
                ev = parse_line(line, timezone="UTC")
                if "_socpipe_parse_failure" in ev.get("tags", ()) or not ev.get("event.code"):
                    bad.append((path.name, shape))
                assert ev["event.dataset"].startswith(("windows.", "system.")), ev["event.dataset"]
                assert "winlog.event_id" in ev and "_socpipe_timestamp_invalid" not in ev.get("tags", ())
    assert total > 20000 and not bad, bad[:5]


def test_the_forwarder_shape_does_not_change_the_alerts(per_file: dict) -> None:
    sample = sample_files()[::4]
    for shape in ("winlogbeat", "xml"):
        other = detections_per_file(sample, shape)
        for path in sample:
            assert {d.rule_id for d in other[path]} == {d.rule_id for d in per_file[path]}, (shape, path.name)


def test_per_folder_figures_do_not_fall(per_file: dict) -> None:
    got = figures(per_file)
    assert set(got) == set(FLOOR)
    low = {k: (got[k].fitting, FLOOR[k]) for k in FLOOR if got[k].fitting < FLOOR[k]}
    assert not low, low
