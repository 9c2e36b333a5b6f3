from pipeline.coverage.inventory import parse_inventory
from pipeline.coverage.state import (
    AGENT_DOWN,
    DECOMMISSIONED,
    DEGRADED,
    MONITORED,
    NEVER_SEEN,
    CoverageTracker,
    Thresholds,
)

T0 = 1_800_000_000.0


def inventory(*entries):
    return parse_inventory({"agencies": list(entries)})


def ag(agency_id, sources=None, **extra):
    d = {"id": agency_id, "name": agency_id.upper(), "tier": "commune", **extra}
    if sources is not None:
        d["sources"] = sources
    return d


AUTH = {"name": "auth", "path": "/var/log/auth.log", "silent_after": "10m"}
MAIL = {"name": "mail", "path": "/var/log/mail.log", "silent_after": "8h"}


def hb(tr, agency_id, agent_id, now, shipped=None, spool=0, host="h"):
    tr.observe_heartbeat(
        agency_id=agency_id,
        agent_id=agent_id,
        host=host,
        version="1.0",
        spool_bytes=spool,
        shipped=shipped or {},
        now=now,
    )


def states(snap):
    return {a.id: a.state for a in snap.agencies}


def test_the_five_states():
    inv = inventory(
        ag("a", [AUTH]), ag("b", [AUTH]), ag("c", [AUTH]), ag("d", [AUTH]), ag("e", [AUTH], decommissioned=True)
    )
    tr = CoverageTracker(Thresholds(heartbeat_interval_s=15, missed_heartbeats=3))
    for agency_id in "abc":
        hb(tr, agency_id, f"agt-{agency_id}", T0)
        tr.observe_events(agency_id=agency_id, agent_id=f"agt-{agency_id}", source="/var/log/auth.log", now=T0)
    hb(tr, "a", "agt-a", T0 + 50)  # a keeps beating; b stops; c beats but its source stops
    hb(tr, "c", "agt-c", T0 + 50)
    snap = tr.evaluate(inv, T0 + 50)
    assert states(snap) == {"a": MONITORED, "b": AGENT_DOWN, "c": MONITORED, "d": NEVER_SEEN, "e": DECOMMISSIONED}
    hb(tr, "a", "agt-a", T0 + 700)
    hb(tr, "c", "agt-c", T0 + 700)
    tr.observe_events(agency_id="a", agent_id="agt-a", source="/var/log/auth.log", now=T0 + 690)
    snap = tr.evaluate(inv, T0 + 700)
    assert states(snap)["a"] == MONITORED and states(snap)["c"] == DEGRADED
    c = next(x for x in snap.agencies if x.id == "c")
    assert c.silent_sources == ["auth"] and "source auth silent" in c.reasons
    assert snap.ratio() == 0.25  # 1 of 4 counted (e is decommissioned)


def test_agent_down_exactly_after_three_missed_intervals():
    inv = inventory(ag("a"))
    tr = CoverageTracker(Thresholds(heartbeat_interval_s=15, missed_heartbeats=3))
    hb(tr, "a", "agt", T0)
    tr.observe_events(agency_id="a", agent_id="agt", source="/x", now=T0)
    assert states(tr.evaluate(inv, T0 + 45)) == {"a": MONITORED}
    assert states(tr.evaluate(inv, T0 + 45.5)) == {"a": AGENT_DOWN}


def test_every_expected_source_must_deliver_and_thresholds_are_per_source():
    inv = inventory(ag("a", [AUTH, MAIL]))
    tr = CoverageTracker()
    hb(tr, "a", "agt", T0)
    tr.observe_events(agency_id="a", agent_id="agt", source="/var/log/auth.log", now=T0)
    snap = tr.evaluate(inv, T0 + 1)
    assert states(snap) == {"a": DEGRADED}
    assert {s.name: s.state for s in snap.agencies[0].sources} == {"auth": MONITORED, "mail": NEVER_SEEN}
    tr.observe_events(agency_id="a", agent_id="agt", source="/var/log/mail.log", now=T0)
    # 2 hours later: the quiet-at-night mail log (8h) still counts, auth (10m) does not
    hb(tr, "a", "agt", T0 + 7200)
    snap = tr.evaluate(inv, T0 + 7200)
    assert {s.name: s.state for s in snap.agencies[0].sources} == {"auth": DEGRADED, "mail": MONITORED}


def test_any_source_semantics_when_none_listed():
    inv = inventory(ag("a"))
    tr = CoverageTracker(Thresholds(source_silent_after_s=300))
    hb(tr, "a", "agt", T0)
    assert states(tr.evaluate(inv, T0)) == {"a": DEGRADED}  # alive, but nothing delivered yet
    tr.observe_events(agency_id="a", agent_id="agt", source="/var/log/whatever.log", now=T0)
    assert states(tr.evaluate(inv, T0 + 1)) == {"a": MONITORED}
    hb(tr, "a", "agt", T0 + 301)
    assert states(tr.evaluate(inv, T0 + 301)) == {"a": DEGRADED}


def test_lines_shipped_growth_in_heartbeats_counts_as_delivery():
    inv = inventory(ag("a", [AUTH]))
    tr = CoverageTracker()
    hb(tr, "a", "agt", T0, shipped={"/var/log/auth.log": 10})
    assert states(tr.evaluate(inv, T0)) == {"a": DEGRADED}  # first report is a baseline, not a delivery
    hb(tr, "a", "agt", T0 + 15, shipped={"/var/log/auth.log": 10})
    assert states(tr.evaluate(inv, T0 + 15)) == {"a": DEGRADED}  # no growth: not delivering
    hb(tr, "a", "agt", T0 + 30, shipped={"/var/log/auth.log": 12})
    assert states(tr.evaluate(inv, T0 + 30)) == {"a": MONITORED}


def test_spooling_for_long_degrades():
    inv = inventory(ag("a"))
    tr = CoverageTracker(Thresholds(spooling_after_s=120))
    tr.observe_events(agency_id="a", agent_id="agt", source="/x", now=T0)
    hb(tr, "a", "agt", T0, spool=1000)
    tr.observe_events(agency_id="a", agent_id="agt", source="/x", now=T0 + 119)
    hb(tr, "a", "agt", T0 + 119, spool=5000)
    assert states(tr.evaluate(inv, T0 + 119)) == {"a": MONITORED}
    hb(tr, "a", "agt", T0 + 121, spool=9000)
    snap = tr.evaluate(inv, T0 + 121)
    assert states(snap) == {"a": DEGRADED} and "spooling" in snap.agencies[0].reasons[0]
    hb(tr, "a", "agt", T0 + 130, spool=0)
    assert states(tr.evaluate(inv, T0 + 130)) == {"a": MONITORED}


def test_one_alive_agent_is_enough_but_sources_on_a_dead_host_go_silent():
    web = {"name": "web", "path": "/var/log/nginx/access.log", "host": "web01", "silent_after": "5m"}
    inv = inventory(ag("a", [AUTH | {"host": "db01"}, web]))
    tr = CoverageTracker(Thresholds(heartbeat_interval_s=15))
    hb(tr, "a", "agt-db", T0, host="db01")
    hb(tr, "a", "agt-web", T0, host="web01")
    tr.observe_events(agency_id="a", agent_id="agt-db", source="/var/log/auth.log", now=T0)
    tr.observe_events(agency_id="a", agent_id="agt-web", source="/var/log/nginx/access.log", now=T0)
    assert states(tr.evaluate(inv, T0)) == {"a": MONITORED}
    hb(tr, "a", "agt-db", T0 + 60, host="db01")
    tr.observe_events(agency_id="a", agent_id="agt-db", source="/var/log/auth.log", now=T0 + 60)
    snap = tr.evaluate(inv, T0 + 60)  # web01's agent is dead: its source does not count
    assert states(snap) == {"a": DEGRADED} and snap.agencies[0].silent_sources == ["web"]


def test_export_import_keeps_never_seen_apart_from_agent_down():
    inv = inventory(ag("a"), ag("b"))
    tr = CoverageTracker()
    hb(tr, "a", "agt", T0)
    restored = CoverageTracker()
    restored.import_state(tr.export_state())
    assert states(restored.evaluate(inv, T0 + 3600)) == {"a": AGENT_DOWN, "b": NEVER_SEEN}


def test_agent_controlled_source_paths_are_bounded():
    from pipeline.coverage.state import MAX_SOURCES_PER_AGENT

    tr = CoverageTracker()
    for i in range(MAX_SOURCES_PER_AGENT + 50):
        tr.observe_events(agency_id="a", agent_id="agt", source=f"/tmp/{i}", now=T0)
    assert len(tr.deliveries) == MAX_SOURCES_PER_AGENT
