"""The agent stands alone: `collectors/` imports nothing from the SOC side (`pipeline/`, `detectors/`).

The agent distribution ships only `collectors/`; the wire contract (`collectors.wire`) and the config
loader (`collectors.configfile`) live there and the SOC side imports them. Both checks below can fail:
the static one finds any import statement (also inside functions), the runtime one imports every agent
module in a fresh interpreter and looks at what got loaded.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "collectors"
SOC_PACKAGES = {"pipeline", "detectors"}
HEAVY = {"numpy", "scipy", "sklearn", "elasticsearch", "re2", "ahocorasick", "ahocorasick_rs"}


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", "")) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            out.append((node.lineno, str(node.args[0].value)))
    return out


def test_no_agent_module_imports_the_soc_side() -> None:
    bad = [
        f"{p.relative_to(ROOT)}:{line}: imports {mod}"
        for p in sorted(AGENT.rglob("*.py"))
        for line, mod in _imports(p)
        if mod.split(".")[0] in SOC_PACKAGES | HEAVY
    ]
    assert not bad, "\n".join(bad)


def test_static_check_sees_lazy_imports(tmp_path: Path) -> None:
    p = tmp_path / "m.py"
    p.write_text(
        "def f():\n    from pipeline.config import ConfigError\n    import importlib\n"
        "    importlib.import_module('detectors.sigma')\n"
    )
    assert [m for _, m in _imports(p)] == ["pipeline.config", "importlib", "detectors.sigma"]


def test_importing_every_agent_module_loads_nothing_from_the_soc_side() -> None:
    code = """
import importlib, json, pkgutil, sys
import collectors
names = [m.name for m in pkgutil.walk_packages(collectors.__path__, "collectors.") if m.name != "collectors.__main__"]
for n in names:
    importlib.import_module(n)
print(json.dumps({"modules": names, "loaded": sorted({m.split(".")[0] for m in sys.modules})}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert "collectors.wire" in result["modules"] and "collectors.agent" in result["modules"]
    assert not (SOC_PACKAGES | HEAVY) & set(result["loaded"]), result["loaded"]


def test_soc_side_reads_the_wire_contract_from_the_agent_side() -> None:
    from collectors import wire
    from pipeline import records  # the deprecated alias must be the same objects, not a copy

    assert records.LineBatch is wire.LineBatch and records.Heartbeat is wire.Heartbeat
    bad = [
        f"{p.relative_to(ROOT)}: defines {n.name}"
        for top in ("pipeline", "detectors")
        for p in sorted((ROOT / top).rglob("*.py"))
        for n in ast.walk(ast.parse(p.read_text()))
        if isinstance(n, ast.ClassDef) and n.name in ("LineBatch", "LogLine", "Heartbeat", "SourceStatus")
    ]
    assert not bad, "\n".join(bad)
