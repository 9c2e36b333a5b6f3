"""Test support: SigmaHQ's regression samples (real Sysmon events recorded for a rule; `socpipe rules
regress` replays them as they are) re-rendered as what Windows' own auditing logs for the same action
on a server without Sysmon - Sysmon 1 as Security 4688, Sysmon 13 as Security 4657 - to check that the
rules firing on the Sysmon form still fire where only Security auditing is forwarded.

    python -m tests.sigregress SIGMA_CHECKOUT/regression_data/rules/windows [RULES...]

prints, per conversion, how many (sample, rule) pairs fire in both forms and, for the rules silent on
the Security form, which of their fields that form does not log. The samples are not in ../shared: run
it on a SigmaHQ checkout.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

SECURITY_PROVIDER = {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing"}}
LABELS = {"Low": "S-1-16-4096", "Medium": "S-1-16-8192", "High": "S-1-16-12288", "System": "S-1-16-16384"}
SERVICE_SIDS = {"SYSTEM": "S-1-5-18", "LOCAL SERVICE": "S-1-5-19", "NETWORK SERVICE": "S-1-5-20"}
A_USER_SID = "S-1-5-21-1111111111-2222222222-3333333333-1001"
# the fields each Security form carries in Sysmon's terms (through the Windows mapping)
CARRIED = {
    4688: {"eventid", "image", "parentimage", "commandline", "user", "logonid", "integritylevel"},
    4657: {"eventid", "eventtype", "targetobject", "details", "image"},
}


def _security(event: dict[str, Any], eid: int, data: dict[str, Any]) -> dict[str, Any]:
    system = {**event["System"], "Provider": SECURITY_PROVIDER, "EventID": eid, "Channel": "Security"}
    return {"Event": {"System": system, "EventData": data}}


def as_4688(event: dict[str, Any]) -> dict[str, Any]:
    """A Sysmon 1 `Event` as the 4688 (v2, no other token) Windows logs for the same process: the
    creator is the account Sysmon names (SYSTEM as the machine account), its session the new one's."""
    d = event.get("EventData") or {}
    domain, _, name = str(d.get("User") or "").rpartition("\\")
    sid = SERVICE_SIDS.get(name.upper(), A_USER_SID) if domain.upper() == "NT AUTHORITY" else A_USER_SID
    if sid == "S-1-5-18":
        domain, name = "AGENCY", "SRV01$"
    level = str(d.get("IntegrityLevel") or "Medium")
    data = {
        "SubjectUserSid": sid,
        "SubjectUserName": name,
        "SubjectDomainName": domain,
        "SubjectLogonId": str(d.get("LogonId") or "0x3e7"),
        "NewProcessId": hex(int(d.get("ProcessId") or 0)),
        "NewProcessName": d.get("Image", ""),
        "TokenElevationType": "%%1937" if level in ("High", "System") else "%%1938",
        "ProcessId": hex(int(d.get("ParentProcessId") or 0)),
        "CommandLine": d.get("CommandLine", ""),
        "TargetUserSid": "S-1-0-0",
        "TargetUserName": "-",
        "TargetDomainName": "-",
        "TargetLogonId": "0x0",
        "ParentProcessName": d.get("ParentImage", ""),
        "MandatoryLabel": LABELS.get(level, "S-1-16-8192"),
    }
    return _security(event, 4688, data)


def _kernel_key(key: str) -> str:
    """Sysmon's 'HKLM\\System\\CurrentControlSet\\...' as 4657's '\\REGISTRY\\MACHINE\\System\\ControlSet001\\...'."""
    for hive, kernel in (
        ("HKLM\\", "\\REGISTRY\\MACHINE\\"),
        ("HKU\\", "\\REGISTRY\\USER\\"),
        ("HKCR\\", "\\REGISTRY\\MACHINE\\SOFTWARE\\Classes\\"),
    ):
        if key.upper().startswith(hive):
            key = kernel + key[len(hive) :]
            break
    return re.sub(r"(?i)^(\\REGISTRY\\MACHINE\\SYSTEM\\)CurrentControlSet", r"\1ControlSet001", key)


def as_4657(event: dict[str, Any]) -> dict[str, Any]:
    """A Sysmon 13 `Event` (a value set) as the 4657 'existing registry value modified' of the same write."""
    d = event.get("EventData") or {}
    key, _, value_name = str(d.get("TargetObject", "")).rpartition("\\")
    details = str(d.get("Details", ""))
    dword = re.fullmatch(r"DWORD \(0x([0-9a-fA-F]+)\)", details)
    qword = re.fullmatch(r"QWORD \(0x([0-9a-fA-F]+)-0x([0-9a-fA-F]+)\)", details)
    if dword:
        kind, value = "%%1876", str(int(dword.group(1), 16))
    elif qword:
        kind, value = "%%1883", str((int(qword.group(1), 16) << 32) + int(qword.group(2), 16))
    elif details == "Binary Data":
        kind, value = "%%1875", "00 01"
    else:
        kind, value = "%%1873", details
    data = {
        "SubjectUserSid": A_USER_SID,
        "SubjectUserName": "bob",
        "SubjectDomainName": "AGENCY",
        "SubjectLogonId": "0x5c1e2",
        "ObjectName": _kernel_key(key),
        "ObjectValueName": value_name,
        "HandleId": "0x1a4",
        "OperationType": "%%1905",
        "OldValueType": "-",
        "OldValue": "-",
        "NewValueType": kind,
        "NewValue": value,
        "ProcessId": hex(int(d.get("ProcessId") or 0)),
        "ProcessName": d.get("Image", ""),
    }
    return _security(event, 4657, data)


CONVERSIONS: dict[int, tuple[int, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    1: (4688, as_4688),
    13: (4657, as_4657),
}


def rule_fields(detection: dict[str, Any]) -> set[str]:
    """The field names (lower case, modifiers dropped) a rule's detection tests."""
    out: set[str] = set()

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                out.add(str(k).split("|")[0].lower())
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    for name, part in detection.items():
        if name != "condition":
            walk(part)
    return out


def cross_check(samples_dir: Path, rule_paths: list[str]) -> dict[int, tuple[Counter[tuple[str, str]], list[str]]]:
    """Per Sysmon event id converted: (Sysmon status, Security status) counts, and the rules firing on
    the Sysmon form only, each with the fields the Security form does not carry."""
    from detectors.sigma import Engine, load_rules
    from detectors.sigma.regression import Sample, read_samples, replay, sample_events
    from detectors.sigma.yamlsafe import load_one

    loaded = load_rules(rule_paths)
    engine = Engine(loaded.rules)
    ids = {r.meta.id for r in loaded.rules}
    path_of = {r.meta.id: r.meta.path for r in loaded.rules}
    out: dict[int, tuple[Counter[tuple[str, str]], list[str]]] = {}
    samples = read_samples([samples_dir])
    for sysmon_id, (security_id, convert) in CONVERSIONS.items():
        pairs: list[tuple[Sample, Sample]] = []
        for s in samples:
            events = [orjson.loads(line) for line in s.lines]
            if s.error or s.rule_id not in ids or not events:
                continue
            if not all(
                isinstance(e.get("Event"), dict) and e["Event"]["System"].get("EventID") == sysmon_id for e in events
            ):
                continue
            converted = [orjson.dumps(convert(e["Event"])).decode() for e in events]
            pairs.append((s, Sample(s.path, s.rule_id, s.expected, converted)))
        as_sysmon = replay([a for a, _ in pairs], engine, ids, sample_events)
        as_security = replay([b for _, b in pairs], engine, ids, sample_events)
        counts: Counter[tuple[str, str]] = Counter()
        lost: list[str] = []
        for a, b in zip(as_sysmon, as_security, strict=True):
            counts[(a.status, b.status)] += 1
            if a.status == "fired" and b.status != "fired":
                doc = load_one(Path(path_of[a.rule_id]).read_text(encoding="utf-8"))
                missing = rule_fields(doc.get("detection") or {}) - CARRIED[security_id]
                lost.append(
                    f"{Path(path_of[a.rule_id]).name}: " + (", ".join(sorted(missing)) or "CARRIED FIELDS ONLY")
                )
        out[sysmon_id] = (counts, lost)
    return out


def main(argv: list[str]) -> None:
    samples = Path(argv[0])
    rules = argv[1:] or [str(Path(__file__).resolve().parents[1].parent / "shared" / "sigma" / "rules-windows")]
    for sysmon_id, (counts, lost) in cross_check(samples, rules).items():
        security_id = CONVERSIONS[sysmon_id][0]
        both = counts[("fired", "fired")]
        sysmon_only = sum(n for (a, b), n in counts.items() if a == "fired" and b != "fired")
        print(f"Sysmon {sysmon_id} as Security {security_id}: {both} of {both + sysmon_only} rules fire on both forms")
        for line in sorted(lost):
            print(f"  silent on {security_id}, needs {line}")


if __name__ == "__main__":
    main(sys.argv[1:])
