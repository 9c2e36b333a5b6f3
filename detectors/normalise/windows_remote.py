"""ECS fields of the remote-access channels SigmaHQ names no logsource for: RDP's transport
(RemoteDesktopServices-RdpCoreTS), its network-level authentication (TerminalServices-
RemoteConnectionManager) and sessions (TerminalServices-LocalSessionManager), and WinRM. Per
Microsoft's event documentation; raw values stay in `winlog.event_data.*` / `winlog.user_data.*`.
"""

from __future__ import annotations

from detectors.normalise.windows_fields import Data, Event, _source, _user, _v

KINDS = frozenset(("rdpcorets", "rdp_auth", "rdp_session", "winrm"))
_RDP_SESSION = {21: "rdp-session-logon", 22: "rdp-shell-started", 23: "rdp-session-logoff"}
_RDP_SESSION |= {24: "rdp-session-disconnected", 25: "rdp-session-reconnected"}


def enrich(ev: Event, kind: str, eid: int | None, d: Data) -> None:
    """RdpCoreTS 131 (a client's TCP/UDP connection: 'ip:port', '[v6]:port'), RemoteConnectionManager
    1149 (network-level authentication succeeded: Param1 user, Param2 domain, Param3 address),
    LocalSessionManager 21-25 (session logon ... reconnect: User, Address, 'LOCAL' for the console),
    WinRM 91 (a remote shell created)."""
    if eid is None:
        return
    if kind == "rdpcorets" and eid == 131:
        ev["event.action"], ev["event.category"], ev["event.type"] = "rdp-connection-accepted", ["network"], ["start"]
        ip, _, port = (_v(d, "ClientIP") or "").rpartition(":")
        _source(ev, ip or None, port)
    elif kind == "rdp_auth" and eid == 1149:
        ev["event.action"], ev["event.category"], ev["event.type"] = (
            "rdp-user-authenticated",
            ["authentication"],
            ["start"],
        )
        ev["event.outcome"] = "success"
        _user(ev, "user", _v(d, "Param1"), _v(d, "Param2"))
        _source(ev, _v(d, "Param3"))
    elif kind == "rdp_session" and eid in _RDP_SESSION:
        ev["event.action"], ev["event.category"] = _RDP_SESSION[eid], ["session"]
        ev["event.type"] = ["start"] if eid in (21, 22, 25) else ["end"]
        _user(ev, "user", _v(d, "User"))
        address = _v(d, "Address")
        if address and address.upper() != "LOCAL":
            _source(ev, address)
    elif kind == "winrm" and eid == 91:
        ev["event.action"], ev["event.category"], ev["event.type"] = "winrm-shell-created", ["session"], ["start"]
