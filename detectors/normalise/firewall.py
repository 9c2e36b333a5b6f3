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
    kv, quoted, words = _fields(body)
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
    get = kv.get
    src, dst = get("SRC"), get("DST")
    if src and is_ip(src):
        ev["source.ip"] = src
    if dst and is_ip(dst):
        ev["destination.ip"] = dst
    spt, dpt = get("SPT", ""), get("DPT", "")
    if spt.isdigit() and len(spt) <= 5:
        ev["source.port"] = int(spt)
    if dpt.isdigit() and len(dpt) <= 5:
        ev["destination.port"] = int(dpt)
    proto = get("PROTO")
    transport = None
    if proto:
        transport = ev["network.transport"] = _TRANSPORTS.get(proto.upper(), proto.lower())
    iface_in, iface_out = get("IN"), get("OUT")
    if iface_in:
        ev["observer.ingress.interface.name"] = iface_in
    if iface_out:
        ev["observer.egress.interface.name"] = iface_out
    ev["network.direction"] = (
        "inbound" if iface_in and not iface_out else ("outbound" if iface_out and not iface_in else "unknown")
    )
    length = get("LEN", "")
    if length.isdigit():
        ev["network.bytes"] = int(length)
    ttl = get("TTL", "")
    if ttl.isdigit():
        ev["iptables.ttl"] = int(ttl)
    if get("MAC"):
        ev["iptables.mac"] = kv["MAC"]
    if transport == "tcp":
        flags = [f for f in _TCP_FLAGS if f in words]
        if flags:
            ev["iptables.tcp.flags"] = flags
    elif transport == "udp":
        udp_len = get(_UDP_LEN, "")
        if udp_len.isdigit():
            ev["iptables.udp.length"] = int(udp_len)
    elif transport in ("icmp", "ipv6-icmp"):
        for key, field in (("TYPE", "iptables.icmp.type"), ("CODE", "iptables.icmp.code")):
            v = get(key, "")
            if v.isdigit():
                ev[field] = int(v)
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
