"""File inputs: follow files by content fingerprint through rotation, truncation and restarts.

A *source* is one followed path (a glob may yield several). Its state is an ordered list of tracked
files, oldest first: after a rename rotation the old file (still open, or found again among the rotated
copies after a restart) is read to its end before the new one. A file's identity is a hash of its first
bytes, not its inode: inodes are reused, and copytruncate keeps the inode while replacing the content.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import logging
import os
import stat
import time
from dataclasses import dataclass, field
from fnmatch import fnmatch
from typing import Any

from collectors.config import COMPRESSED_SUFFIXES, FileInputConfig
from collectors.health import ERROR, MISSING, OK, PERMISSION_DENIED, REFUSED, ROTATED_AWAY
from collectors.lines import LineSplitter, emit_ascii, emit_lines

log = logging.getLogger("socpipe.agent.files")

READ_CHUNK = 1024 * 1024
MISSING_GRACE_S = 30.0  # a followed file absent this long (while an older copy is still open) is "missing"
HOLD_S = 300.0  # "rotated away" / read errors stay reported this long (several heartbeats)


def fingerprint(head: bytes) -> str:
    return hashlib.sha1(head).hexdigest()


@dataclass
class TrackedFile:
    fp_len: int
    fp: str
    offset: int  # checkpointed: just after the last line handed out
    line_no: int
    path: str
    fd: int | None = None
    dev_ino: tuple[int, int] | None = None
    splitter: LineSplitter | None = None
    size: int = 0
    last_data_at: float = field(default_factory=time.monotonic)

    def matches(self, head: bytes) -> bool:
        return len(head) >= self.fp_len and fingerprint(head[: self.fp_len]) == self.fp

    @property
    def read_pos(self) -> int:
        return self.splitter.offset + self.splitter.pending_bytes if self.splitter else self.offset

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
        self.fd, self.dev_ino, self.splitter = None, None, None


class FileSource:
    """One followed path, its tracked files and its sequence counter."""

    def __init__(
        self,
        path: str,
        cfg: FileInputConfig,
        fp_bytes: int,
        max_line_bytes: int,
        partial_timeout_s: float,
        close_inactive_s: float,
        position: dict[str, Any] | None,
        start_at_end: bool,
        own_state: tuple[str, ...] = (),
    ):
        self.name = path
        self.own_state = own_state  # real paths (files or dirs) never read: the agent's state and identity
        self.state, self.detail = OK, ""
        self._problem: tuple[str, str] | None = None
        self._hold: tuple[str, str, float] | None = None
        self._absent_since: float | None = None
        self._open_errno = 0
        self.cfg = cfg
        self.dataset = cfg.dataset or None
        self.fp_bytes = fp_bytes
        self.max_line_bytes = max_line_bytes
        self.partial_timeout_s = partial_timeout_s
        self.close_inactive_s = close_inactive_s
        self.seq_next = 1
        self.files: list[TrackedFile] = []
        self.start_at_end = start_at_end and position is None
        self.lag_bytes = 0
        self.last_read_at = 0.0
        if position:
            self.seq_next = int(position.get("q", 1))
            for fp_len, fp, offset, line_no, p in position.get("f", []):
                self.files.append(TrackedFile(int(fp_len), str(fp), int(offset), int(line_no), str(p)))

    def position(self) -> dict[str, Any]:
        return {"q": self.seq_next, "f": [[f.fp_len, f.fp, f.offset, f.line_no, f.path] for f in self.files]}

    def close(self) -> None:
        for f in self.files:
            f.close()

    # --- identity and rotation ---------------------------------------------------------------------
    def refresh(self, now: float) -> None:
        for f in self.files:
            if f.fd is not None and not self._still_same(f):
                log.info(
                    "file.replaced source=%s path=%s offset=%d (truncated or rewritten; looking for its copy)",
                    self.name,
                    f.path,
                    f.read_pos,
                )
                f.close()
        self._problem = None
        self._attach_live(now)
        if any(f.fd is None for f in self.files):
            self._attach_rotated(now)
        self._prune(now)
        self.lag_bytes = sum(max(0, f.size - f.read_pos) for f in self.files if f.fd is not None)
        if self._problem is None and self.files and not os.access(self.name, os.R_OK):
            if os.path.exists(self.name):
                self._problem = (
                    PERMISSION_DENIED,
                    f"{self._denied_hint()}; still read through the descriptor opened before, but the next "
                    "rotation or restart loses it",
                )
        if self._hold is not None and now >= self._hold[2]:
            self._hold = None
        self.state, self.detail = self._problem or (self._hold[:2] if self._hold else (OK, ""))

    def _denied_hint(self) -> str:
        try:
            st = os.stat(self.name)
            owner = f"{user_name(st.st_uid)}:{_group_name(st.st_gid)} mode {stat.S_IMODE(st.st_mode):04o}"
        except OSError:
            owner = "?"
        return (
            f"user {user_name(os.geteuid())} may not read it ({owner}): add the user to the file's group "
            "(adm on Debian) or grant read access"
        )

    def _is_own_state(self, path: str) -> bool:
        real = os.path.realpath(path)
        return any(real == p or real.startswith(p.rstrip("/") + "/") for p in self.own_state)

    def _still_same(self, f: TrackedFile) -> bool:
        if f.fd is None:
            return False
        try:
            st = os.fstat(f.fd)
            head = os.pread(f.fd, self.fp_bytes, 0)
        except OSError:
            return False
        if st.st_size < f.read_pos or not f.matches(head):
            return False
        if len(head) > f.fp_len:  # grow the fingerprint of a young file towards fp_bytes
            f.fp_len, f.fp = len(head), fingerprint(head)
        f.size = st.st_size
        return True

    def _open(self, path: str) -> tuple[int, os.stat_result, bytes] | None:
        flags = os.O_RDONLY | os.O_NOCTTY | (0 if self.cfg.allow_symlinks else os.O_NOFOLLOW)
        if self.own_state and self._is_own_state(path):
            self._open_errno = errno.EPERM
            return None
        try:
            fd = os.open(path, flags)
        except OSError as exc:
            self._open_errno = exc.errno or 0
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
                os.close(fd)
                return None
            return fd, st, os.pread(fd, self.fp_bytes, 0)
        except OSError:
            os.close(fd)
            return None

    def _adopt(self, f: TrackedFile, path: str, fd: int, st: os.stat_result, now: float) -> None:
        f.fd, f.dev_ino, f.path, f.size = fd, (st.st_dev, st.st_ino), path, st.st_size
        f.splitter = LineSplitter(f.offset, f.line_no, self.max_line_bytes)
        f.last_data_at = now

    def _attach_live(self, now: float) -> None:
        try:
            st = os.lstat(self.name)
            if stat.S_ISLNK(st.st_mode):
                if not self.cfg.allow_symlinks:
                    self._problem = (REFUSED, "is a symlink; set allow_symlinks: true on this input to follow it")
                    return
                st = os.stat(self.name)
        except FileNotFoundError:
            if self._absent_since is None:
                self._absent_since = now
            still_open = any(f.fd is not None for f in self.files)
            if not still_open or now - self._absent_since >= MISSING_GRACE_S:
                self._problem = (MISSING, "no such file")
            return
        except PermissionError:
            self._problem = (
                PERMISSION_DENIED,
                f"user {user_name(os.geteuid())} may not enter {os.path.dirname(self.name)}",
            )
            return
        except OSError as exc:
            self._problem = (ERROR, exc.strerror or str(exc))
            return
        self._absent_since = None
        if self.own_state and self._is_own_state(self.name):
            self._problem = (REFUSED, "is the agent's own state or identity (it would ship its own secret)")
            return
        if not stat.S_ISREG(st.st_mode):
            self._problem = (ERROR, "not a regular file")
            return
        key = (st.st_dev, st.st_ino)
        if any(f.dev_ino == key for f in self.files):
            return
        self._open_errno = 0
        opened = self._open(self.name)
        if opened is None:
            if self._open_errno in (errno.EACCES, errno.EPERM):
                self._problem = (PERMISSION_DENIED, self._denied_hint())
            elif self._open_errno == errno.ELOOP:
                self._problem = (REFUSED, "is a symlink; set allow_symlinks: true on this input to follow it")
            elif self._open_errno:
                self._problem = (ERROR, os.strerror(self._open_errno))
            return
        fd, st, head = opened
        for f in self.files:
            if f.fd is None and f.matches(head):
                self._adopt(f, self.name, fd, st, now)
                return
        f = TrackedFile(len(head), fingerprint(head), 0, 0, self.name)
        if self.start_at_end:
            f.offset, f.line_no = st.st_size, _count_lines(fd, st.st_size)
            log.info("file.start_at_end source=%s offset=%d line_no=%d", self.name, f.offset, f.line_no)
        self.start_at_end = False
        self.files.append(f)
        self._adopt(f, self.name, fd, st, now)

    def rotated_candidates(self) -> list[str]:
        out = []
        for pattern in self.cfg.rotated:
            for p in glob.glob(pattern.replace("{path}", glob.escape(self.name))):
                if p != self.name and not is_excluded(p, self.cfg.exclude):
                    out.append(p)
        return sorted(set(out))

    def _attach_rotated(self, now: float) -> None:
        open_keys = {f.dev_ino for f in self.files if f.dev_ino}
        for path in self.rotated_candidates():
            waiting = [f for f in self.files if f.fd is None]
            if not waiting:
                return
            opened = self._open(path)
            if opened is None:
                continue
            fd, st, head = opened
            if (st.st_dev, st.st_ino) in open_keys:
                os.close(fd)
                continue
            for f in waiting:
                if f.matches(head):
                    log.info("file.found_rotated source=%s path=%s offset=%d", self.name, path, f.offset)
                    self._adopt(f, path, fd, st, now)
                    break
            else:
                os.close(fd)

    def _prune(self, now: float) -> None:
        keep = []
        for i, f in enumerate(self.files):
            is_last = i == len(self.files) - 1
            if f.fd is None:
                if f.size and f.size > f.offset:
                    self._hold = (
                        ROTATED_AWAY,
                        f"{f.size - f.offset} bytes of {f.path} (compressed or deleted before they were read)",
                        now + HOLD_S,
                    )
                    log.warning(
                        "file.lost source=%s path=%s unread_from=%d: rotated away (compressed or deleted) "
                        "before it was read",
                        self.name,
                        f.path,
                        f.offset,
                    )
                elif not f.size:
                    log.warning(
                        "file.not_found source=%s path=%s offset=%d: no live or rotated file has its fingerprint",
                        self.name,
                        f.path,
                        f.offset,
                    )
                continue
            done = f.read_pos >= f.size and f.splitter is not None and f.splitter.pending_bytes == 0
            if not is_last and done and now - f.last_data_at >= self.close_inactive_s:
                f.close()
                continue
            keep.append(f)
        self.files = keep

    # --- reading -----------------------------------------------------------------------------------
    def read(self, now: float, wall: float, max_bytes: int) -> list[str]:
        """Encoded lines read from the tracked files in order, at most about max_bytes of input."""
        out: list[str] = []
        budget = max_bytes
        for f in self.files:
            if f.fd is None or f.splitter is None or budget <= 0:
                continue
            sp = f.splitter
            while budget > 0:
                try:
                    chunk = os.pread(f.fd, min(READ_CHUNK, budget), f.read_pos)
                except OSError as exc:
                    log.warning("file.read_error source=%s path=%s error=%s", self.name, f.path, exc)
                    self._hold = (ERROR, f"read failed: {exc.strerror or exc}", now + HOLD_S)
                    break
                if not chunk:
                    break
                budget -= len(chunk)
                f.last_data_at = now
                seq = emit_ascii(chunk, sp, self.seq_next, wall, out)
                if seq is None:
                    self.seq_next = emit_lines(sp.feed(chunk), self.seq_next, wall, out)
                else:
                    self.seq_next = seq
            if sp.pending_bytes and now - f.last_data_at >= self.partial_timeout_s:
                line = sp.flush_partial()
                if line is not None:
                    self.seq_next = emit_lines([line], self.seq_next, wall, out)
            f.offset, f.line_no = sp.offset, sp.line_no
        if out:
            self.last_read_at = wall
        return out


def user_name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


def _group_name(gid: int) -> str:
    try:
        import grp

        return grp.getgrgid(gid).gr_name
    except (ImportError, KeyError):
        return str(gid)


def is_excluded(path: str, exclude: list[str]) -> bool:
    return path.endswith(tuple(COMPRESSED_SUFFIXES)) or any(fnmatch(path, g) for g in exclude)


def _count_lines(fd: int, size: int) -> int:
    n, pos = 0, 0
    while pos < size:
        chunk = os.pread(fd, min(8 * READ_CHUNK, size - pos), pos)
        if not chunk:
            break
        n += chunk.count(b"\n")
        pos += len(chunk)
    return n
