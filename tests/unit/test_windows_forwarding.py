"""Forwarded Windows events at the agent and in coverage: each forwarding computer is its own source
(`winlog-<proto>:<port>/<computer>`), the inventory expects it (`windows_hosts`), and a silent
Windows server degrades its agency."""

from __future__ import annotations

import orjson
import pytest

from collectors.config import SyslogInputConfig
from collectors.listeners import StreamFramer, computer_slug, listener_source_name, windows_computer
from pipeline.coverage.inventory import parse_inventory
from pipeline.coverage.state import DEGRADED, MONITORED, NEVER_SEEN, CoverageTracker
from tests.unit.test_normalise_windows import SHAPES

SEC = ("Security", "Microsoft-Windows-Security-Auditing")


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_computer_is_read_from_every_shape(shape: str) -> None:
    line = SHAPES[shape](*SEC, 4625, {"LogonType": "10"}, host="FS01.Agency.local")
    assert windows_computer(line) == "fs01.agency.local"


@pytest.mark.parametrize(
    "text",
    ["not json", "[1,2]", "{", '{"Hostname": 5}', '{"winlog": {"computer_name": ["x"]}}', "{" * 5000 + "}" * 5000],
)
def test_no_computer_is_empty_never_an_error(text: str) -> None:
    assert windows_computer(text) == ""


def test_computer_names_are_made_safe() -> None:
    assert computer_slug("  ../ETC/passwd\\x  ") == "etc-passwd-x"
    assert len(computer_slug("a" * 500)) == 64


def test_listener_name_and_framing_of_json_events() -> None:
    cfg = SyslogInputConfig(protocol="tcp", port=6514, dataset="windows")
    assert listener_source_name(cfg) == "winlog-tcp:6514"
    assert listener_source_name(SyslogInputConfig(protocol="tcp", port=6514)) == "syslog-tcp:6514"
    a = SHAPES["nxlog"](*SEC, 4625, {"LogonType": "10"})
    b = SHAPES["winlogbeat"](*SEC, 4625, {"LogonType": "3"})
    stream = (a + "\n").encode() + f"{len(b.encode())} {b}".encode()
    framer = StreamFramer(1 << 20)
    got = [raw.decode() for raw, _ in framer.feed(stream[:50]) + framer.feed(stream[50:])]
    assert got == [a, b] and all(orjson.loads(x) for x in got)


INVENTORY: dict = {
    "agencies": [
        {
            "id": "so-tai-chinh",
            "name": "Sở Tài chính",
            "tier": "department",
            "sources": [{"name": "auth", "path": "*auth.log"}],
            "windows_hosts": ["FS01.agency.local", {"host": "DC01", "silent_after": "30m"}],
        }
    ]
}


def test_inventory_windows_hosts_are_expected_sources() -> None:
    inv = parse_inventory(INVENTORY)
    assert not inv.errors
    srcs = {s.name: s for s in inv.agencies[0].sources}
    assert srcs["windows-fs01.agency.local"].path == "winlog-*/fs01.agency.local"
    assert srcs["windows-dc01"].silent_after_s == 1800
    assert srcs["windows-dc01"].matches("winlog-tls:6514/dc01", "collector1")
    assert not srcs["windows-dc01"].matches("winlog-tls:6514/dc012", "collector1")


@pytest.mark.parametrize(
    ("hosts", "why"),
    [
        ("FS01", "must be a list"),
        ([{"host": "x", "bogus": 1}], "unknown key"),
        (["///"], "not a computer name"),
        (["fs01", "FS01"], "listed twice"),
    ],
)
def test_inventory_windows_hosts_errors_name_the_key(hosts: object, why: str) -> None:
    doc = {"agencies": [dict(INVENTORY["agencies"][0], windows_hosts=hosts)]}
    inv = parse_inventory(doc)
    assert not inv.agencies and why in inv.errors[0] and "windows_hosts" in inv.errors[0]


def test_a_silent_windows_server_degrades_its_agency() -> None:
    inv = parse_inventory(INVENTORY)
    t = CoverageTracker()
    t0 = 1_000_000.0
    t.observe_heartbeat(
        agency_id="so-tai-chinh", agent_id="ag-1", host="collector1", version="1", spool_bytes=0, shipped={}, now=t0
    )
    t.observe_events(agency_id="so-tai-chinh", agent_id="ag-1", source="/var/log/auth.log", now=t0)
    t.observe_events(agency_id="so-tai-chinh", agent_id="ag-1", source="winlog-tcp:6514/fs01.agency.local", now=t0)
    (view,) = t.evaluate(inv, t0 + 1).agencies
    assert view.state == NEVER_SEEN or view.state == DEGRADED  # DC01 never delivered
    assert "source windows-dc01 never delivered" in view.reasons
    t.observe_events(agency_id="so-tai-chinh", agent_id="ag-1", source="winlog-tcp:6514/dc01", now=t0 + 2)
    (view,) = t.evaluate(inv, t0 + 3).agencies
    assert view.state == MONITORED, view.reasons
    # 20 minutes on: auth and DC01 keep delivering, FS01 (15 min default) fell silent
    later = t0 + 1200
    t.observe_heartbeat(
        agency_id="so-tai-chinh", agent_id="ag-1", host="collector1", version="1", spool_bytes=0, shipped={}, now=later
    )
    for src in ("/var/log/auth.log", "winlog-tcp:6514/dc01"):
        t.observe_events(agency_id="so-tai-chinh", agent_id="ag-1", source=src, now=later)
    (view,) = t.evaluate(inv, later + 1).agencies
    assert view.state == DEGRADED and view.reasons == ["source windows-fs01.agency.local silent"]
    assert [s.name for s in view.sources if s.state != MONITORED] == ["windows-fs01.agency.local"]


def test_agent_gives_each_computer_its_own_source_up_to_a_cap() -> None:
    from collectors import Agent, Identity
    from collectors.config import AgentConfig
    from collectors.listeners import MAX_WINDOWS_HOSTS

    agent = Agent(AgentConfig(), Identity("ag", "a1", "s"), env={})
    line = SHAPES["winlogbeat"](*SEC, 4625, {}, host="FS01.Agency.local")
    assert agent.inputs.windows_source("winlog-tcp:6514", line) == "winlog-tcp:6514/fs01.agency.local"
    assert agent.inputs.windows_source("winlog-tcp:6514", "not json") == "winlog-tcp:6514/unknown"
    for i in range(MAX_WINDOWS_HOSTS):
        agent.inputs.windows_source("winlog-tls:6515", SHAPES["nxlog"](*SEC, 4625, {}, host=f"ws{i}"))
    assert (
        agent.inputs.windows_source("winlog-tls:6515", SHAPES["nxlog"](*SEC, 4625, {}, host="ws0"))
        == "winlog-tls:6515/ws0"
    )
    over = SHAPES["nxlog"](*SEC, 4625, {}, host="one-too-many")
    assert agent.inputs.windows_source("winlog-tls:6515", over) == "winlog-tls:6515/other"
    assert agent.inputs.windows_source("winlog-tcp:6514", over) == "winlog-tcp:6514/one-too-many"  # per listener


def test_each_computer_resumes_its_sequence_after_a_restart(tmp_path) -> None:
    import queue
    import threading

    from collectors import Agent, Identity
    from collectors.config import AgentConfig

    cfg = AgentConfig(state_dir=str(tmp_path), syslog=[SyslogInputConfig(protocol="tcp", port=0, dataset="windows")])
    agent = Agent(cfg, Identity("ag", "a1", "s"), env={})
    positions = {"winlog-tcp:0/fs01": {"q": 42}, "winlog-tcp:0": {"q": 7}, "/var/log/auth.log": {"o": 5}}
    stop = threading.Event()
    try:
        agent.inputs.start(positions, queue.Queue(), stop)
        assert agent.inputs.seq["winlog-tcp:0/fs01"] == 42 and agent.inputs.seq["winlog-tcp:0"] == 7
        assert agent.inputs.windows_hosts == {"winlog-tcp:0": {"fs01"}}
    finally:
        stop.set()
        for lst in agent.listeners:
            lst.close()
