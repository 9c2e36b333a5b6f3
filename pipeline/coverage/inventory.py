"""The province's inventory: which agencies the SOC must monitor and which log sources each owes.

Parsing is pure (`parse_inventory`): one bad entry is reported by its key and dropped, the others
stay, so a typo in one commune never blinds the SOC to the other 169 agencies. `InventoryFile`
re-reads the file when it changes (hot reload) and keeps the last good inventory when the whole
file is unreadable.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from collectors.listeners import computer_slug
from detectors.common.durations import parse_duration

log = logging.getLogger("socpipe.coverage.inventory")

TIERS = ("department", "district", "commune", "public_service_unit")
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True, slots=True)
class ExpectedSource:
    """A log source an agency owes the SOC; `path` is what the agent reports as its source (glob ok)."""

    name: str
    path: str
    host: str = ""  # empty: any host of the agency
    dataset: str = ""
    silent_after_s: float | None = None  # None: the service's default threshold

    def matches(self, source: str, host: str) -> bool:
        if self.host and host and self.host != host:
            return False
        if self.host and not host:
            return False
        return source == self.path or fnmatch.fnmatchcase(source, self.path)


@dataclass(frozen=True, slots=True)
class Agency:
    id: str
    name: str
    tier: str
    parent: str = ""
    contact: dict[str, str] = field(default_factory=dict)
    sources: tuple[ExpectedSource, ...] = ()  # empty: any source of the agency counts
    decommissioned: bool = False


@dataclass(frozen=True, slots=True)
class Inventory:
    agencies: tuple[Agency, ...] = ()
    errors: tuple[str, ...] = ()  # one message per invalid entry, naming its key

    def by_id(self) -> dict[str, Agency]:
        return {a.id: a for a in self.agencies}


def parse_inventory(data: Any) -> Inventory:
    """Validate a loaded YAML document; keep every valid agency, report every invalid one by key."""
    if not isinstance(data, dict) or not isinstance(data.get("agencies"), list):
        return Inventory(errors=("agencies: the inventory must be a mapping with a list under 'agencies'",))
    defaults = data.get("defaults") or {}
    errors: list[str] = []
    default_silent: float | None = None
    if not isinstance(defaults, dict):
        errors.append("defaults: must be a mapping")
    elif "silent_after" in defaults:
        try:
            default_silent = parse_duration(defaults["silent_after"])
        except ValueError as exc:
            errors.append(f"defaults.silent_after: {exc}")
    agencies: list[Agency] = []
    seen: set[str] = set()
    for i, entry in enumerate(data["agencies"]):
        key = f"agencies[{i}]"
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            key += f" (id={entry['id']})"
        try:
            agency = _parse_agency(entry, key, default_silent)
        except ValueError as exc:
            errors.append(str(exc))
            continue
        if agency.id in seen:
            errors.append(f"{key}.id: duplicate agency id {agency.id!r} (the first entry is kept)")
            continue
        seen.add(agency.id)
        agencies.append(agency)
    return Inventory(agencies=tuple(agencies), errors=tuple(errors))


def _parse_agency(entry: Any, key: str, default_silent: float | None) -> Agency:
    if not isinstance(entry, dict):
        raise ValueError(f"{key}: must be a mapping with id, name, tier")
    known = {"id", "name", "tier", "parent", "contact", "sources", "windows_hosts", "decommissioned"}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise ValueError(f"{key}.{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")
    agency_id = entry.get("id")
    if not isinstance(agency_id, str) or not _ID.match(agency_id):
        raise ValueError(f"{key}.id: required, lower-case letters, digits, '.', '_' or '-' (got {agency_id!r})")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{key}.name: required text")
    tier = entry.get("tier")
    if tier not in TIERS:
        raise ValueError(f"{key}.tier: one of {', '.join(TIERS)} (got {tier!r})")
    contact = entry.get("contact") or {}
    if isinstance(contact, str):
        contact = {"name": contact}
    if not isinstance(contact, dict):
        raise ValueError(f"{key}.contact: must be a mapping (name, email, phone) or a text")
    decommissioned = entry.get("decommissioned", False)
    if not isinstance(decommissioned, bool):
        raise ValueError(f"{key}.decommissioned: expected true or false")
    raw_sources = entry.get("sources") or []
    if not isinstance(raw_sources, list):
        raise ValueError(f"{key}.sources: must be a list")
    sources: list[ExpectedSource] = []
    names: set[str] = set()
    for j, src in enumerate(raw_sources):
        skey = f"{key}.sources[{j}]"
        source = _parse_source(src, skey, default_silent)
        if source.name in names:
            raise ValueError(f"{skey}.name: duplicate source name {source.name!r} in this agency")
        names.add(source.name)
        sources.append(source)
    raw_hosts = entry.get("windows_hosts") or []
    if not isinstance(raw_hosts, list):
        raise ValueError(f"{key}.windows_hosts: must be a list of Windows computer names")
    for j, host in enumerate(raw_hosts):
        source = _windows_source(host, f"{key}.windows_hosts[{j}]", default_silent)
        if source.name in names:
            raise ValueError(f"{key}.windows_hosts[{j}]: {source.name!r} listed twice in this agency")
        names.add(source.name)
        sources.append(source)
    return Agency(
        id=agency_id,
        name=name.strip(),
        tier=tier,
        parent=str(entry.get("parent") or ""),
        contact={str(k): str(v) for k, v in contact.items()},
        sources=tuple(sources),
        decommissioned=decommissioned,
    )


def _parse_source(src: Any, key: str, default_silent: float | None) -> ExpectedSource:
    if not isinstance(src, dict):
        raise ValueError(f"{key}: must be a mapping with name and path")
    known = {"name", "path", "host", "dataset", "silent_after"}
    unknown = sorted(set(src) - known)
    if unknown:
        raise ValueError(f"{key}.{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")
    name, path = src.get("name"), src.get("path")
    if not isinstance(name, str) or not _ID.match(name):
        raise ValueError(f"{key}.name: required, lower-case letters, digits, '.', '_' or '-' (got {name!r})")
    if not isinstance(path, str) or not path.strip():
        raise ValueError(f"{key}.path: required (the source as the agent reports it, e.g. /var/log/auth.log)")
    silent = _silent_after(src, key, default_silent)
    return ExpectedSource(
        name=name,
        path=path.strip(),
        host=str(src.get("host") or ""),
        dataset=str(src.get("dataset") or ""),
        silent_after_s=silent,
    )


def _windows_source(entry: Any, key: str, default_silent: float | None) -> ExpectedSource:
    """`FS01` or `{host: FS01, silent_after: 1h}`: a Windows server forwarding its event logs to the
    agency's agent (a `dataset: windows` listener), whose deliveries arrive as `winlog-*/<computer>`."""
    if isinstance(entry, str):
        entry = {"host": entry}
    if not isinstance(entry, dict) or not isinstance(entry.get("host"), str):
        raise ValueError(f"{key}: a Windows computer name, or a mapping with host (and silent_after)")
    unknown = sorted(set(entry) - {"host", "silent_after"})
    if unknown:
        raise ValueError(f"{key}.{unknown[0]}: unknown key (known: host, silent_after)")
    slug = computer_slug(entry["host"])
    if not slug or not _ID.match(slug):
        raise ValueError(f"{key}.host: not a computer name ({entry['host']!r})")
    silent = _silent_after(entry, key, default_silent)
    return ExpectedSource(
        name=f"windows-{slug}"[:64], path=f"winlog-*/{slug}", dataset="windows", silent_after_s=silent
    )


def _silent_after(entry: dict[str, Any], key: str, default: float | None) -> float | None:
    """An entry's own `silent_after` in seconds, else the inventory's default; a bad one names its key."""
    if "silent_after" not in entry:
        return default
    try:
        return parse_duration(entry["silent_after"])
    except ValueError as exc:
        raise ValueError(f"{key}.silent_after: {exc}") from None


def load_inventory(path: str | Path) -> Inventory:
    """Read and parse a file; an unreadable file or broken YAML is an error naming the file."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{p}: cannot read inventory: {exc.strerror}") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValueError(f"{p}: not valid YAML: {exc}") from exc
    return parse_inventory(data)


class InventoryFile:
    """The inventory at a path, re-read when its mtime or size changes (checked by `refresh`)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._stamp: tuple[float, int] | None = None
        self.current = Inventory()
        self.file_error = ""  # set when the last read failed as a whole; `current` is then the last good one
        self.loaded_at = 0.0

    def refresh(self, now: float) -> bool:
        """Reload if the file changed; True when `current` was replaced."""
        try:
            st = os.stat(self.path)
        except OSError as exc:
            self.file_error = f"{self.path}: {exc.strerror}"
            return False
        stamp = (st.st_mtime, st.st_size)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            inv = load_inventory(self.path)
        except ValueError as exc:
            self.file_error = str(exc)
            log.error("inventory.reload_failed error=%r kept_agencies=%d", str(exc), len(self.current.agencies))
            return False
        self.file_error = ""
        self.current = inv
        self.loaded_at = now
        for err in inv.errors:
            log.error("inventory.invalid_entry %s", err)
        log.info("inventory.loaded path=%s agencies=%d invalid=%d", self.path, len(inv.agencies), len(inv.errors))
        return True
