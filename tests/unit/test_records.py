"""Wire records between roles: round trips and heartbeat signatures."""

from __future__ import annotations

from collectors.wire import Heartbeat, LineBatch, LogLine, SourceStatus, sign_heartbeat, verify_heartbeat


def test_line_batch_round_trip_keeps_per_line_metadata():
    batch = LineBatch(
        "dept-finance",
        "ag-1",
        "web01",
        "/var/log/auth.log",
        [LogLine("sshd[1]: Failed password", 10, 2, 7, 1.5, ["truncated"]), LogLine("ünïcode", 40, 3, 8, 1.6)],
        dataset="system.auth",
    )
    again = LineBatch.from_bytes(batch.to_bytes())
    assert again == batch
    assert batch.key() == b"dept-finance|ag-1|/var/log/auth.log"


def test_heartbeat_signature_detects_forgery():
    hb = Heartbeat("dept-a", "ag-1", "h1", "0.1.0", 100.0, 50.0, {"/var/log/auth.log": SourceStatus(99.0, 0, 5, 5)})
    hb.signature = sign_heartbeat(hb, "secret-a")
    assert verify_heartbeat(Heartbeat.from_bytes(hb.to_bytes()), "secret-a")
    forged = Heartbeat.from_bytes(hb.to_bytes())
    forged.agency_id = "dept-b"
    assert not verify_heartbeat(forged, "secret-a")
    assert not verify_heartbeat(hb, "other-secret")
    hb.signature = ""
    assert not verify_heartbeat(hb, "secret-a")
