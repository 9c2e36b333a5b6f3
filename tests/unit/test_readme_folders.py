"""README's folder table cannot drift: every path it names exists, and every folder and package is named.

A backticked name in a row is looked up in that row's folder (then at the top); every top-level
folder of the repository has a row, and every package (folder with `__init__.py`) directly inside
`collectors/`, `detectors/` and `pipeline/` is named in its folder's row.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _rows() -> dict[str, list[str]]:
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| folder | what |") :].split("\n\n", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        folder = cells[0].strip("`").rstrip("/")
        rows[folder] = re.findall(r"`([^`\s]+)`", " ".join(cells[1:]))
    return rows


def _tracked_top_folders() -> set[str]:
    try:
        files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        files = "\n".join(str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file())
    return {f.split("/", 1)[0] for f in files.splitlines() if "/" in f and not f.startswith(".")}


def test_every_named_path_exists() -> None:
    missing = [
        f"{folder}: {name}"
        for folder, names in _rows().items()
        for name in names
        if not name.startswith(("socpipe", "make"))
        and not (ROOT / folder / name).exists()
        and not (ROOT / name).exists()
    ]
    assert not missing, "README folder table names what does not exist: " + ", ".join(missing)


def test_every_folder_and_package_is_named() -> None:
    rows = _rows()
    unnamed = sorted(_tracked_top_folders() - set(rows))
    for top in ("collectors", "detectors", "pipeline"):
        named = {n.rstrip("/") for n in rows.get(top, [])}
        unnamed += [
            f"{top}/{p.name}/"
            for p in sorted((ROOT / top).iterdir())
            if (p / "__init__.py").exists() and p.name not in named
        ]
    assert not unnamed, "README folder table misses: " + ", ".join(unnamed)


def test_the_table_is_read(tmp_path: Path) -> None:
    rows = _rows()
    assert "worker/" in rows["pipeline"] and "finding.py" in rows["detectors"] and len(rows) >= 8
