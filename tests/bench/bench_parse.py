"""Parse throughput per family on one core: `python tests/bench/bench_parse.py`.

Lines are synthesised here (varied users, IPs, seconds, paths) so the bench runs without the shared
corpora; when ../shared/datasets is present, real corpus files are timed too.
"""

from __future__ import annotations

import gzip
import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from detectors.normalise import Normaliser, parse_line  # noqa: E402
from pipeline.records import LineBatch, LogLine  # noqa: E402

N = 60_000
DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def synth(rng: random.Random) -> dict[str, list[str]]:
    def ip() -> str:
        return f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"

    def ts(i: int) -> str:
        return f"Nov {1 + i // 86400 % 28:2d} {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}"

    users = ["root", "admin", "oracle", "ubuntu", "test", "git", "postgres", "alice"]
    sshd_msgs = [
        "Failed password for {u} from {ip} port {p} ssh2", "Failed password for invalid user {u} from {ip} port {p} ssh2",
        "Accepted publickey for {u} from {ip} port {p} ssh2: RSA SHA256:abcdef", "Invalid user {u} from {ip} port {p}",
        "Connection closed by authenticating user {u} {ip} port {p} [preauth]",
        "Received disconnect from {ip} port {p}:11: Bye Bye [preauth]",
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  user={u}",
    ]
    syslog_msgs = ["systemd[1]: Started Session {p} of user {u}.", "CRON[{p}]: (root) CMD (run-parts /etc/cron.hourly)",
                   "kernel: [ 1234.5678] eth0: link up", "dhclient[{p}]: DHCPACK of {ip} from 10.0.0.1",
                   "rsyslogd: [origin software=\"rsyslogd\"] rsyslogd was HUPed"]
    out: dict[str, list[str]] = {"sshd": [], "syslog": [], "access": [], "auditd": [], "iptables": []}
    paths = ["/", "/index.php", "/wp-login.php", "/static/app.js", "/api/v1/items?id={p}", "/search?q=a+b&page=2"]
    for i in range(N):
        u, a, pt = rng.choice(users), ip(), rng.randint(1024, 65535)
        out["sshd"].append(f"{ts(i)} srv{i % 7} sshd[{pt}]: " + rng.choice(sshd_msgs).format(u=u, ip=a, p=pt))
        out["syslog"].append(f"{ts(i)} srv{i % 7} " + rng.choice(syslog_msgs).format(u=u, ip=a, p=pt))
        path = rng.choice(paths).format(p=pt)
        out["access"].append(
            f'{a} - - [{1 + i // 86400 % 28:02d}/Nov/2025:{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d} +0700] '
            f'"GET {path} HTTP/1.1" {rng.choice((200, 200, 304, 404))} {rng.randint(0, 99999)} "-" '
            f'"Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/{rng.randint(90, 130)}.0"')
        out["iptables"].append(
            f"{ts(i)} fw kernel: [{i}.5] [UFW BLOCK] IN=eth0 OUT= MAC=00:11:22 SRC={a} DST=10.0.0.5 LEN=60 TOS=0x00 "
            f"PREC=0x00 TTL=50 ID={pt} DF PROTO=TCP SPT={pt} DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0")
        t = 1764288000 + i
        out["auditd"].append(
            f'type=SYSCALL msg=audit({t}.{i % 1000:03d}:{i}): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 '
            f'a3=4 items=2 ppid=1 pid={pt} auid=1000 uid=1000 gid=1000 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 '
            f'tty=pts0 ses=3 comm="bash" exe="/usr/bin/bash" key="exec"')
    return out


def bench_parse_line(name: str, lines: list[str], path: str | None = None) -> float:
    for line in lines[:2000]:  # warm caches the way a long-running worker has them
        parse_line(line, path=path)
    start = time.perf_counter()
    for line in lines:
        parse_line(line, path=path)
    elapsed = time.perf_counter() - start
    print(f"{name:42s} parse_line      {len(lines) / elapsed:10,.0f} lines/s  ({len(lines)} lines)")
    return len(lines) / elapsed


_NAIVE = re.compile(r"(\w{3} +\d+ [\d:]+) (\S+) (\w+)\[(\d+)\]: (Failed|Accepted) (\S+) for (\S+) from (\S+) port (\d+)")


def bench_naive_baseline(lines: list[str]) -> float:
    """The issue's yardstick: one regex and a dict per line, no time conversion. Timed in the same
    run so the ratio survives a noisy machine."""
    start = time.perf_counter()
    for line in lines:
        m = _NAIVE.match(line)
        if m is not None:
            g = m.groups()
            {"ts": g[0], "host": g[1], "prog": g[2], "pid": g[3], "outcome": g[4], "user": g[6], "ip": g[7], "port": g[8]}
    elapsed = time.perf_counter() - start
    rate = len(lines) / elapsed
    print(f"{'naive regex+dict baseline (sshd lines)':42s} one regex       {rate:10,.0f} lines/s")
    return rate


def bench_batches(name: str, lines: list[str], source: str) -> None:
    n = Normaliser()
    batches = [LineBatch("ag", "a", "h", source, [LogLine(text=t, line_no=j + 1, seq=j + 1, read_at=1.76e9)
                                                  for j, t in enumerate(lines[i:i + 2000], i)])
               for i in range(0, len(lines), 2000)]
    start = time.perf_counter()
    count = 0
    for b in batches:
        count += len(n.normalise_batch(b))
    count += len(n.flush())
    elapsed = time.perf_counter() - start
    print(f"{name:42s} normalise_batch {len(lines) / elapsed:10,.0f} lines/s  -> {count} events")


def main() -> None:
    rng = random.Random(7)
    fams = synth(rng)
    print(f"python {sys.version.split()[0]}, one core, {N} synthetic lines per family")
    naive = bench_naive_baseline(fams["sshd"])
    rates = {}
    for fam, lines in fams.items():
        rates[fam] = bench_parse_line(f"synthetic {fam}", lines, "/var/log/nginx/access.log" if fam == "access" else None)
    print(f"{'ratio sshd parse_line / naive baseline':42s} {rates['sshd'] / naive:.2f}x (same run)")
    for fam, src in (("sshd", "/var/log/auth.log"), ("access", "/var/log/apache2/access.log"),
                     ("auditd", "/var/log/audit/audit.log")):
        bench_batches(f"synthetic {fam}", fams[fam], src)
    real = [("loghub OpenSSH", "loghub_2k_samples/OpenSSH/OpenSSH_2k.log"),
            ("loghub Linux syslog", "loghub_2k_samples/Linux/Linux_2k.log"),
            ("secrepo access", "secrepo_web_access_samples/access.log.2022-12-22"),
            ("scanner access (acunetix)", "apache_scanner_logs_dvwa/acunetix.txt"),
            ("CAM-LDS audit.log.gz", "ait_camlds_attack_manifestations/sequences/3_ssh_apt-26/linuxshare/logs/log/audit/audit.log.gz")]
    for name, rel in real:
        path = DATASETS / rel
        if not path.exists():
            print(f"{name:42s} skipped (corpus absent)")
            continue
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            lines = [ln.rstrip("\n") for ln in fh]
        reps = max(1, 20_000 // max(len(lines), 1))
        bench_parse_line(f"corpus {name}", lines * reps)


if __name__ == "__main__":
    main()
