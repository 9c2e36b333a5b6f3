"""Security 4657 ("A registry value was modified") in Sysmon 12/13's terms, rendered beside its raw
fields so SigmaHQ's registry_set / registry_delete / registry_event rules (which name Sysmon's
TargetObject, Details and EventType) also work on servers that audit registry keys with a SACL and
run no Sysmon - as process_creation_rendered does for 4688.

4657 names the key in the kernel's form (\\REGISTRY\\MACHINE\\SYSTEM\\ControlSet001\\...), the value
separately (ObjectValueName), its operation and types as %% codes, and a DWORD in decimal; Sysmon
writes HKLM\\System\\CurrentControlSet\\...\\Value, 'SetValue' and 'DWORD (0x00000001)'. The raw
fields stay as Windows wrote them; the rendered ones get their own names:

- RegistrySetPath / RegistrySetDetails: a value created (%%1904) or modified (%%1905)
- RegistryDeletePath: a value deleted (%%1906)
- RegistryEventType: 'SetValue' or 'DeleteValue'
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# msobjs.dll's registry value types: %%1872 + the REG_* number (REG_NONE 0 ... REG_QWORD 11)
_VALUE_TYPES = {
    "%%1872": "REG_NONE",
    "%%1873": "REG_SZ",
    "%%1874": "REG_EXPAND_SZ",
    "%%1875": "REG_BINARY",
    "%%1876": "REG_DWORD",
    "%%1877": "REG_DWORD_BIG_ENDIAN",
    "%%1878": "REG_LINK",
    "%%1879": "REG_MULTI_SZ",
    "%%1880": "REG_RESOURCE_LIST",
    "%%1881": "REG_FULL_RESOURCE_DESCRIPTOR",
    "%%1882": "REG_RESOURCE_REQUIREMENTS_LIST",
    "%%1883": "REG_QWORD",
}
_SET = {"%%1904", "%%1905"}  # new registry value created, existing registry value modified
_DELETE = "%%1906"  # registry value deleted

_ROOTS = (("\\REGISTRY\\MACHINE", "HKLM"), ("\\REGISTRY\\USER", "HKU"))
# Sysmon writes the running control set as CurrentControlSet, whichever ControlSet00N it is
_CONTROL_SET = re.compile(r"^(HKLM\\SYSTEM\\)ControlSet\d{3}(?=\\|$)", re.IGNORECASE)


def sysmon_key(object_name: str) -> str:
    """'\\REGISTRY\\MACHINE\\SYSTEM\\ControlSet001\\Services' -> 'HKLM\\SYSTEM\\CurrentControlSet\\Services'."""
    for kernel, hive in _ROOTS:
        if object_name[: len(kernel)].upper() == kernel and object_name[len(kernel) : len(kernel) + 1] in ("", "\\"):
            object_name = hive + object_name[len(kernel) :]
            break
    return _CONTROL_SET.sub(r"\1CurrentControlSet", object_name)


def _number(text: str) -> int | None:
    t = text.strip()
    try:
        return int(t, 16) if t[:2].lower() == "0x" else int(t)
    except ValueError:
        return None


def sysmon_details(value_type: str | None, value: str | None) -> str | None:
    """A 4657 NewValue as Sysmon 13 writes Details: 'DWORD (0x00000001)', 'QWORD (0x00000000-0x00000001)',
    'Binary Data', strings as they are; None when there is nothing to render."""
    kind = _VALUE_TYPES.get((value_type or "").strip(), (value_type or "").strip().upper())
    if kind in ("REG_DWORD", "REG_DWORD_BIG_ENDIAN"):
        n = _number(value or "")
        return None if n is None or not 0 <= n <= 0xFFFFFFFF else f"DWORD (0x{n:08x})"
    if kind == "REG_QWORD":
        n = _number(value or "")
        return (
            None if n is None or not 0 <= n <= 0xFFFFFFFFFFFFFFFF else f"QWORD (0x{n >> 32:08x}-0x{n & 0xFFFFFFFF:08x})"
        )
    if kind in ("REG_BINARY", "REG_RESOURCE_LIST", "REG_FULL_RESOURCE_DESCRIPTOR", "REG_RESOURCE_REQUIREMENTS_LIST"):
        return "Binary Data"
    if value is None or value in ("-", ""):
        return "(Empty)" if kind in ("REG_SZ", "REG_EXPAND_SZ", "REG_MULTI_SZ") else None
    return value


def registry_value_rendered(d: Mapping[str, object]) -> dict[str, str]:
    """The rendered fields of one 4657 (see the module's docstring); {} when it names no key."""

    def v(key: str) -> str | None:
        x = d.get(key)
        return x if type(x) is str else None

    key, op = v("ObjectName"), (v("OperationType") or "").strip()
    if not key or key == "-" or (op not in _SET and op != _DELETE):
        return {}
    name = v("ObjectValueName")
    path = sysmon_key(key) + "\\" + (name if name and name != "-" else "(Default)")
    if op == _DELETE:
        return {"winlog.event_data.RegistryDeletePath": path, "winlog.event_data.RegistryEventType": "DeleteValue"}
    out = {"winlog.event_data.RegistrySetPath": path, "winlog.event_data.RegistryEventType": "SetValue"}
    details = sysmon_details(v("NewValueType"), v("NewValue"))
    if details is not None:
        out["winlog.event_data.RegistrySetDetails"] = details
    return out
