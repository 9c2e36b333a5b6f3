"""The demo's scenario: which agencies run an agent, who attacks, and the auth.log each agent tails
(routine logins everywhere, an SSH brute force then a successful login at the attacked agency)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from collectors.wire import DEFAULT_TIMEZONE

TZ = ZoneInfo(DEFAULT_TIMEZONE)


def attacker_ip(seed: float) -> str:
    """An address of TEST-NET-3 that changes per run: a demo re-run within the detector's suppression
    window and correlation state (an hour) then raises fresh alerts instead of folding into the last run's."""
    return f"203.0.113.{2 + int(seed) % 250}"


@dataclass
class DemoAgency:
    id: str
    host: str
    attacked: bool = False


AGENCIES_WITH_AGENTS = [
    DemoAgency("so-tttt", "portal-stttt"),
    DemoAgency("ubnd-huyen-an-phu", "mail-anphu", attacked=True),
    DemoAgency("ubnd-xa-phu-huu", "srv-phuhuu"),
]  # the fourth agency of config/inventory.yaml, ubnd-xa-khanh-binh, has no agent yet


def auth_log_lines(agency: DemoAgency, now: datetime, attacker: str = "203.0.113.77") -> list[str]:
    """A plausible auth.log: routine logins, and for the attacked agency a brute force then a success."""

    def stamp(t: datetime) -> str:  # RFC 3164: "Nov  5 08:00:01", local time, no year
        t = t.astimezone(TZ)
        return f"{t:%b} {t.day:2d} {t:%H:%M:%S}"

    start = now - timedelta(minutes=2)
    lines = [
        f"{stamp(start)} {agency.host} sshd[2101]: Accepted publickey for admin from 10.20.0.5 port 51022 ssh2: ED25519 SHA256:q1w2e3",
        f"{stamp(start + timedelta(seconds=1))} {agency.host} sshd[2101]: pam_unix(sshd:session): session opened for user admin(uid=1000) by (uid=0)",
        f"{stamp(start + timedelta(seconds=20))} {agency.host} sudo:    admin : TTY=pts/0 ; PWD=/home/admin ; USER=root ; COMMAND=/usr/bin/systemctl status nginx",
    ]
    if agency.attacked:
        for i, user in enumerate(
            ["root", "admin", "oracle", "test", "ubuntu", "root", "postgres", "admin", "guest", "root", "user", "root"]
        ):
            t = start + timedelta(seconds=30 + 3 * i)
            pid = 3300 + i
            if user in ("oracle", "test", "postgres", "guest", "user"):
                lines.append(
                    f"{stamp(t)} {agency.host} sshd[{pid}]: Invalid user {user} from {attacker} port {40100 + i}"
                )
                lines.append(
                    f"{stamp(t)} {agency.host} sshd[{pid}]: Failed password for invalid user {user} from {attacker} port {40100 + i} ssh2"
                )
            else:
                lines.append(
                    f"{stamp(t)} {agency.host} sshd[{pid}]: Failed password for {user} from {attacker} port {40100 + i} ssh2"
                )
        t = start + timedelta(seconds=70)
        lines.append(f"{stamp(t)} {agency.host} sshd[3400]: Accepted password for root from {attacker} port 40200 ssh2")
    return lines
