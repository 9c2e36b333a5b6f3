"""Netfilter packet logs (iptables/nftables LOG target, UFW, firewalld) -> dataset iptables.log.

The kernel writes `[uptime] <log-prefix>IN=eth0 OUT= MAC=.. SRC=.. DST=.. PROTO=TCP SPT=.. DPT=..`;
the log prefix is free text chosen by the admin ("[UFW BLOCK] ", "FINAL_REJECT: ", "DROP(src wan)"),
so the verdict is inferred from the words it contains.
"""

from __future__ import annotations

import re

from detectors.normalise.ecs import is_ip

_KV = re.compile(r"([A-Z]+)=(\S*)")
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


def parse_netfilter(ev: dict, msg: str) -> None:
    """Fill ev (which already has the syslog header fields) from the kernel message."""
    m = _LINE.match(msg)
    prefix, body = (m.group(1), m.group(2)) if m is not None else ("", msg)
    prefix = prefix.strip()
    kv = dict(_KV.findall(body))
    ev["event.dataset"] = "iptables.log"
    ev["event.module"] = "iptables"
    ev["event.category"] = ["network"]
    upper = prefix.upper()
    action, kind = "log", "info"
    for word, act, typ in _VERDICTS:
        if word in upper:
            action, kind = act, typ
            break
    ev["event.action"] = action
    ev["event.type"] = ["connection", kind]
    if action in ("drop", "reject"):
        ev["event.outcome"] = "failure"
    elif action == "accept":
        ev["event.outcome"] = "success"
    if prefix:
        ev["iptables.prefix"] = prefix
        if upper.startswith("[UFW"):
            ev["observer.product"] = "ufw"
        elif "_" in prefix and (prefix.endswith(":") or "IN_" in prefix or "FINAL" in prefix):
            ev["observer.product"] = "firewalld"
    src, dst = kv.get("SRC"), kv.get("DST")
    if src and is_ip(src):
        ev["source.ip"] = src
    if dst and is_ip(dst):
        ev["destination.ip"] = dst
    spt, dpt = kv.get("SPT", ""), kv.get("DPT", "")
    if spt.isdigit() and len(spt) <= 5:
        ev["source.port"] = int(spt)
    if dpt.isdigit() and len(dpt) <= 5:
        ev["destination.port"] = int(dpt)
    proto = kv.get("PROTO")
    if proto:
        ev["network.transport"] = _TRANSPORTS.get(proto.upper(), proto.lower())
    if kv.get("IN"):
        ev["observer.ingress.interface.name"] = kv["IN"]
    if kv.get("OUT"):
        ev["observer.egress.interface.name"] = kv["OUT"]
    ev["network.direction"] = (
        "inbound"
        if kv.get("IN") and not kv.get("OUT")
        else ("outbound" if kv.get("OUT") and not kv.get("IN") else "unknown")
    )
    if kv.get("LEN", "").isdigit():
        ev["network.bytes"] = int(kv["LEN"])
    if kv.get("TTL", "").isdigit():
        ev["iptables.ttl"] = int(kv["TTL"])
    if kv.get("MAC"):
        ev["iptables.mac"] = kv["MAC"]
    if ev.get("network.transport") == "tcp":
        words = set(body.split())
        flags = [f for f in _TCP_FLAGS if f in words]
        if flags:
            ev["iptables.tcp.flags"] = flags
    ev["network.type"] = "ipv6" if src and ":" in src else "ipv4"


def parse_netfilter_line(text: str) -> dict | None:
    """A bare kernel message without syslog header (e.g. dmesg output)."""
    if "IN=" not in text or " OUT=" not in text:
        return None
    ev = {"message": text, "event.original": text, "event.kind": "event", "process.name": "kernel"}
    parse_netfilter(ev, _UPTIME.sub("", text, count=1))
    return ev
