"""Field helpers of the Windows ECS enrichment (windows_ecs.py, windows_sysmon.py, windows_remote.py):
present values, process ids, paths, processes, users, addresses and Sysmon hashes as ECS fields."""

from __future__ import annotations

from typing import Any

from detectors.normalise.ecs import clean_ip, is_ip
from detectors.normalise.windows_tables import ACCESS_RIGHTS

Event = dict[str, Any]
Data = dict[str, Any]

_EMPTY = frozenset(("", "-", "%%1793", "null", "NULL"))


def _access_list(ev: Event, raw: str) -> None:
    """Keep the raw codes (rules match '%%4417'), add their rendering (rules match 'WriteData')."""
    codes = raw.split()
    if codes and any(c in ACCESS_RIGHTS for c in codes):
        ev["winlog.event_data.AccessListDescription"] = [ACCESS_RIGHTS.get(c, c) for c in codes]


def _v(data: Data, key: str) -> str | None:
    """A present, meaningful value ('-' and empty are Windows for 'none')."""
    v = data.get(key)
    if type(v) is str:
        return None if v in _EMPTY else v
    return None


def _pid(v: str | None) -> int | None:
    """Windows writes process ids in decimal (Sysmon) or hex (Security: '0x1a4')."""
    if not v:
        return None
    try:
        return int(v, 16) if v[:2] in ("0x", "0X") else int(v)
    except ValueError:
        return None


def _basename(path: str) -> str:
    return path.replace("/", "\\").rsplit("\\", 1)[-1]


def _file(ev: Event, prefix: str, path: str) -> None:
    ev[prefix + ".path"] = path
    name = _basename(path)
    ev[prefix + ".name"] = name
    if len(name) < len(path):
        ev[prefix + ".directory"] = path[: len(path) - len(name) - 1]
    if "." in name:
        ev[prefix + ".extension"] = name.rsplit(".", 1)[1].lower()


def _process(ev: Event, prefix: str, image: str | None, pid: str | None = None) -> None:
    if image:
        ev[prefix + ".executable"] = image
        ev[prefix + ".name"] = _basename(image)
    n = _pid(pid)
    if n is not None:
        ev[prefix + ".pid"] = n


def _user(ev: Event, prefix: str, name: str | None, domain: str | None = None, sid: str | None = None) -> None:
    """'DOMAIN\\name' or name + domain."""
    if name and "\\" in name and not domain:
        domain, name = name.split("\\", 1)
    if name:
        ev[prefix + ".name"] = name
        related = ev.setdefault("related.user", [])
        if name not in related:
            related.append(name)
    if domain:
        ev[prefix + ".domain"] = domain
    if sid:
        ev[prefix + ".id"] = sid


def _source(ev: Event, ip: str | None, port: str | None = None, prefix: str = "source") -> None:
    if ip:
        ip = clean_ip(ip.strip("[]"))
        if is_ip(ip):
            ev[prefix + ".ip"] = ip
            related = ev.setdefault("related.ip", [])
            if ip not in related:
                related.append(ip)
        else:
            ev[prefix + ".domain"] = ip
    n = _pid(port)
    if n:
        ev[prefix + ".port"] = n


def _hashes(ev: Event, prefix: str, hashes: str | None) -> None:
    """Sysmon 'SHA1=..,MD5=..,SHA256=..,IMPHASH=..' -> <prefix>.hash.* and <prefix>.pe.imphash."""
    if not hashes:
        return
    for part in hashes.split(","):
        algo, _, value = part.partition("=")
        algo = algo.strip().lower()
        if not value:
            continue
        if algo == "imphash":
            ev[prefix + ".pe.imphash"] = value.lower()
        elif algo in ("md5", "sha1", "sha256"):
            ev[f"{prefix}.hash.{algo}"] = value.lower()
