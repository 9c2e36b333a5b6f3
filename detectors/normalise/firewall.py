"""Netfilter packet logs (iptables/nftables LOG target, UFW, firewalld) -> dataset iptables.log.

The kernel writes `[uptime] <log-prefix>IN=eth0 OUT= MAC=.. SRC=.. DST=.. PROTO=TCP SPT=.. DPT=..`;
the log prefix is free text chosen by the admin ("[UFW BLOCK] ", "FINAL_REJECT: ", "DROP(src wan)"),
so the verdict is inferred from the words it contains.
"""

from __future__ import annotations

import re
from typing import Any

from detectors.normalise.ecs import is_ip

_UPTIME = re.compile(r"\[\s*\d+\.\d+\]\s?")
_LINE = re.compile(r"(?:\[\s*\d+\.\d+\]\s?)?(.*?)(IN=\S* OUT=.*)", re.S)
_VERDICTS = (  # (word in the prefix, event.action, event.type)
    ("BLOCK", "drop", "denied"),
    ("DROP", "drop", "denied"),
    ("DENY", "drop", "denied"),
    ("REJECT", "reject", "denied"),
    ("ALLOW", "accept", "allowed"),
    ("ACCEPT", "accept", "allowed"),
    ("AUDIT", "log", "info"),
    ("LIMIT", "limit", "denied"),
)
_TRANSPORTS = {
    "TCP": "tcp",
    "UDP": "udp",
    "ICMP": "icmp",
    "ICMPV6": "ipv6-icmp",
    "SCTP": "sctp",
    "GRE": "gre",
    "ESP": "esp",
    "AH": "ah",
    "2": "igmp",
    "1": "icmp",
    "6": "tcp",
    "17": "udp",
    "58": "ipv6-icmp",
}
_TCP_FLAGS = ("SYN", "ACK", "FIN", "RST", "PSH", "URG", "CWR", "ECE")


# The kernel's own layout (nf_log_syslog) of a packet that quotes none: IN OUT [MAC] SRC DST LEN TOS PREC
# TTL ID, bare words (DF, CE, MF), PROTO [SPT DPT [LEN]], then tokens that repeat none of the keys read
# below. Read by one C-level match (possessive, so it never backtracks); any other line by the loop of
# _fields. Both give the same fields (tests: test_normalise_netfilter).
_READ_KEYS = "IN|OUT|MAC|SRC|DST|LEN|TTL|PROTO|SPT|DPT|TYPE|CODE"
_KERNEL_LAYOUT = re.compile(
    r"IN=(\S*+) OUT=(\S*+) (?:MAC=(\S*+) )?SRC=(\S*+) DST=(\S*+) LEN=(\S*+) TOS=\S*+ PREC=\S*+ TTL=(\S*+) "
    r"ID=\S*+((?: [A-Z]++(?= ))*+) PROTO=(\S*+)(?: SPT=(\S*+) DPT=(\S*+)(?: LEN=(\S*+))?)?"
    rf"((?: (?!(?:{_READ_KEYS})=)\S++)*+) ?"
)


def _fields(body: str) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(packet fields, fields of the packet quoted in an ICMP error, bare words such as TCP flags).

    Keys repeat within one line: an ICMP error quotes the offending packet in brackets
    (`[SRC=.. DST=.. LEN=.. PROTO=UDP ..]`), and a UDP header's LEN follows the IP header's. The
    first occurrence outside the brackets is the packet's own; the quoted packet is kept apart, and
    the second LEN of a UDP packet is its UDP length (`_UDP_LEN`)."""
    outer, bracket, inner = body.partition("[")
    kv: dict[str, str] = {}
    words: list[str] = []
    for token in outer.split():
        key, eq, value = token.partition("=")
        if not eq:
            words.append(token)
        elif key not in kv:
            kv[key] = value
        elif key == "LEN":
            kv[_UDP_LEN] = value
    quoted: dict[str, str] = {}
    if bracket:
        for token in inner.partition("]")[0].split():
            key, eq, value = token.partition("=")
            if eq and key not in quoted:
                quoted[key] = value
    return kv, quoted, words


_UDP_LEN = "LEN/udp"


_PREFIXES: dict[str, tuple[str, str, str | None, str | None]] = {}


def _verdict(prefix: str) -> tuple[str, str, str | None, str | None]:
    """(event.action, event.type, event.outcome, observer.product) read from an admin's log prefix."""
    upper = prefix.upper()
    action, kind = "log", "info"
    for word, act, typ in _VERDICTS:
        if word in upper:
            action, kind = act, typ
            break
    outcome = "failure" if action in ("drop", "reject") else "success" if action == "accept" else None
    product = None
    if upper.startswith("[UFW"):
        product = "ufw"
    elif "_" in prefix and (prefix.endswith(":") or "IN_" in prefix or "FINAL" in prefix):
        product = "firewalld"
    return action, kind, outcome, product


def parse_netfilter(ev: dict[str, Any], msg: str) -> None:
    """Fill ev (which already has the syslog header fields) from the kernel message."""
    at = msg.find("IN=")
    if (at == 0 or (at > 0 and msg[at - 1] in " ]")) and msg.startswith(" OUT=", msg.find(" ", at)):
        prefix, body = msg[:at], msg[at:]
        if prefix[:1] == "[":  # kernel uptime "[ 1234.5678] " before the admin's log prefix
            close = prefix.find("]")
            whole, dot, frac = prefix[1:close].lstrip().partition(".")
            if dot and whole.isdigit() and frac.isdigit():
                prefix = prefix[close + 1 :]
    else:
        m = _LINE.match(msg)
        prefix, body = (m.group(1), m.group(2)) if m is not None else ("", msg)
    prefix = prefix.strip()
    layout = _KERNEL_LAYOUT.fullmatch(body) if "[" not in body else None
    quoted: dict[str, str]
    if layout is not None:  # the packet's fields straight from the match: no dict of every token
        iface_in, iface_out, mac, src, dst, length, ttl, bare, proto, spt, dpt, udp_len, tail = layout.groups()
        spt, dpt, udp_len = spt or "", dpt or "", udp_len or ""
        icmp_type = icmp_code = ""  # TYPE= and CODE= are not in this layout
        quoted = {}
    else:
        kv, quoted, words = _fields(body)
        get = kv.get
        src, dst, spt, dpt, proto = get("SRC"), get("DST"), get("SPT", ""), get("DPT", ""), get("PROTO")
        iface_in, iface_out, mac, length, ttl = get("IN"), get("OUT"), get("MAC"), get("LEN", ""), get("TTL", "")
        udp_len, icmp_type, icmp_code = get(_UDP_LEN, ""), get("TYPE", ""), get("CODE", "")
    ev["event.dataset"] = "iptables.log"
    ev["event.module"] = "iptables"
    ev["event.category"] = ["network"]
    verdict = _PREFIXES.get(prefix)
    if verdict is None:
        verdict = _verdict(prefix)
        if len(_PREFIXES) < 1024:  # admins choose a handful of prefixes; forged lines may vary it
            _PREFIXES[prefix] = verdict
    action, kind, outcome, product = verdict
    ev["event.action"] = action
    ev["event.type"] = ["connection", kind]
    if outcome:
        ev["event.outcome"] = outcome
    if prefix:
        ev["iptables.prefix"] = prefix
        if product:
            ev["observer.product"] = product
    if src and is_ip(src):
        ev["source.ip"] = src
    if dst and is_ip(dst):
        ev["destination.ip"] = dst
    if spt.isdigit() and len(spt) <= 5:
        ev["source.port"] = int(spt)
    if dpt.isdigit() and len(dpt) <= 5:
        ev["destination.port"] = int(dpt)
    transport = None
    if proto:
        transport = _TRANSPORTS.get(proto) or _TRANSPORTS.get(proto.upper(), proto.lower())  # keys are upper case
        ev["network.transport"] = transport
    if iface_in:
        ev["observer.ingress.interface.name"] = iface_in
    if iface_out:
        ev["observer.egress.interface.name"] = iface_out
    ev["network.direction"] = (
        "inbound" if iface_in and not iface_out else ("outbound" if iface_out and not iface_in else "unknown")
    )
    if length.isdigit():
        ev["network.bytes"] = int(length)
    if ttl.isdigit():
        ev["iptables.ttl"] = int(ttl)
    if mac:
        ev["iptables.mac"] = mac
    if transport == "tcp":
        if layout is not None:  # a flag has no '=': among all tokens after ID it is among the bare words
            words = (bare + tail).split()
        flags = [f for f in _TCP_FLAGS if f in words]
        if flags:
            ev["iptables.tcp.flags"] = flags
    elif transport == "udp":
        if udp_len.isdigit():
            ev["iptables.udp.length"] = int(udp_len)
    elif transport in ("icmp", "ipv6-icmp"):
        if icmp_type.isdigit():
            ev["iptables.icmp.type"] = int(icmp_type)
        if icmp_code.isdigit():
            ev["iptables.icmp.code"] = int(icmp_code)
        if quoted:  # an ICMP error about this packet: what it was sent in answer to
            for key, field in (
                ("SRC", "iptables.icmp.quoted.source.ip"),
                ("DST", "iptables.icmp.quoted.destination.ip"),
                ("PROTO", "iptables.icmp.quoted.transport"),
            ):
                if quoted.get(key):
                    ev[field] = quoted[key] if key != "PROTO" else _TRANSPORTS.get(quoted[key], quoted[key].lower())
            for key, field in (
                ("SPT", "iptables.icmp.quoted.source.port"),
                ("DPT", "iptables.icmp.quoted.destination.port"),
            ):
                v = quoted.get(key, "")
                if v.isdigit() and len(v) <= 5:
                    ev[field] = int(v)
    ev["network.type"] = "ipv6" if src and ":" in src else "ipv4"


def parse_netfilter_line(text: str) -> dict[str, Any] | None:
    """A bare kernel message without syslog header (e.g. dmesg output)."""
    if "IN=" not in text or " OUT=" not in text:
        return None
    ev = {"message": text, "event.original": text, "event.kind": "event", "process.name": "kernel"}
    parse_netfilter(ev, _UPTIME.sub("", text, count=1))
    return ev
