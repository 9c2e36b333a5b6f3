"""Netfilter logs: the one-match path for the kernel's layout (firewall._KERNEL_LAYOUT) must give exactly
the event of the general token loop, and both the events the parser gave before it existed."""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.normalise import firewall, parse_line

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
NEVER = re.compile(r"(?!)")
READ_AT = 1764288000.0


def netfilter(msg: str) -> list:
    """The event's items in order, or the error it raised (a digit int() refuses, such as '²', raises
    in both paths as it did before; parse_line keeps such a line with a parse-failure tag)."""
    ev: dict = {}
    try:
        firewall.parse_netfilter(ev, msg)
    except ValueError as exc:
        return ["raised", str(exc)]
    return list(ev.items())


def general(monkeypatch: pytest.MonkeyPatch, msg: str) -> list:
    with monkeypatch.context() as m:
        m.setattr(firewall, "_KERNEL_LAYOUT", NEVER)
        return netfilter(msg)


odd = st.sampled_from(["=", "==", "x=y", "\t", "\x1c", "\xa0", " ", "[", "]", "²", "٣", ":", "-"])
value = st.one_of(
    st.sampled_from(["", "0", "22", "65535", "99999", "123456", "0x00", "eth0", "a=b", "10.0.0.5", "2001:db8::1"]),
    st.text(st.sampled_from("0123456789abcdefABC.:=_-"), max_size=8),
    st.tuples(st.sampled_from(["1", "22", ""]), odd).map("".join),
)
ipv4 = st.one_of(
    st.tuples(*[st.integers(0, 300).map(str)] * 4).map(".".join),
    st.sampled_from(["fe80::1", "2001:db8::5", "", "x", "1.2.3"]),
)
key = st.sampled_from(
    ["SRC", "DST", "LEN", "TTL", "PROTO", "SPT", "DPT", "MAC", "IN", "OUT", "TYPE", "CODE", "WINDOW", "RES", "URGP"]
    + ["SEQ", "ACK", "UID", "GID", "MARK", "XLEN", "LENX", "ID"]
)
bare = st.sampled_from(["DF", "CE", "MF", "SYN", "ACK", "FIN", "RST", "PSH", "URG", "CWR", "ECE", "syn", "INCOMPLETE"])
token = st.one_of(st.tuples(key, value).map("=".join), bare, odd)
proto = st.sampled_from(["TCP", "UDP", "ICMP", "ICMPv6", "2", "17", "gre", "", "tcp", "UDPLITE"])


@st.composite
def bodies(draw) -> str:
    sep = draw(st.sampled_from([" ", " ", " ", " ", "  ", "\t"]))
    parts = [f"IN={draw(value)}", f"OUT={draw(st.sampled_from(['', 'eth1', 'br0']))}"]
    if draw(st.booleans()):
        parts.append(f"MAC={draw(st.sampled_from(['', '00:11:22:33', 'aa:bb']))}")
    parts += [f"SRC={draw(ipv4)}", f"DST={draw(ipv4)}", f"LEN={draw(value)}", "TOS=0x00", "PREC=0x00"]
    parts += [f"TTL={draw(value)}", f"ID={draw(value)}"]
    parts += draw(st.lists(bare, max_size=3))
    parts.append(f"PROTO={draw(proto)}")
    if draw(st.booleans()):
        parts += [f"SPT={draw(value)}", f"DPT={draw(value)}"]
        if draw(st.booleans()):
            parts.append(f"LEN={draw(value)}")
    if draw(st.booleans()):
        parts += [f"TYPE={draw(value)}", f"CODE={draw(value)}"]
    parts += draw(st.lists(token, max_size=6))
    if draw(st.booleans()):
        parts.append("[SRC=10.0.0.5 DST=198.51.100.7 LEN=60 PROTO=UDP SPT=53 DPT=40001 LEN=40 ]")
    if draw(st.booleans()) and len(parts) > 3:  # drop one of the fixed keys: the layout no longer holds
        del parts[draw(st.integers(2, len(parts) - 1))]
    return sep.join(parts) + draw(st.sampled_from(["", " ", "  ", "\n"]))


prefixes = st.sampled_from(["", "[UFW BLOCK] ", "[ 812.3] [UFW BLOCK] ", "[1.5] DROP ", "FINAL_REJECT: ", "x]"])


@settings(max_examples=1500, deadline=None)
@given(prefixes, bodies())
def test_kernel_layout_match_gives_the_general_paths_event(prefix: str, body: str) -> None:
    msg = prefix + body
    with pytest.MonkeyPatch.context() as mp:
        want = general(mp, msg)
    assert netfilter(msg) == want


def test_the_layout_is_the_kernels_own() -> None:
    """The shapes the kernel writes are read by the one match (else the fast path helps no one)."""
    for body in (
        "IN=eth0 OUT= MAC=00:11:22 SRC=1.2.3.4 DST=10.0.0.5 LEN=60 TOS=0x00 PREC=0x00 TTL=50 ID=7 DF PROTO=TCP "
        "SPT=4000 DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0 ",
        "IN=lo OUT= MAC=00:00 SRC=127.0.0.1 DST=127.0.0.53 LEN=76 TOS=0x00 PREC=0x00 TTL=64 ID=25029 DF PROTO=UDP "
        "SPT=49007 DPT=53 LEN=56 ",
        "IN= OUT=eth0 SRC=10.0.0.5 DST=8.8.8.8 LEN=84 TOS=0x00 PREC=0x00 TTL=64 ID=1 PROTO=ICMP",
    ):
        assert firewall._KERNEL_LAYOUT.fullmatch(body) is not None, body
    assert firewall._KERNEL_LAYOUT.fullmatch("IN=eth0 OUT= SRC=1.2.3.4 DST=1.2.3.5 LEN=1 PROTO=TCP") is None


def _corpus_lines() -> list[str]:
    files = sorted(DATASETS.glob("crowdsec_hub_tests/*iptables*/*.log")) + [
        DATASETS / "wazuh_ruleset_tests/iptables.ini"
    ]
    lines = []
    for f in files:
        if f.exists():
            lines += [ln.rstrip("\n") for ln in f.read_text(encoding="utf-8", errors="replace").splitlines()]
    return [ln.split("= ", 1)[-1] if ln.startswith("log ") else ln for ln in lines if "SRC=" in ln]


def test_corpus_lines_read_the_same_by_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _corpus_lines()
    if not lines:
        pytest.skip("shared iptables corpora absent")
    fast = 0
    for line in lines:
        ev = parse_line(line, read_at=READ_AT)
        with monkeypatch.context() as m:
            m.setattr(firewall, "_KERNEL_LAYOUT", NEVER)
            assert list(parse_line(line, read_at=READ_AT).items()) == list(ev.items()), line
        at = line.find("IN=")
        fast += at >= 0 and firewall._KERNEL_LAYOUT.fullmatch(line[at:]) is not None
    assert fast >= len(lines) // 2  # most real lines take the one match


def _pinned_lines() -> list[str]:
    rng = random.Random(15)
    out = []
    for i in range(400):
        proto = rng.choice(["TCP", "UDP", "ICMP", "2"])
        l4 = {
            "TCP": f"SPT={rng.randint(1, 65535)} DPT={rng.choice([22, 80, 443])} WINDOW=1024 RES=0x00 "
            + rng.choice(["SYN ", "ACK PSH ", "ACK FIN ", "RST "])
            + "URGP=0",
            "UDP": f"SPT={rng.randint(1, 65535)} DPT=53 LEN={rng.randint(8, 512)}",
            "ICMP": "TYPE=3 CODE=3 [SRC=10.0.0.5 DST=198.51.100.7 LEN=60 TOS=0x00 PREC=0x00 TTL=63 ID=7 PROTO=UDP "
            "SPT=53 DPT=40001 LEN=40 ]",
            "2": "",
        }[proto]
        mac = rng.choice(["MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:08:00 ", ""])
        prefix = rng.choice(["[UFW BLOCK] ", "IPTABLES-DROP: ", "FINAL_REJECT: ", "", "[UFW ALLOW] "])
        out.append(
            f"Nov 27 10:{i // 60 % 60:02d}:{i % 60:02d} fw kernel: [{i}.{i:04d}] {prefix}IN=eth0 OUT= {mac}"
            f"SRC=203.0.113.{i % 250} DST=10.0.0.5 LEN={40 + i} TOS=0x00 PREC=0x00 TTL=64 ID={i} "
            f"{rng.choice(['DF ', ''])}PROTO={proto} {l4}{rng.choice(['', ' '])}"
        )
    return out


def test_events_as_before_the_fast_path() -> None:
    """Every event of these lines (key order included) as the parser gave it before (digest computed
    on 14344c3, before the one-match path)."""
    lines = _pinned_lines()
    blob = json.dumps([parse_line(line, read_at=READ_AT) for line in lines], sort_keys=False).encode()
    assert hashlib.sha256(blob).hexdigest() == PINNED


PINNED = "2fa07bc7d80441e2a982e2304d2132879ee200cc59ce876117d576ebcabd5d9e"
