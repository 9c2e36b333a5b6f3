"""Parser coverage over the public corpora in ../shared/datasets (read in place, never copied).

Each test prints its rate per corpus (run with -s to see them) and asserts the issue's bar:
>= 99% of lines in the right dataset with the fields rules need; fail2ban's annotated host and
time for every annotated line of the families we parse.
"""

from __future__ import annotations

import gzip
import json
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collectors.wire import LineBatch, LogLine
from detectors.normalise import Normaliser, parse_line
from detectors.normalise.ecs import PARSE_FAILURE_TAG

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
FAIL2BAN_NOW = 1124013600  # fail2ban's test suite pins "now" here (2005-08-14) for year inference
FAIL2BAN_TZ = "Europe/Berlin"  # and its expected times are Berlin wall-clock times


def need(sub: str) -> Path:
    path = DATASETS / sub
    if not path.exists():
        pytest.skip(f"shared corpus {path} is absent")
    return path


def read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        return [ln.rstrip("\n") for ln in fh if ln.strip()]


def report(name: str, good: int, total: int, bad: list) -> float:
    rate = good / total if total else 1.0
    print(f"\n{name}: {good}/{total} = {rate:.2%}")
    for b in bad[:5]:
        print("   miss:", b)
    return rate


def failed(ev: dict) -> bool:
    return PARSE_FAILURE_TAG in ev.get("tags", ())


# --- fail2ban: per-line host/time expectations --------------------------------------------------

FAIL2BAN_FILES = (
    "sshd",
    "sshd-journal",
    "pam-generic",
    "dropbear",
    "selinux-ssh",
    "apache-auth",
    "apache-badbots",
    "apache-botsearch",
    "apache-modsecurity",
    "apache-nohome",
    "apache-noscript",
    "apache-overflows",
    "apache-pass",
    "apache-shellshock",
    "nginx-bad-request",
    "nginx-botsearch",
    "nginx-forbidden",
    "nginx-http-auth",
    "nginx-limit-req",
    "php-url-fopen",
    "traefik-auth",
)


def fail2ban_cases(path: Path) -> tuple[list[LogLine], dict[int, dict]]:
    """All log lines of a file (in order, so stateful parsing sees context) and the annotation per line."""
    lines, expect, pending = [], {}, None
    for n, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if raw.startswith("# failJSON:"):
            try:
                pending = json.loads(raw.split(":", 1)[1])
            except ValueError:
                pending = None
            continue
        if raw.startswith("#") or not raw.strip():
            continue
        lines.append(LogLine(text=raw, line_no=n, seq=n, read_at=FAIL2BAN_NOW))
        if pending is not None and pending.get("match"):
            expect[n] = pending
        pending = None
    return lines, expect


def local_time(ts: str) -> str:
    return (
        datetime.fromisoformat(ts.replace("Z", "+00:00"))
        .astimezone(ZoneInfo(FAIL2BAN_TZ))
        .strftime("%Y-%m-%dT%H:%M:%S")
    )


@pytest.mark.parametrize("name", FAIL2BAN_FILES)
def test_fail2ban_host_and_time(name: str) -> None:
    path = need("fail2ban_filter_testlogs/logs") / name
    lines, expect = fail2ban_cases(path)
    normaliser = Normaliser(default_timezone=FAIL2BAN_TZ)
    batch = LineBatch("agency", "agent", "testhost", str(path), lines, None, FAIL2BAN_TZ)
    events = {ev["log.file.line"]: ev for ev in normaliser.normalise_batch(batch) + normaliser.flush()}
    checks = good = 0
    bad = []
    for n, exp in expect.items():
        ev = events[n]
        if exp.get("time"):
            checks += 1
            if local_time(ev["@timestamp"]) == exp["time"][:19]:
                good += 1
            else:
                bad.append(("time", exp["time"], ev["@timestamp"], ev["event.original"][:120]))
        if exp.get("host"):
            checks += 1
            if exp["host"] in (ev.get("source.ip"), ev.get("source.address")):
                good += 1
            else:
                bad.append(("host", exp["host"], ev.get("source.ip"), ev["event.original"][:120]))
    rate = report(f"fail2ban/{name} host+time", good, checks, bad)
    # sshd's multi-line cases (kex errors naming the peer only on an earlier line of the same pid)
    # are covered by the normaliser's per-pid memory; everything else must match exactly.
    assert rate == 1.0, bad


# --- Wazuh rule test lines ----------------------------------------------------------------------

WAZUH_EXPECT = {  # file -> dataset every parsed line of it must land in (None: any, just no failure)
    "sshd.ini": "system.auth",
    "pam.ini": "system.auth",
    "su.ini": "system.auth",
    "sudo.ini": "system.auth",
    "dropbear.ini": "system.auth",
    "auditd.ini": "auditd.log",
    "audit_scp.ini": "auditd.log",
    "iptables.ini": "iptables.log",
    "firewalld.ini": None,
    "apache.ini": None,
    "nginx.ini": None,
    "web_rules.ini": None,
    "web_appsec.ini": None,
    "modsecurity.ini": None,
    "syslog.ini": None,
    "systemd.ini": None,
}
_WAZUH_LOG = re.compile(r"log \d+ (?:pass|fail) = (.*)")


def test_wazuh_lines_land_in_their_dataset() -> None:
    root = need("wazuh_ruleset_tests")
    total = good = 0
    bad = []
    for name, dataset in WAZUH_EXPECT.items():
        for raw in (root / name).read_text(encoding="utf-8", errors="replace").splitlines():
            m = _WAZUH_LOG.match(raw)
            if m is None:
                continue
            ev = parse_line(m.group(1))
            total += 1
            expected = dataset
            if name == "iptables.ini" and "IN=" not in m.group(1):
                expected = None
            if not failed(ev) and (expected is None or ev.get("event.dataset") == expected):
                good += 1
            else:
                bad.append((name, ev.get("event.dataset"), m.group(1)[:120]))
    assert report("wazuh (in-scope .ini files)", good, total, bad) >= 0.99


# --- loghub --------------------------------------------------------------------------------------


def test_loghub_openssh_fields() -> None:
    lines = read_lines(need("loghub_2k_samples/OpenSSH") / "OpenSSH_2k.log")
    good = 0
    bad = []
    for line in lines:
        ev = parse_line(line)
        ok = ev.get("event.dataset") == "system.auth" and ev.get("process.name") == "sshd"
        msg = ev.get("message", "")
        if msg.startswith(("Failed password", "Invalid user")):
            ok = ok and ev.get("event.outcome") == "failure" and "source.ip" in ev and "user.name" in ev
        if msg.startswith("Accepted password"):
            ok = ok and ev.get("event.outcome") == "success" and "source.ip" in ev
        good += ok
        if not ok:
            bad.append(line[:140])
    assert report("loghub/OpenSSH", good, len(lines), bad) >= 0.99


@pytest.mark.parametrize("sub,datasets", [("Linux", {"system.auth", "system.syslog"}), ("Apache", {"apache.error"})])
def test_loghub_syslog_and_apache_error(sub: str, datasets: set) -> None:
    lines = read_lines(need(f"loghub_2k_samples/{sub}") / f"{sub}_2k.log")
    bad = []
    good = 0
    for line in lines:
        ev = parse_line(line, timezone="UTC")
        ok = ev.get("event.dataset") in datasets and not failed(ev)
        good += ok
        if not ok:
            bad.append(line[:140])
    assert report(f"loghub/{sub}", good, len(lines), bad) >= 0.99


# --- access logs -------------------------------------------------------------------------------


def access_ok(ev: dict) -> bool:
    return (
        ev.get("event.dataset") == "apache.access"
        and "source.address" in ev
        and "http.response.status_code" in ev
        and ev.get("@timestamp", "")[:2] == "20"
        and ("url.original" in ev or '] "-" ' in ev["event.original"])
    )  # '"-"': no request line (408)


@pytest.mark.parametrize(
    "sub", ["secrepo_web_access_samples", "apache_scanner_logs_dvwa", "ait_ldsv2_harrison_apache_normal"]
)
def test_access_log_corpora(sub: str) -> None:
    root = need(sub)
    files = [
        p
        for p in root.rglob("*")
        if p.is_file() and ("access" in p.name or p.suffix == ".txt") and p.name not in ("NOTICE.txt", "README.md")
    ]
    total = good = 0
    bad = []
    for path in files:
        for line in read_lines(path):
            ev = parse_line(line)
            total += 1
            if access_ok(ev):
                good += 1
            else:
                bad.append(line[:140])
    assert total > 0
    assert report(sub, good, total, bad) >= 0.99


# --- CAM-LDS attack manifestations ------------------------------------------------------------


def camlds_expected(path: Path) -> set[str] | None:
    name = path.name
    if name.startswith("audit.log") and "nclog" not in path.parts:
        return {"auditd.log"}
    if name == "auth.log":
        return {"system.auth"}
    if name.startswith("access.log"):
        return {"apache.access"}
    if name.startswith("error.log") and "apache2" not in path.parts:  # apache2/error.log holds a CLI's usage text
        return {"apache.error"}
    if name in ("syslog", "messages", "kern.log"):
        return {"system.syslog", "system.auth", "iptables.log", "auditd.log"}
    return None


def test_camlds_files() -> None:
    root = need("ait_camlds_attack_manifestations/sequences")
    total = good = 0
    bad = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or "attacker" in path.parts:
            continue
        expected = camlds_expected(path)
        if expected is None:
            continue
        normaliser = Normaliser(default_timezone="UTC")
        lines = [LogLine(text=t, line_no=i) for i, t in enumerate(read_lines(path), 1)]
        batch = LineBatch("a", "b", "h", str(path), lines, None, "UTC")
        events = normaliser.normalise_batch(batch) + normaliser.flush()
        for ev in events:
            total += 1
            ok = ev.get("event.dataset") in expected and not failed(ev)
            if ok and ev["event.dataset"] == "auditd.log":
                ok = "auditd.log.record_type" in ev
            good += ok
            if not ok:
                bad.append((path.name, ev.get("event.dataset"), ev.get("event.original", "")[:100]))
    assert report("CAM-LDS (audit, auth, access, error, syslog)", good, total, bad) >= 0.99


def test_camlds_sudo_step_has_execve_with_args() -> None:
    root = need("ait_camlds_attack_manifestations/sequences")
    path = root / "1_sudo_localaccount-53_54/videoserver/logs/log/audit/audit.log"
    if not path.exists():
        pytest.skip("step folder absent")
    normaliser = Normaliser(default_timezone="UTC")
    lines = [LogLine(text=t, line_no=i) for i, t in enumerate(read_lines(path), 1)]
    events = normaliser.normalise_batch(LineBatch("a", "b", "h", str(path), lines)) + normaliser.flush()
    execs = [e for e in events if "EXECVE" in e.get("auditd.log.record_types", ())]
    assert execs, "no execve events assembled"
    for ev in execs:
        assert ev["process.args"] and ev["process.command_line"] == " ".join(ev["process.args"])
        assert "file.path" in ev and "SYSCALL" in ev["auditd.log.record_types"]
    # records are merged, not emitted one by one
    assert len(events) < len(lines)
