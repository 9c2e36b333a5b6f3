"""Forwarded Windows events end to end: a forwarder's JSON (NXLog CE newline-framed, Winlogbeat
octet-counted) over a real TCP connection to the real agent listener (`dataset: windows`), signed
batches through the shared Kafka, a real `socpipe detect run` worker, alerts in Elasticsearch that
name the Windows server (not the collector) as the host."""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime

import orjson
import pytest
import yaml
from elasticsearch import Elasticsearch

from collectors import Agent, Identity
from collectors.config import load_agent_config
from pipeline.coverage.state import DEGRADED, MONITORED
from pipeline.enrolment.registry import Registry
from tests.integration.conftest import alert_sources, es_client, es_config, free_port, wait_for
from tests.integration.coverage_helpers import RunningCoverage, write_inventory
from tests.integration.signing import TEST_AGENTS
from tests.integration.test_detector_e2e import detector_env

pytestmark = pytest.mark.integration

RDP_BRUTE_FORCE = "7d3c1f0e-3a7e-4f59-9d7b-2a61c0e4b101"
LOCAL_ADMIN = "5a2c9e61-7f0d-4c4b-b6a1-1e8f3d9c2b04"


def nxlog_4625(i: int, ip: str, now: float) -> bytes:
    doc = {
        "EventTime": datetime.fromtimestamp(now + i, UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "Hostname": "FS01.agency.local",
        "EventType": "AUDIT_FAILURE",
        "SeverityValue": 4,
        "Severity": "ERROR",
        "EventID": 4625,
        "SourceName": "Microsoft-Windows-Security-Auditing",
        "Channel": "Security",
        "RecordNumber": 1000 + i,
        "TargetUserName": "administrator",
        "TargetDomainName": "FS01",
        "Status": "0xc000006d",
        "SubStatus": "0xc000006a",
        "LogonType": "10",
        "WorkstationName": "KALI",
        "IpAddress": ip,
        "IpPort": "0",
        "SourceModuleName": "eventlog",
        "SourceModuleType": "im_msvistalog",
    }
    return orjson.dumps(doc) + b"\n"


def winlogbeat_4732(now: float) -> bytes:
    doc = {
        "@timestamp": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
        "winlog": {
            "channel": "Security",
            "event_id": "4732",
            "provider_name": "Microsoft-Windows-Security-Auditing",
            "computer_name": "DC01.agency.local",
            "record_id": 77,
            "event_data": {
                "MemberSid": "S-1-5-21-1-2-3-1005",
                "TargetUserName": "Administrators",
                "TargetDomainName": "Builtin",
                "TargetSid": "S-1-5-32-544",
                "SubjectUserName": "mallory",
                "SubjectDomainName": "AGENCY",
            },
        },
        "host": {"name": "dc01"},
        "agent": {"type": "winlogbeat"},
        "organization": {"id": "someone-else"},  # a payload's claim: never trusted
    }
    body = orjson.dumps(doc)
    return f"{len(body)} ".encode() + body  # RFC 6587 octet counting


def alerts(es: Elasticsearch, prefix: str, rule_id: str) -> list[dict]:
    return alert_sources(es, prefix, {"term": {"rule.id": rule_id}}, size=100)


def test_forwarded_windows_events_raise_alerts_in_elasticsearch(tmp_path, kafka_bootstrap, es_url, unique, procs):
    env = detector_env(kafka_bootstrap, es_url, unique)
    agency = f"so-win-{unique}"
    agent_id = f"collector.{agency}"
    secret = TEST_AGENTS.secret(agency, agent_id)  # enrolled in the registry the detector verifies with
    port = free_port()
    cfg_path = tmp_path / "agent.yaml"
    cfg_path.write_text(
        yaml.safe_dump(
            {
                "state_dir": str(tmp_path / "state"),
                "topic": env["SOCPIPE_RAW_TOPIC"],
                "heartbeat_topic": f"hb-{unique}",
                "timezone": "UTC",
                "kafka": {"bootstrap": kafka_bootstrap},
                "syslog": [{"protocol": "tcp", "port": port, "dataset": "windows"}],
            }
        )
    )
    agent = Agent(load_agent_config(cfg_path, env={}), Identity(agency, agent_id, secret), host="collector1")
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert agent.ready.wait(20)
        det = procs.start("detector", ["detect", "run", "--config", "config/detector.yaml"], env)
        now = time.time() - 60
        with socket.create_connection(("127.0.0.1", port), timeout=10) as nxlog:  # NXLog om_tcp
            nxlog.sendall(b"".join(nxlog_4625(i, "203.0.113.77", now) for i in range(12)))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as beat:  # Winlogbeat-like, octet-counted
            beat.sendall(winlogbeat_4732(now + 20))
        es = es_client(es_url)
        prefix = env["SOCPIPE_ES_INDEX_PREFIX"]
        brute = wait_for(
            lambda: det.check_alive() and alerts(es, prefix, RDP_BRUTE_FORCE), 90, what="an RDP brute-force alert"
        )
        admin = wait_for(lambda: det.check_alive() and alerts(es, prefix, LOCAL_ADMIN), 30, what="a local-admin alert")
    finally:
        stop.set()
        thread.join(30)
    [b] = brute
    assert b["source"]["ip"] == "203.0.113.77"
    assert b["organization"]["id"] == agency
    assert b["rule"]["name"] == "RDP/SMB Brute Force Against A Windows Server"
    assert len(b["socpipe"]["evidence"]) >= 10
    ev = b["socpipe"]["evidence"][0]
    flat = ev if "host.name" in ev else {"host.name": ev.get("host", {}).get("name")}
    assert flat["host.name"] == "FS01.agency.local"  # the Windows server, not the collector
    [a] = admin
    assert a["organization"]["id"] == agency  # the batch's verified agency, not the payload's claim
    assert "FS01" not in str(a["host"]) and "DC01.agency.local" in str(a["host"])
    # each forwarding computer was shipped as its own source
    shipped = set(agent.stats.sources)
    assert {f"winlog-tcp:{port}/fs01.agency.local", f"winlog-tcp:{port}/dc01.agency.local"} <= shipped, shipped


def _agency_view(cov: RunningCoverage, agency_id: str):
    snap = cov.service.snapshot
    return next((a for a in snap.agencies if a.id == agency_id), None) if snap else None


def test_a_silent_windows_server_degrades_its_agency(tmp_path, kafka_bootstrap, unique):
    """The real coverage service over the shared Kafka, the real agent: both forwarding servers
    deliver -> monitored; DC01 falls silent past its silent_after -> degraded, naming DC01."""
    agency_id = f"so-win-{unique}"
    inv = write_inventory(
        tmp_path / "inventory.yaml",
        [
            {
                "id": agency_id,
                "name": "Sở Tài chính",
                "tier": "department",
                "windows_hosts": ["FS01.agency.local", {"host": "DC01.agency.local", "silent_after": "10s"}],
            }
        ],
    )
    with RunningCoverage(tmp_path, kafka_bootstrap, unique, inv, free_port(), heartbeat_interval_s=2) as cov:
        agent_id, secret = Registry(cov.cfg.registry).enroll_direct(agency_id, "collector1")
        wait_for(lambda: cov.service.snapshot is not None, 30, what="the coverage service consuming")
        port = free_port()
        cfg_path = tmp_path / "agent.yaml"
        cfg_path.write_text(
            yaml.safe_dump(
                {
                    "state_dir": str(tmp_path / "agent-state"),
                    "topic": cov.cfg.raw_topic,
                    "heartbeat_topic": cov.cfg.heartbeat_topic,
                    "heartbeat_interval_s": 2,
                    "timezone": "UTC",
                    "kafka": {"bootstrap": kafka_bootstrap},
                    "syslog": [{"protocol": "tcp", "port": port, "dataset": "windows"}],
                }
            )
        )
        agent = Agent(load_agent_config(cfg_path, env={}), Identity(agency_id, agent_id, secret), host="collector1")
        stop = threading.Event()
        thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
        thread.start()
        try:
            assert agent.ready.wait(20)

            def send(dc01: bool) -> None:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                    conn.sendall(nxlog_4625(0, "203.0.113.9", time.time()))
                    if dc01:
                        conn.sendall(winlogbeat_4732(time.time()) + b"\n")

            send(dc01=True)
            view = wait_for(
                lambda: (v := _agency_view(cov, agency_id)) is not None and v.state == MONITORED and v,
                30,
                what="the agency monitored with both Windows servers delivering",
            )
            assert {s.name for s in view.sources} == {"windows-fs01.agency.local", "windows-dc01.agency.local"}

            def dc01_silent():
                send(dc01=False)  # FS01 keeps delivering
                v = _agency_view(cov, agency_id)
                return v is not None and v.state == DEGRADED and v

            view = wait_for(dc01_silent, 40, interval_s=1, what="DC01 silent -> agency degraded")
        finally:
            stop.set()
            thread.join(30)
    assert view.reasons == ["source windows-dc01.agency.local silent"]
    states = {s.name: s.state for s in view.sources}
    assert states == {"windows-fs01.agency.local": MONITORED, "windows-dc01.agency.local": DEGRADED}


def test_windows_events_index_with_their_event_data_flattened(es_url, unique):
    """Hundreds of providers' own EventData names must not each become a mapped field (the index's
    field limit): winlog.event_data is one flattened field, still searchable by sub-key."""
    from detectors.normalise import parse_line
    from pipeline.elastic import EventIndexer, connect
    from pipeline.elastic.setup import setup
    from tests.integration.alerts_support import cleanup
    from tests.unit.test_normalise_windows import nxlog

    cfg = es_config(es_url, index_prefix=f"t{unique}")
    es = connect(cfg)
    setup(es, cfg)
    try:
        events = [
            parse_line(
                nxlog(
                    "Microsoft-Windows-Custom/Operational", "Custom", 100 + i, {f"Field{i}_{j}": "v" for j in range(20)}
                ),
                timezone="UTC",
            )
            for i in range(60)
        ]  # 1,200 distinct EventData names, more than the default limit of 1,000 mapped fields
        events.append(
            parse_line(
                nxlog(
                    "Security",
                    "Microsoft-Windows-Security-Auditing",
                    4625,
                    {"TargetUserName": "administrator", "LogonType": "10"},
                ),
                timezone="UTC",
            )
        )
        result = EventIndexer(es, prefix=cfg.index_prefix, refresh="wait_for").index(events)
        assert len(result.created) == len(events) and not result.rejected, result
        hits = es.search(
            index=f"{cfg.index_prefix}-events-*", query={"term": {"winlog.event_data.TargetUserName": "administrator"}}
        )["hits"]["hits"]
        assert [h["_source"]["winlog"]["event_data"]["LogonType"] for h in hits] == ["10"]
    finally:
        cleanup(es, cfg.index_prefix)
