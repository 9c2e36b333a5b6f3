"""Parse throughput per family on one core: `python tests/bench/bench_parse.py`.

Each family is timed against a naive regex-and-dict parser in the same run, and the ratio printed,
because absolute figures on a shared machine move by 2x from one minute to the next.
Lines are synthesised here (varied users, IPs, seconds, paths) so the bench runs without the shared
corpora; when ../shared/datasets is present, real corpus files are timed too.
"""

from __future__ import annotations

import gzip
import random
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from collectors.wire import LineBatch, LogLine  # noqa: E402
from detectors.normalise import Normaliser, parse_line  # noqa: E402
from tests.bench.benchreport import target as report_target  # noqa: E402

N = 60_000
DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def synth(rng: random.Random) -> dict[str, list[str]]:
    def ip() -> str:
        return f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"

    def ts(i: int) -> str:
        return f"Nov {1 + i // 86400 % 28:2d} {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}"

    users = ["root", "admin", "oracle", "ubuntu", "test", "git", "postgres", "alice"]
    sshd_msgs = [
        "Failed password for {u} from {ip} port {p} ssh2",
        "Failed password for invalid user {u} from {ip} port {p} ssh2",
        "Accepted publickey for {u} from {ip} port {p} ssh2: RSA SHA256:abcdef",
        "Invalid user {u} from {ip} port {p}",
        "Connection closed by authenticating user {u} {ip} port {p} [preauth]",
        "Received disconnect from {ip} port {p}:11: Bye Bye [preauth]",
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  user={u}",
    ]
    syslog_msgs = [
        "systemd[1]: Started Session {p} of user {u}.",
        "CRON[{p}]: (root) CMD (run-parts /etc/cron.hourly)",
        "kernel: [ 1234.5678] eth0: link up",
        "dhclient[{p}]: DHCPACK of {ip} from 10.0.0.1",
        'rsyslogd: [origin software="rsyslogd"] rsyslogd was HUPed',
    ]
    out: dict[str, list[str]] = {"sshd": [], "syslog": [], "access": [], "auditd": [], "iptables": []}
    paths = ["/", "/index.php", "/wp-login.php", "/static/app.js", "/api/v1/items?id={p}", "/search?q=a+b&page=2"]
    for i in range(N):
        u, a, pt = rng.choice(users), ip(), rng.randint(1024, 65535)
        out["sshd"].append(f"{ts(i)} srv{i % 7} sshd[{pt}]: " + rng.choice(sshd_msgs).format(u=u, ip=a, p=pt))
        out["syslog"].append(f"{ts(i)} srv{i % 7} " + rng.choice(syslog_msgs).format(u=u, ip=a, p=pt))
        path = rng.choice(paths).format(p=pt)
        out["access"].append(
            f"{a} - - [{1 + i // 86400 % 28:02d}/Nov/2025:{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d} +0700] "
            f'"GET {path} HTTP/1.1" {rng.choice((200, 200, 304, 404))} {rng.randint(0, 99999)} "-" '
            f'"Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/{rng.randint(90, 130)}.0"'
        )
        out["iptables"].append(
            f"{ts(i)} fw kernel: [{i}.5] [UFW BLOCK] IN=eth0 OUT= MAC=00:11:22 SRC={a} DST=10.0.0.5 LEN=60 TOS=0x00 "
            f"PREC=0x00 TTL=50 ID={pt} DF PROTO=TCP SPT={pt} DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0"
        )
        t = 1764288000 + i
        out["auditd"].append(
            f"type=SYSCALL msg=audit({t}.{i % 1000:03d}:{i}): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 "
            f"a3=4 items=2 ppid=1 pid={pt} auid=1000 uid=1000 gid=1000 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 "
            f'tty=pts0 ses=3 comm="bash" exe="/usr/bin/bash" key="exec"'
        )
    return out


def rate(fn, lines: list[str]) -> float:
    """Lines per CPU-second of this process (one core), best of three passes. CPU time, not wall
    time: on a shared 2-core box wall time mostly measures how long other processes held the core."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        fn(lines)
        best = min(best, time.process_time() - start)
    return len(lines) / max(best, 1e-9)


def run_parse_line(path: str | None):
    def run(lines: list[str]) -> None:
        for line in lines:
            parse_line(line, path=path)

    return run


# The yardstick ("a naive regex-and-dict parser does about 60,000 here"): per family one
# regex with named groups, the groupdict as the event, and every line's local time converted to UTC
# with strptime/astimezone. It understands only the commonest message shape and maps no ECS fields,
# so it is a floor to beat, not a competitor; it is timed in the same run so ratios survive noise.
_SYSLOG_HEAD = r"(?P<ts>\w{3} +\d+ [\d:]+) (?P<host>\S+) (?P<prog>[\w.-]+)(?:\[(?P<pid>\d+)\])?: "
NAIVE = {
    "sshd": (
        re.compile(
            _SYSLOG_HEAD + r"(?:(?P<outcome>Failed|Accepted) (?P<method>\S+) for (?P<user>\S+) from "
            r"(?P<ip>\S+) port (?P<port>\d+))?"
        ),
        "%Y %b %d %H:%M:%S",
        lambda ts: "2025 " + ts,
    ),
    "syslog": (re.compile(_SYSLOG_HEAD + r"(?P<msg>.*)"), "%Y %b %d %H:%M:%S", lambda ts: "2025 " + ts),
    "access": (
        re.compile(
            r'(?P<ip>\S+) \S+ (?P<user>\S+) \[(?P<ts>[^\]]+)\] "(?P<method>\S+) (?P<url>\S+) [^"]*" '
            r'(?P<status>\d+) (?P<bytes>\S+)(?: "(?P<referrer>[^"]*)" "(?P<agent>[^"]*)")?'
        ),
        "%d/%b/%Y:%H:%M:%S %z",
        lambda ts: ts,
    ),
    "iptables": (
        re.compile(
            _SYSLOG_HEAD + r".*?SRC=(?P<src>\S+) DST=(?P<dst>\S+).*?PROTO=(?P<proto>\S+)"
            r"(?: SPT=(?P<spt>\d+) DPT=(?P<dpt>\d+))?"
        ),
        "%Y %b %d %H:%M:%S",
        lambda ts: "2025 " + ts,
    ),
    "auditd": (
        re.compile(r"type=(?P<type>\S+) msg=audit\((?P<ts>\d+)\.\d+:(?P<serial>\d+)\): (?P<body>.*)"),
        None,
        None,
    ),
}
_LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")


def run_naive(family: str):
    regex, fmt, fix_ts = NAIVE[family]
    fix = fix_ts or (lambda ts: ts)  # only a family with a time layout has one (and uses it)

    def run(lines: list[str]) -> None:
        for line in lines:
            m = regex.match(line)
            if m is None:
                continue
            ev = m.groupdict()
            if fmt is None:
                ev["@timestamp"] = datetime.fromtimestamp(int(ev["ts"]), UTC).isoformat()
            else:
                dt = datetime.strptime(fix(ev["ts"]), fmt)
                ev["@timestamp"] = (dt if dt.tzinfo else dt.replace(tzinfo=_LOCAL)).astimezone(UTC).isoformat()

    return run


def bench_batches(name: str, lines: list[str], source: str) -> None:
    batches = [
        LineBatch(
            "ag",
            "a",
            "h",
            source,
            [LogLine(text=t, line_no=j + 1, seq=j + 1, read_at=1.76e9) for j, t in enumerate(lines[i : i + 2000], i)],
        )
        for i in range(0, len(lines), 2000)
    ]

    def run(_lines: list[str]) -> None:
        n = Normaliser()
        for b in batches:
            n.normalise_batch(b)
        n.flush()

    print(f"{name:34s} normalise_batch {rate(run, lines):10,.0f} lines/s")


def bench_json_lines(fams: dict[str, list[str]]) -> None:
    """ECS JSON lines as `socpipe parse` writes them (sshd, access, auditd events, one in three each)
    through parse_line, against orjson decoding the same lines and nothing else (the floor)."""
    import json

    import orjson

    events: list[dict] = []
    for fam, src in (("sshd", "/var/log/auth.log"), ("access", "/var/log/nginx/access.log"), ("auditd", None)):
        n = Normaliser()
        batch = LineBatch(
            "ag",
            "a",
            "h",
            src or "/var/log/audit/audit.log",
            [LogLine(text=t, line_no=i + 1, seq=i + 1, read_at=1.76e9) for i, t in enumerate(fams[fam][: N // 3])],
        )
        events += n.normalise_batch(batch) + n.flush()
    lines = [json.dumps(ev, ensure_ascii=False) for ev in events]

    def decode_only(ls: list[str]) -> None:
        for line in ls:
            orjson.loads(line)

    ours = rate(run_parse_line("/var/log/socpipe/events.jsonl"), lines)
    floor = rate(decode_only, lines)
    print(
        f"{'ECS JSON lines (parse output)':34s} {ours:12,.0f} {floor:12,.0f} {ours / floor:6.2f}x  (baseline: orjson.loads alone)"
    )


TARGETS = {"sshd": 100_000, "syslog": 100_000, "access": 80_000}


def main() -> None:
    rng = random.Random(7)
    fams = synth(rng)
    print(f"python {sys.version.split()[0]}, one core (CPU time), {N} synthetic lines per family, best of 3 passes")
    print(f"{'family':34s} {'parse_line':>12s} {'naive':>12s} {'ratio':>7s}  target")
    for fam, lines in fams.items():
        for line in lines[:2000]:  # warm caches the way a long-running worker has them
            parse_line(line)
        ours = rate(run_parse_line("/var/log/nginx/access.log" if fam == "access" else None), lines)
        naive = rate(run_naive(fam), lines)
        target = TARGETS.get(fam)
        if target is not None:
            report_target(f"parse {fam} (lines/s)", ours, target, unit="lines/s", higher_is_better=True)
        if fam in ("auditd", "iptables"):
            report_target(
                f"parse {fam} / naive regex parser" + (" (header only)" if fam == "auditd" else ""),
                ours / naive,
                1.0,
                unit="x",
                higher_is_better=True,
                baseline=f"naive {naive:,.0f} lines/s",
                info="reads only the record header, none of the key=value pairs parse_line reads: not the "
                "same work; judged against the naive parser plus one findall over the body"
                if fam == "auditd"
                else "",
            )
        verdict = "" if target is None else f"{target:,} ({'met' if ours >= target else 'NOT met'} here)"
        print(f"{'synthetic ' + fam:34s} {ours:12,.0f} {naive:12,.0f} {ours / naive:6.2f}x  {verdict}")
    # The auditd yardstick above reads only the record header (type, time, serial) and none of the
    # ~30 key=value pairs rules match on: it is not a parser of the same work, and parse_line, which
    # reads every pair, maps ECS fields and decodes hex, stays well below it. The yardstick of the same
    # work is that naive parser plus one findall over the body; that is the one the parser meets:
    kv = re.compile(r"(\S+?)=(\S*)")
    header = run_naive("auditd")

    def naive_kv(lines: list[str]) -> None:
        header(lines)
        for line in lines:
            dict(kv.findall(line))

    ours = rate(run_parse_line(None), fams["auditd"])
    naive = rate(naive_kv, fams["auditd"])
    report_target(
        "parse auditd / naive regex + body kv",
        ours / naive,
        1.0,
        unit="x",
        higher_is_better=True,
        baseline=f"naive+kv {naive:,.0f} lines/s",
    )
    print(f"{'synthetic auditd (naive + body kv)':34s} {ours:12,.0f} {naive:12,.0f} {ours / naive:6.2f}x  1.0x", end="")
    print(f" ({'met' if ours >= naive else 'NOT met'} here)")
    print(
        "  auditd: the header-only yardstick reads none of the key=value pairs (not the same work); "
        "the naive + body kv yardstick reads them all, as parse_line does"
    )
    bench_json_lines(fams)
    for fam, src in (
        ("sshd", "/var/log/auth.log"),
        ("access", "/var/log/apache2/access.log"),
        ("auditd", "/var/log/audit/audit.log"),
    ):
        bench_batches(f"synthetic {fam}", fams[fam], src)
    real = [
        ("loghub OpenSSH", "loghub_2k_samples/OpenSSH/OpenSSH_2k.log"),
        ("loghub Linux syslog", "loghub_2k_samples/Linux/Linux_2k.log"),
        ("secrepo access", "secrepo_web_access_samples/access.log.2022-12-22"),
        ("scanner access (acunetix)", "apache_scanner_logs_dvwa/acunetix.txt"),
        (
            "CAM-LDS audit.log.gz",
            "ait_camlds_attack_manifestations/sequences/3_ssh_apt-26/linuxshare/logs/log/audit/audit.log.gz",
        ),
    ]
    for name, rel in real:
        path = DATASETS / rel
        if not path.exists():
            print(f"{'corpus ' + name:34s} skipped (corpus absent)")
            continue
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            lines = [ln.rstrip("\n") for ln in fh]
        lines = lines * max(1, 20_000 // max(len(lines), 1))
        print(f"{'corpus ' + name:34s} {rate(run_parse_line(None), lines):12,.0f} lines/s  ({len(lines)} lines)")


if __name__ == "__main__":
    main()
