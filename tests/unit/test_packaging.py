"""What `pip install socpipe-soc` ships: no development-only code (the local stack, the demo, simulators,
synthetic data), and nothing shipped needs it at import time; the dev commands say so instead of
crashing. From a checkout (editable install) they all work: the rest of the suite uses them.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.release import release_build

ROOT = Path(__file__).resolve().parents[2]
DEV = ("pipeline/stack/", "pipeline/devtools/")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    try:
        return Path(release_build().build_soc_wheel(out))
    except subprocess.CalledProcessError as exc:  # no setuptools/wheel reachable for an isolated build
        pytest.skip(f"cannot build the wheel here: {exc}")


def test_the_wheel_ships_no_development_code(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("pipeline/worker/") for n in names) and "detectors/mappings/linux.yml" in names
    assert not [n for n in names if n.startswith(DEV)]
    assert not [n for n in names if n.endswith((".xml", ".md"))]


def test_nothing_shipped_imports_development_code_at_import_time(wheel: Path) -> None:
    bad = []
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if not name.endswith(".py") or name.startswith("pipeline/cli/"):
                continue  # command modules load only when their command runs, behind the lazy group's guard
            tree = ast.parse(zf.read(name).decode(), name)
            for node in tree.body:  # module level only: a command may import them when it runs
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.module:
                    mods = [node.module]
                bad += [f"{name}: {m}" for m in mods if m.startswith(("pipeline.stack", "pipeline.devtools"))]
    assert not bad, bad


def test_dev_commands_explain_themselves_without_the_dev_packages() -> None:
    code = """
import importlib.abc, sys
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.startswith(("pipeline.stack", "pipeline.devtools")):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Hide())
from click.testing import CliRunner
from pipeline.cli import main
for args in (["stack", "status"], ["demo"], ["coverage", "simulate"]):
    r = CliRunner().invoke(main, args)
    print(r.exit_code, " ".join(r.output.split()))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    lines = out.strip().splitlines()
    assert len(lines) == 3
    for line, what in zip(lines, ("stack", "demo", "coverage simulate")):
        assert line.startswith("1 ") and f"`socpipe {what}` is a development tool" in line, line
