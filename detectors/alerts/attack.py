"""MITRE ATT&CK from Sigma tags (`attack.t1110.001`, `attack.credential_access`) to ECS `threat.*`.

Only the Enterprise tactics are tabled: they are few and stable, and Kibana's MITRE panels key on
tactic names. Technique names are not tabled (hundreds, versioned); the id and its reference URL
are enough to pivot.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

FRAMEWORK = "MITRE ATT&CK"

# Sigma tag suffix -> (tactic id, tactic name as ATT&CK spells it)
TACTICS: dict[str, tuple[str, str]] = {
    "reconnaissance": ("TA0043", "Reconnaissance"),
    "resource_development": ("TA0042", "Resource Development"),
    "initial_access": ("TA0001", "Initial Access"),
    "execution": ("TA0002", "Execution"),
    "persistence": ("TA0003", "Persistence"),
    "privilege_escalation": ("TA0004", "Privilege Escalation"),
    "defense_evasion": ("TA0005", "Defense Evasion"),
    "defense_impairment": ("TA0005", "Defense Evasion"),
    "stealth": ("TA0005", "Defense Evasion"),  # ATT&CK v18 split Defense Evasion into Stealth + Impairment
    "credential_access": ("TA0006", "Credential Access"),
    "discovery": ("TA0007", "Discovery"),
    "lateral_movement": ("TA0008", "Lateral Movement"),
    "collection": ("TA0009", "Collection"),
    "command_and_control": ("TA0011", "Command and Control"),
    "exfiltration": ("TA0010", "Exfiltration"),
    "impact": ("TA0040", "Impact"),
}

_TECHNIQUE = re.compile(r"^t(\d{4})(?:\.(\d{3}))?$")


def threat_from_tags(tags: list[str]) -> dict[str, Any]:
    """Nested ECS `threat` object, or {} when no tag is an ATT&CK tactic or technique.

    Rules repeat their tags on every alert: the object is built once per tag list and each caller
    gets its own copy."""
    key = tuple(tags or ())
    hit = _THREATS.get(key)
    if hit is None:
        hit = orjson.dumps(_threat(key))
        if len(_THREATS) >= 4096:
            _THREATS.clear()
        _THREATS[key] = hit
    threat: dict[str, Any] = orjson.loads(hit)  # a fresh copy (dicts, lists and strings only), in C
    return threat


_THREATS: dict[tuple[Any, ...], bytes] = {}  # tags -> the threat object as JSON


def _threat(tags: tuple[Any, ...]) -> dict[str, Any]:
    tactic_ids: list[str] = []
    tactic_names: list[str] = []
    techniques: list[str] = []
    subtechniques: list[str] = []
    for raw in tags:
        tag = str(raw).strip().lower()
        if not tag.startswith("attack."):
            continue
        suffix = tag[len("attack.") :].replace("-", "_")
        if suffix in TACTICS:
            tid, name = TACTICS[suffix]
            if tid not in tactic_ids:
                tactic_ids.append(tid)
                tactic_names.append(name)
            continue
        m = _TECHNIQUE.match(suffix)
        if not m:
            continue  # groups (g0032), software (s0001) and unknown tags stay in `tags` only
        base = f"T{m.group(1)}"
        if base not in techniques:
            techniques.append(base)
        if m.group(2):
            sub = f"{base}.{m.group(2)}"
            if sub not in subtechniques:
                subtechniques.append(sub)
    if not (tactic_ids or techniques):
        return {}
    threat: dict[str, Any] = {"framework": FRAMEWORK}
    if tactic_ids:
        threat["tactic"] = {
            "id": tactic_ids,
            "name": tactic_names,
            "reference": [f"https://attack.mitre.org/tactics/{t}/" for t in tactic_ids],
        }
    if techniques:
        technique: dict[str, Any] = {
            "id": techniques,
            "reference": [f"https://attack.mitre.org/techniques/{t}/" for t in techniques],
        }
        if subtechniques:
            technique["subtechnique"] = {
                "id": subtechniques,
                "reference": [f"https://attack.mitre.org/techniques/{s.replace('.', '/')}/" for s in subtechniques],
            }
        threat["technique"] = technique
    return threat
