"""A `files:` entry of agent.yaml: its globs expanded into followed sources (collectors.tailer), a
rotated copy of a followed file recognised by its fingerprint, a glob matching nothing explained."""

from __future__ import annotations

import glob
import os
from fnmatch import fnmatch
from typing import Any

from collectors.config import FileInputConfig
from collectors.health import MISSING, PERMISSION_DENIED
from collectors.tailer import FileSource, is_excluded, user_name


class FileInput:
    """One `files:` entry: expands its globs into sources; a file that is a rotated copy of a followed
    file (same fingerprint) is not a new source."""

    def __init__(
        self,
        cfg: FileInputConfig,
        positions: dict[str, dict[str, Any]],
        fp_bytes: int,
        max_line_bytes: int,
        partial_timeout_s: float,
        close_inactive_s: float,
        own_state: tuple[str, ...] = (),
    ):
        self.cfg = cfg
        self.fp_bytes = fp_bytes
        self._args = (fp_bytes, max_line_bytes, partial_timeout_s, close_inactive_s)
        self.own_state = own_state
        self.sources: dict[str, FileSource] = {}
        self.unmatched: dict[str, tuple[str, str]] = {}  # glob -> (state, detail) while it matches no file
        self._positions = positions
        self._first_scan = True
        for path in self._own_checkpointed(positions):
            self.sources[path] = FileSource(path, cfg, *self._args, positions[path], False, own_state)

    def _own_checkpointed(self, positions: dict[str, dict[str, Any]]) -> list[str]:
        return [
            p
            for p in positions
            if not p.startswith(("syslog-", "journald")) and any(fnmatch(p, g) or p == g for g in self.cfg.paths)
        ]

    def discover(self) -> list[FileSource]:
        """New sources. A literal path is a source even while missing (so its state is reported); a
        glob matching no file is listed in `unmatched` with the likely reason."""
        new = []
        for pattern in self.cfg.paths:
            is_glob = glob.has_magic(pattern)
            matched = sorted(glob.glob(pattern)) if is_glob else [pattern]
            if is_glob:
                if matched or any(fnmatch(p, pattern) for p in self.sources):
                    self.unmatched.pop(pattern, None)
                else:
                    self.unmatched[pattern] = _why_no_match(pattern)
            for path in matched:
                if path in self.sources or is_excluded(path, self.cfg.exclude):
                    continue
                exists = os.path.isfile(path)
                if (is_glob and not exists) or (exists and self._is_rotated_copy(path)):
                    continue
                start_at_end = self.cfg.start_position == "end" and self._first_scan
                src = FileSource(path, self.cfg, *self._args, None, start_at_end, self.own_state)
                self.sources[path] = src
                new.append(src)
        self._first_scan = False
        return new

    def _is_rotated_copy(self, path: str) -> bool:
        tracked = [f for s in self.sources.values() for f in s.files]
        if not tracked:
            return False
        try:
            with open(path, "rb") as fh:
                head = fh.read(self.fp_bytes)
        except OSError:
            return True
        return bool(head) and any(f.matches(head) for f in tracked)


def _why_no_match(pattern: str) -> tuple[str, str]:
    """(state, detail) for a glob that matches nothing: its directory is missing, unreadable, or empty."""
    parts = pattern.split("/")
    fixed = "/".join(parts[: next(i for i, p in enumerate(parts) if glob.has_magic(p))])
    fixed = fixed or ("/" if pattern.startswith("/") else ".")
    if not os.path.isdir(fixed):
        return MISSING, f"directory {fixed} does not exist"
    if not os.access(fixed, os.R_OK | os.X_OK):
        return PERMISSION_DENIED, f"user {user_name(os.geteuid())} may not list {fixed}"
    return MISSING, "no file matches"
