"""Field-level behaviour of each parser family, on lines written for these tests."""

from __future__ import annotations

import pytest

from collectors.wire import LineBatch, LogLine
from detectors.normalise import Normaliser, parse_line

READ_AT = 1764288000.0  # 2025-11-28T00:00:00Z: a read time for year inference


def p(text: str, **kw) -> dict:
    kw.setdefault("read_at", READ_AT)
    return parse_line(text, **kw)


@pytest.mark.parametrize(
    "line,outcome,user,ip,port,reason",
    [
        (
            "Nov 27 10:00:01 web1 sshd[311]: Failed password for root from 203.0.113.9 port 4022 ssh2",
            "failure",
            "root",
            "203.0.113.9",
            4022,
            None,
        ),
        (
            "Nov 27 10:00:01 web1 sshd[311]: Failed password for invalid user oracle from 2001:db8::5 port 22 ssh2",
            "failure",
            "oracle",
            "2001:db8::5",
            22,
            "invalid user",
        ),
        (
            "Nov 27 10:00:02 web1 sshd[312]: Accepted publickey for deploy from 198.51.100.7 port 50000 ssh2: ED25519 SHA256:q",
            "success",
            "deploy",
            "198.51.100.7",
            50000,
            None,
        ),
        (
            "Nov 27 10:00:03 web1 sshd[313]: Invalid user admin from 203.0.113.10 port 1234",
            "failure",
            "admin",
            "203.0.113.10",
            1234,
            "invalid user",
        ),
        (
            "Nov 27 10:00:04 web1 sshd-session[314]: Connection closed by invalid user test 203.0.113.11 port 999 [preauth]",
            "failure",
            "test",
            "203.0.113.11",
            999,
            "invalid user",
        ),
        # a pre-auth close of a valid user is a failed attempt; '[preauth]' is a marker, not a reason
        (
            "Nov 27 10:00:05 web1 sshd[315]: Connection closed by authenticating user root 203.0.113.12 port 998 [preauth]",
            "failure",
            "root",
            "203.0.113.12",
            998,
            None,
        ),
        (
            "Nov 27 10:00:06 web1 sshd[316]: Disconnected from authenticating user root 203.0.113.13 port 997 [preauth]",
            "failure",
            "root",
            "203.0.113.13",
            997,
            None,
        ),
        # the same messages through the general (non-fast) path: IPv6 peer, trailing blanks
        (
            "Nov 27 10:00:07 web1 sshd[317]: Connection closed by authenticating user root 2001:db8::7 port 996 [preauth]  ",
            "failure",
            "root",
            "2001:db8::7",
            996,
            None,
        ),
        (
            "Nov 27 10:00:08 web1 sshd[318]: Failed password for invalid user x y from 203.0.113.14 port 995 ssh2 [preauth]",
            "failure",
            "x y",
            "203.0.113.14",
            995,
            "invalid user",
        ),
    ],
)
def test_sshd_logins(line, outcome, user, ip, port, reason) -> None:
    ev = p(line)
    assert ev["event.dataset"] == "system.auth" and ev["event.module"] == "system"
    assert ev["event.category"] == ["authentication"]
    assert ev["process.name"] in ("sshd", "sshd-session")
    assert (ev["event.outcome"], ev["user.name"], ev["source.ip"], ev["source.port"]) == (outcome, user, ip, port)
    assert ev.get("event.reason") == reason
    assert ev["host.hostname"] == "web1"


def test_timestamp_zone_and_year_inference() -> None:
    ev = p("Nov 27 10:00:01 web1 sshd[1]: Server listening on 0.0.0.0 port 22.")
    assert ev["@timestamp"] == "2025-11-27T03:00:01.000Z"  # Asia/Ho_Chi_Minh is UTC+7
    ev = p("Dec 31 23:59:59 web1 cron[1]: x", timezone="UTC")  # December read in November: last year
    assert ev["@timestamp"] == "2024-12-31T23:59:59.000Z"
    assert p("2025-03-01T10:00:00.123456+02:00 h app[2]: m")["@timestamp"] == "2025-03-01T08:00:00.123Z"
    ev = p('<34>1 2025-03-01T10:00:00Z h app 9 ID1 [x@1 a="]"] hello')
    assert (ev["@timestamp"], ev["message"], ev["process.name"], ev["log.syslog.severity.code"]) == (
        "2025-03-01T10:00:00.000Z",
        "hello",
        "app",
        2,
    )
    assert p("Nov 27 10:00:01.250 h app: m", timezone="UTC")["@timestamp"].endswith("10:00:01.250Z")


def test_sshd_protocol_errors_and_no_identification() -> None:
    ev = p("Nov 27 10:00:01 h sshd[5]: Did not receive identification string from 192.0.2.50 port 6000")
    assert (ev["event.action"], ev["source.ip"], ev["event.outcome"]) == (
        "ssh_no_identification",
        "192.0.2.50",
        "failure",
    )
    ev = p(
        "Nov 27 10:00:01 h sshd[5]: Unable to negotiate with 192.0.2.51 port 6001: no matching key exchange method found."
    )
    assert (ev["event.action"], ev["source.ip"]) == ("ssh_protocol_error", "192.0.2.51")


def test_sudo_su_pam_user_management() -> None:
    ev = p("Nov 27 10:00:01 h sudo:    alice : TTY=pts/1 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id -u")
    assert (ev["user.name"], ev["user.effective.name"], ev["process.command_line"], ev["event.action"]) == (
        "alice",
        "root",
        "/usr/bin/id -u",
        "sudo_command",
    )
    assert (ev["process.executable"], ev["process.args"], ev["process.name"]) == (
        "/usr/bin/id",
        ["/usr/bin/id", "-u"],
        "sudo",
    )
    ev = p(
        "Nov 27 10:00:01 h sudo:    bob : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/bin/sh"
    )
    assert (ev["event.outcome"], ev["event.action"], ev["user.name"]) == ("failure", "sudo_auth_failure", "bob")
    ev = p(
        "Nov 27 10:00:01 h su[9]: pam_unix(su:auth): authentication failure; logname=bob uid=1000 euid=0 tty=pts/1 ruser=bob rhost=  user=root"
    )
    assert (ev["event.dataset"], ev["event.outcome"], ev["user.name"]) == ("system.auth", "failure", "root")
    ev = p(
        "Nov 27 10:00:01 h useradd[7]: new user: name=backdoor, UID=0, GID=0, home=/root, shell=/bin/bash, from=/dev/pts/0"
    )
    assert (ev["event.category"], ev["event.action"], ev["user.target.name"], ev["user.target.id"]) == (
        ["iam"],
        "user_created",
        "backdoor",
        "0",
    )
    assert "user.name" not in ev  # ECS: user.name is the actor, which useradd does not log
    ev = p("Nov 27 10:00:01 h usermod[8]: add 'eve' to group 'sudo'")
    assert (ev["user.target.name"], ev["group.name"], ev["event.action"]) == ("eve", "sudo", "user_added_to_group")
    ev = p("Nov 27 10:00:01 h systemd-logind[4]: New session 12 of user alice.")
    assert (ev["event.action"], ev["user.name"]) == ("logind_session_start", "alice")
    ev = p("Nov 27 10:00:01 h CRON[4]: (root) CMD (/usr/local/bin/backup.sh)")
    assert (ev["process.command_line"], ev["user.name"]) == ("/usr/local/bin/backup.sh", "root")


def test_auditd_assembly_and_hex_decoding() -> None:
    recs = [
        'type=SYSCALL msg=audit(1764288000.120:77): arch=c000003e syscall=59 success=yes exit=0 ppid=10 pid=11 auid=1000 uid=1000 euid=0 comm="bash" exe="/usr/bin/bash" key="exec"',
        'type=EXECVE msg=audit(1764288000.120:77): argc=3 a0="bash" a1="-c" a2=6563686F2068692026',
        'type=CWD msg=audit(1764288000.120:77): cwd="/tmp"',
        'type=PATH msg=audit(1764288000.120:77): item=0 name="/usr/bin/bash" inode=1 nametype=NORMAL',
        "type=PROCTITLE msg=audit(1764288000.120:77): proctitle=62617368002D63",
        'type=USER_AUTH msg=audit(1764288001.000:78): pid=5 uid=0 auid=4294967295 msg=\'op=PAM:authentication acct="root" exe="/usr/sbin/sshd" hostname=203.0.113.4 addr=203.0.113.4 terminal=ssh res=failed\'',
    ]
    n = Normaliser(default_timezone="UTC")
    batch = LineBatch(
        "agency-1",
        "agent-1",
        "srv1",
        "/var/log/audit/audit.log",
        [LogLine(text=t, line_no=i + 1, offset=i * 100, seq=i + 1) for i, t in enumerate(recs)],
    )
    events = n.normalise_batch(batch) + n.flush()
    assert len(events) == 2
    ex, auth = events
    assert ex["process.args"] == ["bash", "-c", "echo hi &"] and ex["process.command_line"] == "bash -c echo hi &"
    assert (ex["process.executable"], ex["process.working_directory"], ex["file.path"]) == (
        "/usr/bin/bash",
        "/tmp",
        "/usr/bin/bash",
    )
    assert (ex["user.id"], ex["user.effective.id"], ex["event.action"], ex["@timestamp"]) == (
        "1000",
        "0",
        "executed",
        "2025-11-28T00:00:00.120Z",
    )
    assert ex["log.file.line"] == 1 and ex["organization.id"] == "agency-1" and ex["host.name"] == "srv1"
    assert (auth["user.name"], auth["source.ip"], auth["event.outcome"]) == ("root", "203.0.113.4", "failure")
    fwd = p(
        "Nov 27 10:00:01 srv1 audispd: node=srv1 type=USER_CMD msg=audit(1764288000.5:9): pid=1 uid=0 msg='cmd=6C73202F726F6F74 exe=\"/usr/bin/sudo\" res=success'"
    )
    assert (fwd["event.dataset"], fwd["auditd.log.cmd"]) == ("auditd.log", "ls /root")


def test_web_access_formats() -> None:
    ev = p(
        '203.0.113.5 - bob [27/Nov/2025:10:00:00 +0700] "GET /wp-login.php?x=1 HTTP/1.1" 404 153 "http://r/" "curl/8"'
    )
    assert (ev["event.dataset"], ev["source.ip"], ev["http.request.method"], ev["url.path"], ev["url.query"]) == (
        "apache.access",
        "203.0.113.5",
        "GET",
        "/wp-login.php",
        "x=1",
    )
    assert (
        ev["http.response.status_code"],
        ev["http.response.body.bytes"],
        ev["user_agent.original"],
        ev["http.request.referrer"],
        ev["user.name"],
        ev["@timestamp"],
    ) == (404, 153, "curl/8", "http://r/", "bob", "2025-11-27T03:00:00.000Z")
    ev = p('www.example.vn:443 203.0.113.6 - - [27/Nov/2025:10:00:00 +0000] "POST /login HTTP/2.0" 200 12 "-" "UA"')
    assert (ev["url.domain"], ev["destination.port"], ev["source.ip"]) == ("www.example.vn", 443, "203.0.113.6")
    ev = p(
        '10.0.0.1 - - [27/Nov/2025:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "UA" "198.51.100.9, 10.0.0.2"',
        path="/var/log/nginx/access.log",
    )
    assert (ev["event.dataset"], ev["network.forwarded_ip"]) == ("nginx.access", "198.51.100.9")
    ev = p('"203.0.113.7 - - [27/Nov/2025:10:00:00 +0000] "GET /a HTTP/1.1" 200 5 "-" "UA""')  # wrapped export
    assert ev["source.ip"] == "203.0.113.7"


def test_web_error_formats() -> None:
    ev = p(
        "[Thu Nov 27 10:00:00.5 2025] [authz_core:error] [pid 3:tid 4] [client 203.0.113.8:5555] AH01630: client denied"
    )
    assert (ev["event.dataset"], ev["source.ip"], ev["source.port"], ev["log.level"], ev["error.code"]) == (
        "apache.error",
        "203.0.113.8",
        5555,
        "error",
        "AH01630",
    )
    ev = p(
        '2025/11/27 10:00:00 [error] 7#7: *9 open() "/x" failed, client: 203.0.113.9, server: s, request: "GET /x HTTP/1.1", host: "h"'
    )
    assert (ev["event.dataset"], ev["source.ip"], ev["url.path"]) == ("nginx.error", "203.0.113.9", "/x")


@pytest.mark.parametrize(
    "prefix,action,product",
    [("[UFW BLOCK] ", "drop", "ufw"), ("FINAL_REJECT: ", "reject", "firewalld"), ("ACCEPT-SSH ", "accept", None)],
)
def test_netfilter(prefix: str, action: str, product) -> None:
    ev = p(
        f"Nov 27 10:00:01 fw kernel: [ 12.5] {prefix}IN=eth0 OUT= MAC=aa SRC=203.0.113.1 DST=10.0.0.5 LEN=60 "
        "PROTO=TCP SPT=40000 DPT=22 WINDOW=1 SYN URGP=0"
    )
    assert (
        ev["event.dataset"],
        ev["event.action"],
        ev["source.ip"],
        ev["destination.ip"],
        ev["source.port"],
        ev["destination.port"],
        ev["network.transport"],
    ) == ("iptables.log", action, "203.0.113.1", "10.0.0.5", 40000, 22, "tcp")
    assert ev.get("observer.product") == product
    assert ev["iptables.prefix"] == prefix.strip() and ev["iptables.tcp.flags"] == ["SYN"]


def test_netfilter_repeated_keys_keep_the_packets_own() -> None:
    """An ICMP error quotes the packet it answers ([SRC= DST= ... PROTO=UDP ...]); a UDP header's LEN
    follows the IP header's. The packet's own (first, outside the brackets) values win."""
    icmp = p(
        "Nov 27 10:00:01 fw kernel: [ 812.3] [UFW BLOCK] IN=eth0 OUT= MAC=aa:bb SRC=198.51.100.7 DST=10.0.0.5 "
        "LEN=88 TOS=0x00 PREC=0xC0 TTL=64 ID=5 PROTO=ICMP TYPE=3 CODE=3 [SRC=10.0.0.5 DST=198.51.100.7 LEN=60 "
        "TOS=0x00 PREC=0x00 TTL=63 ID=7 PROTO=UDP SPT=53 DPT=40001 LEN=40 ] "
    )
    assert (
        icmp["source.ip"],
        icmp["destination.ip"],
        icmp["network.transport"],
        icmp["network.bytes"],
        icmp["iptables.ttl"],
        "source.port" in icmp,
    ) == ("198.51.100.7", "10.0.0.5", "icmp", 88, 64, False)
    assert (icmp["iptables.icmp.type"], icmp["iptables.icmp.code"]) == (3, 3)
    assert (
        icmp["iptables.icmp.quoted.source.ip"],
        icmp["iptables.icmp.quoted.destination.ip"],
        icmp["iptables.icmp.quoted.transport"],
        icmp["iptables.icmp.quoted.source.port"],
        icmp["iptables.icmp.quoted.destination.port"],
    ) == ("10.0.0.5", "198.51.100.7", "udp", 53, 40001)
    udp = p(
        "Nov 27 10:00:02 fw kernel: [ 813.0] DROP IN=eth0 OUT= MAC=aa SRC=203.0.113.4 DST=10.0.0.5 LEN=76 TOS=0x00 "
        "PREC=0x00 TTL=52 ID=1 DF PROTO=UDP SPT=123 DPT=123 LEN=56"
    )
    assert (udp["network.bytes"], udp["iptables.udp.length"], udp["destination.port"]) == (76, 56, 123)
    assert "iptables.tcp.flags" not in udp


def test_jsonl_keeps_ecs_and_nests_the_rest() -> None:
    ev = p(
        '{"@timestamp": "2025-11-27T10:00:00+07:00", "source": {"ip": "203.0.113.2"}, "level": "warn", "msg": "hi"}',
        dataset="portal.app",
    )
    assert (ev["@timestamp"], ev["source.ip"], ev["portal.level"], ev["message"], ev["event.dataset"]) == (
        "2025-11-27T03:00:00.000Z",
        "203.0.113.2",
        "warn",
        "hi",
        "portal.app",
    )


def test_failures_are_kept_and_batch_metadata_stamped() -> None:
    n = Normaliser()
    lines = [
        LogLine(text="%%% not a log %%%", line_no=3, offset=40, seq=9, read_at=READ_AT, flags=["truncated"]),
        LogLine(text="Nov 27 10:00:01 sshd[1]: Invalid user x from 203.0.113.3", line_no=4, seq=10, read_at=READ_AT),
    ]
    fail, ok = n.normalise_batch(LineBatch("ag", "a1", "srv9", "/var/log/auth.log", lines))
    assert fail["tags"] == ["_socpipe_parse_failure", "truncated"] and fail["event.original"] == "%%% not a log %%%"
    assert (fail["@timestamp"], fail["log.file.line"], fail["log.offset"], fail["socpipe.seq"]) == (
        "2025-11-28T00:00:00.000Z",
        3,
        40,
        9,
    )
    assert (ok["host.name"], ok["log.file.path"], ok["agent.id"], ok["agent.type"]) == (
        "srv9",
        "/var/log/auth.log",
        "a1",
        "socpipe",
    )
    listener = n.normalise_batch(LineBatch("ag", "a1", "srv9", "syslog-udp:5514", lines[1:]))[0]
    assert "log.file.path" not in listener
