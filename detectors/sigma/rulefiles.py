"""Which files under a rule directory are rules, in load order, and reading one (bounded in size).

Files named `*.tests.yml` are rule tests (see testing.py), not rules.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

MAX_RULE_FILE_BYTES = 1 << 20
TEST_SUFFIXES = (".tests.yml", ".tests.yaml")
_EXTENSIONS = (".yml", ".yaml")
_BARE = ("yml", "yaml")


def rule_files(paths: Any) -> list[Path]:
    """Rule files under `paths` in load order: a file as given; a directory's *.yml/*.yaml files (not
    rule tests) at any depth, sorted, not descending into symlinked directories (what Path.rglob did,
    one scandir per directory)."""
    return list(map(Path, rule_file_names(paths)))


def rule_file_names(paths: Any) -> list[str]:
    """rule_files as the text of each Path (`str(path)`), without making the Path objects (~7 us each:
    ~6 ms of a start over the ~900 SigmaHQ and province rule files)."""
    out: list[str] = []
    for p in paths:
        root = str(Path(p))  # as a Path spells it: no '.' part, no doubled or trailing separator
        if os.path.isdir(root):
            # the order of Path objects (by their parts), without comparing Paths: every file found
            # starts with the same root text, joined below it by single separators
            found = _yaml_files(root)
            if root == ".":  # Path("./x.yml") is "x.yml"
                found = [f[2:] for f in found]
            out.extend(sorted(found, key=_parts))
        else:
            out.append(root)
    return out


def _parts(path: str) -> list[str]:
    return path.split(os.sep)


def read_rule_text(path: str | Path) -> str:
    """What path.read_text(encoding="utf-8") gives (newlines as universal newlines make them), or
    OSError past MAX_RULE_FILE_BYTES (as fstat tells, or as read: a file growing meanwhile, a pipe):
    open, fstat, one read of the size (and one more), close; no
    file object, no text layer. A file that is not UTF-8 raises the error read_text raises."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size > MAX_RULE_FILE_BYTES:
            raise OSError(f"file larger than {MAX_RULE_FILE_BYTES} bytes")
        data = os.read(fd, size + 1)
        if len(data) > size:  # it grew since fstat (or has no size: a pipe): read to its end, as read_text
            chunks, total = [data], len(data)
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
                total += len(chunk)
                if total > MAX_RULE_FILE_BYTES:  # the bound holds for what is read, not only what fstat said
                    raise OSError(f"file larger than {MAX_RULE_FILE_BYTES} bytes")
            data = b"".join(chunks)
    finally:
        os.close(fd)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return Path(path).read_text(encoding="utf-8")  # raises its own error (positions within its chunk)
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _yaml_files(root: str) -> list[str]:
    found: list[str] = []
    pending = [root]
    while pending:
        try:
            with os.scandir(pending.pop()) as it:
                entries = list(it)
        except PermissionError:
            continue
        for e in entries:
            try:
                if e.is_dir() and not e.is_symlink():
                    pending.append(e.path)
                    continue
            except OSError:
                pass
            name = e.name
            # os.path.splitext(name)[1] in (".yml", ".yaml"), without the call: a name of dots and the
            # extension alone (".yml") has none
            if (
                name.endswith(_EXTENSIONS)
                and not name.endswith(TEST_SUFFIXES)
                and name.lstrip(".") not in _BARE
                and e.is_file()
            ):
                found.append(e.path)
    return found
