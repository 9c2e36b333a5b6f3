"""detectors/normalise/windows_remote.py: the remote-access channels SigmaHQ names no logsource for
(RDP's RdpCoreTS, TerminalServices RemoteConnectionManager / LocalSessionManager, WinRM) get the
client address, the user and an action, in every forwarder shape."""

from __future__ import annotations

import orjson
import pytest

from detectors.normalise import parse_line
from tests.unit.test_normalise_windows import SHAPES

RDP = (
    "Microsoft-Windows-RemoteDesktopServices-RdpCoreTS/Operational",
    "Microsoft-Windows-RemoteDesktopServices-RdpCoreTS",
)
RCM = (
    "Microsoft-Windows-TerminalServices-RemoteConnectionManager/Operational",
    "Microsoft-Windows-TerminalServices-RemoteConnectionManager",
)
LSM = (
    "Microsoft-Windows-TerminalServices-LocalSessionManager/Operational",
    "Microsoft-Windows-TerminalServices-LocalSessionManager",
)
WINRM = ("Microsoft-Windows-WinRM/Operational", "Microsoft-Windows-WinRM")


def _user_data_xml(channel: str, provider: str, eid: int, event_xml: dict) -> str:
    """Windows Event Forwarding's rendered XML: TerminalServices events carry UserData/EventXML."""
    doc = {
        "Event": {
            "System": {
                "Provider": {"#attributes": {"Name": provider}},
                "EventID": eid,
                "TimeCreated": {"#attributes": {"SystemTime": "2026-11-20T03:14:07.5Z"}},
                "Channel": channel,
                "Computer": "RDS01.agency.local",
            },
            "UserData": {"EventXML": {"#attributes": {"xmlns": "Event_NS"}, **event_xml}},
        }
    }
    return orjson.dumps(doc).decode()


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize(
    ("client", "ip", "port"),
    [("10.20.4.17:52202", "10.20.4.17", 52202), ("[fe80::1c2d:3e4f]:3390", "fe80::1c2d:3e4f", 3390)],
)
def test_rdpcorets_131_gives_the_client_address(shape: str, client: str, ip: str, port: int) -> None:
    ev = parse_line(SHAPES[shape](*RDP, 131, {"ConnType": "TCP", "ClientIP": client}), timezone="UTC")
    assert ev["event.action"] == "rdp-connection-accepted" and ev["event.category"] == ["network"]
    assert (ev["source.ip"], ev["source.port"]) == (ip, port)
    assert ev["related.ip"] == [ip]
    assert ev["winlog.event_data.ClientIP"] == client  # the raw value stays for Sigma rules


def test_rdpcorets_other_events_are_kept_raw() -> None:
    ev = parse_line(SHAPES["nxlog"](*RDP, 148, {"ChannelName": "MS_T120", "TunnelID": "0"}), timezone="UTC")
    assert ev["winlog.event_data.ChannelName"] == "MS_T120" and "source.ip" not in ev and "event.action" not in ev
    bad = parse_line(SHAPES["nxlog"](*RDP, 131, {"ClientIP": "not an address"}), timezone="UTC")
    assert "source.ip" not in bad and "_socpipe_windows_enrich_failure" not in bad.get("tags", ())


def test_remote_connection_manager_1149_user_and_address() -> None:
    for line in (
        SHAPES["nxlog"](*RCM, 1149, {"Param1": "it.op", "Param2": "AGENCY", "Param3": "10.20.4.17"}),
        _user_data_xml(*RCM, 1149, {"Param1": "it.op", "Param2": "AGENCY", "Param3": "10.20.4.17"}),
    ):
        ev = parse_line(line, timezone="UTC")
        assert ev["event.action"] == "rdp-user-authenticated" and ev["event.outcome"] == "success"
        assert (ev["user.name"], ev["user.domain"], ev["source.ip"]) == ("it.op", "AGENCY", "10.20.4.17")


@pytest.mark.parametrize(
    ("eid", "action", "kind"),
    [
        (21, "rdp-session-logon", "start"),
        (24, "rdp-session-disconnected", "end"),
        (25, "rdp-session-reconnected", "start"),
    ],
)
def test_local_session_manager_sessions(eid: int, action: str, kind: str) -> None:
    ev = parse_line(
        _user_data_xml(*LSM, eid, {"User": "AGENCY\\it.op", "SessionID": "3", "Address": "10.20.4.17"}), timezone="UTC"
    )
    assert (ev["event.action"], ev["event.type"]) == (action, [kind])
    assert (ev["user.name"], ev["user.domain"], ev["source.ip"]) == ("it.op", "AGENCY", "10.20.4.17")
    console = parse_line(SHAPES["nxlog"](*LSM, 21, {"User": "AGENCY\\it.op", "Address": "LOCAL"}), timezone="UTC")
    assert console["user.name"] == "it.op" and "source.ip" not in console and "source.domain" not in console


def test_winrm_91_is_a_remote_shell() -> None:
    ev = parse_line(
        SHAPES["winlogbeat"](*WINRM, 91, {"resourceUri": "http://schemas.microsoft.com/powershell/x"}), timezone="UTC"
    )
    assert ev["event.action"] == "winrm-shell-created" and ev["event.category"] == ["session"]
    other = parse_line(SHAPES["winlogbeat"](*WINRM, 6, {"connection": "srv02/wsman"}), timezone="UTC")
    assert "event.action" not in other
