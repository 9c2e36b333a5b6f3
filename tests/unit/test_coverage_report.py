import csv
import io
import json
import time

from click.testing import CliRunner
from prometheus_client import CollectorRegistry, generate_latest

from pipeline.coverage.history import HistoryStore, build_report
from pipeline.coverage.inventory import parse_inventory
from pipeline.coverage.metrics import MAX_DATASETS_PER_AGENCY, CoverageCollector, TrafficCounters
from pipeline.coverage.state import CoverageTracker, Thresholds
from pipeline.coverage.status import render_report, render_status, snapshot_to_dict

DAY = 86400.0
T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC
INV = parse_inventory(
    {"agencies": [{"id": f"xa-{c}", "name": f"UBND xã {c.upper()}", "tier": "commune"} for c in "abcd"]}
)


def run_days(store: HistoryStore, t0: float = T0) -> None:
    """Day 1: a, b, c monitored (d never seen). Day 2 at noon: b's agent dies; c dies and comes back."""
    tr = CoverageTracker(Thresholds(heartbeat_interval_s=60, missed_heartbeats=3, source_silent_after_s=3600))
    for step in range(0, int(2 * DAY), 600):
        now = t0 + step
        for agency in "abc":
            dead = (agency == "b" and step >= DAY + 4 * 3600) or (agency == "c" and DAY + 3600 <= step < DAY + 7200)
            if not dead:
                tr.observe_heartbeat(
                    agency_id=f"xa-{agency}",
                    agent_id=f"agt-{agency}",
                    host="h",
                    version="1",
                    spool_bytes=0,
                    shipped={},
                    now=now,
                )
                tr.observe_events(agency_id=f"xa-{agency}", agent_id=f"agt-{agency}", source="/x", now=now)
        snap = tr.evaluate(INV, now + 1)
        store.record_transitions(snap)
        store.record_sample(snap)


def test_report_rows_ratios_and_dropouts(tmp_path):
    store = HistoryStore(tmp_path / "h.db")
    run_days(store)
    rows = build_report(store, T0, T0 + 2 * DAY, tz="UTC")
    assert [r.period for r in rows] == ["2027-01-15", "2027-01-16", "2027-01-17"]
    day1, day2, day3 = rows
    assert day1.ratio_min == 0.75 and day1.ratio_avg == 0.75 and not day1.dropped_out
    # 2027-01-16 starts at T0 + 16h in UTC: b died at T0+28h, c was down T0+25h..T0+26h
    assert day2.ratio_last == 0.5 and day2.ratio_min == 0.5
    assert day2.ratio_avg is not None and 0.5 < day2.ratio_avg < 0.75
    drops = {d.agency_id: d for d in day2.dropped_out}
    assert set(drops) == {"xa-b", "xa-c"} and drops["xa-c"].recovered and not drops["xa-b"].recovered
    assert drops["xa-b"].to_state == "agent_down"
    assert day3.samples > 0
    table = render_report(rows, "table", T0, T0 + 2 * DAY)
    assert "xa-b(agent_down)" in table and "xa-c(agent_down,recovered)" in table
    parsed = list(csv.DictReader(io.StringIO(render_report(rows, "csv", T0, T0 + 2 * DAY))))
    assert parsed[1]["period"] == "2027-01-16" and float(parsed[1]["ratio_min"]) == 0.5
    doc = json.loads(render_report(rows, "json", T0, T0 + 2 * DAY))
    assert doc["periods"][1]["dropped_out"][0]["agency_id"] in {"xa-b", "xa-c"}
    weeks = build_report(store, T0, T0 + 2 * DAY, period="week", tz="UTC")
    assert len(weeks) == 1 and weeks[0].ratio_min == 0.5


def test_transitions_resume_after_a_restart(tmp_path):
    store = HistoryStore(tmp_path / "h.db")
    tr = CoverageTracker()
    snap = tr.evaluate(INV, T0)
    assert store.record_transitions(snap) == 4  # first sight: never_seen for all
    again = HistoryStore(tmp_path / "h.db")
    assert again.record_transitions(tr.evaluate(INV, T0 + 1)) == 0


def test_status_table_sorted_worst_first():
    tr = CoverageTracker(Thresholds(heartbeat_interval_s=15))
    tr.observe_heartbeat(agency_id="xa-a", agent_id="1", host="h", version="1", spool_bytes=0, shipped={}, now=T0 - 100)
    tr.observe_heartbeat(agency_id="xa-b", agent_id="2", host="h", version="1", spool_bytes=0, shipped={}, now=T0)
    tr.observe_events(agency_id="xa-b", agent_id="2", source="/x", now=T0)
    tr.observe_heartbeat(agency_id="xa-c", agent_id="3", host="h", version="1", spool_bytes=0, shipped={}, now=T0)
    text = render_status(snapshot_to_dict(tr.evaluate(INV, T0)), T0 + 5)
    order = [line.split()[0] for line in text.splitlines()[1:5]]
    assert order == ["xa-a", "xa-d", "xa-c", "xa-b"]  # agent_down, never_seen, degraded, monitored
    assert "coverage 1/4 = 25.0%" in text and "WARNING" not in text
    assert "WARNING" in render_status(snapshot_to_dict(tr.evaluate(INV, T0)), T0 + 600)


def test_metrics_exposition_and_bounded_datasets():
    tr = CoverageTracker()
    tr.observe_heartbeat(agency_id="xa-a", agent_id="1", host="h", version="1.2", spool_bytes=0, shipped={}, now=T0)
    tr.observe_events(agency_id="xa-a", agent_id="1", source="/x", now=T0)
    counters = TrafficCounters()
    for i in range(MAX_DATASETS_PER_AGENCY + 20):
        counters.count_events("xa-a", f"ds{i}", 3)
    counters.reject_heartbeat("bad_signature")
    reg = CollectorRegistry()
    snap = tr.evaluate(INV, T0 + 1)
    reg.register(CoverageCollector(lambda: snap, counters, lambda: (2, T0)))
    text = generate_latest(reg).decode()
    assert "socpipe_coverage_ratio 0.25" in text and "socpipe_agencies_total 4.0" in text
    assert 'socpipe_tier_coverage_ratio{tier="commune"} 0.25' in text
    assert 'socpipe_agency_state{agency="xa-a",state="monitored",tier="commune"} 1.0' in text
    assert 'socpipe_agent_versions{version="1.2"} 1.0' in text
    assert 'socpipe_heartbeats_rejected_total{reason="bad_signature"} 1.0' in text
    datasets = {
        line.split('dataset="')[1].split('"')[0]
        for line in text.splitlines()
        if line.startswith("socpipe_events_received_total{")
    }
    assert len(datasets) == MAX_DATASETS_PER_AGENCY + 1 and "other" in datasets
    assert "socpipe_inventory_invalid_entries 2.0" in text


def test_cli_status_and_report_read_the_service_files(tmp_path):
    from pipeline.cli import main

    state = tmp_path / "state"
    store = HistoryStore(state / "history.db")
    run_days(store, time.time() - 3 * DAY)  # the CLI reports up to now
    tr = CoverageTracker()
    (state / "status.json").write_text(json.dumps(snapshot_to_dict(tr.evaluate(INV, T0))))
    cfg = tmp_path / "coverage.yaml"
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("agencies:\n" + "".join(f"  - {{id: xa-{c}, name: x, tier: commune}}\n" for c in "abcd"))
    cfg.write_text(f"state_dir: {state}\nregistry: {tmp_path / 'reg.db'}\ninventory: {inventory}\n")
    r = CliRunner().invoke(main, ["coverage", "status", "--config", str(cfg)])
    assert r.exit_code == 0 and "never_seen" in r.output
    r = CliRunner().invoke(main, ["coverage", "report", "--config", str(cfg), "--since", "7d", "--format", "csv"])
    assert r.exit_code == 0 and r.output.startswith("period,samples") and "xa-b(agent_down)" in r.output
    r = CliRunner().invoke(main, ["agency", "token", "create", "xa-a", "--config", str(cfg)])
    assert r.exit_code == 0 and "spt_" in r.output
    r = CliRunner().invoke(main, ["agency", "token", "create", "xa-z", "--config", str(cfg)])
    assert r.exit_code != 0 and "not in the inventory" in r.output and "spt_" not in r.output
    r = CliRunner().invoke(main, ["agency", "token", "revoke", "xa-a", "--config", str(cfg)])
    assert r.exit_code == 0 and "revoked 1" in r.output
