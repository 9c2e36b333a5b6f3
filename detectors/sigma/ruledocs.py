"""Rule documents, parsed once per text: the YAML of a rule file is cached by content hash.

Start-up reads hundreds of rule files whose text rarely changes; parsing their YAML was a third of
`socpipe rules lint`. A text is parsed by detectors.sigma.ruleyaml (the block subset rules are written
in, read directly into Python objects) or, for anything else, by yamlsafe (libyaml), which give the same
documents. The documents a file parsed to (plain dicts, lists and scalars, with the line of
each document's root) are kept in one file in the user's cache directory, one JSON text per rule file
keyed by the BLAKE2b hash of the file's text, so an edited file is a different key and is parsed again.
The cache never changes what is loaded:

- only documents that read back equal to what the parser gave are stored (JSON's own types: str-keyed
  maps, lists, str, 64-bit int, finite float, bool, None); anything else is parsed each time. What the
  one-pass builder of yamlsafe made is known to be of these types but for non-finite floats, which it
  reports, so it is only encoded (orjson refuses the rest); anything else is read back and compared;
- a file that fails to parse (bad YAML, over the bounds of yamlsafe) is never stored: its error is
  found and reported again on every load, with its line;
- the cache is JSON read by orjson, never pickle: a forged cache file can only forge rule documents,
  which is why it is ignored unless it is a regular file owned by this user, in a directory owned by
  this user, neither writable by group or others (created 0700/0600);
- a missing, unreadable, corrupt or older-version cache is ignored and rebuilt; an entry that does not
  decode, is not of the expected shape, or holds documents past yamlsafe's bounds (nested deeper than
  MAX_DEPTH, more than MAX_NODES nodes: what the parser refuses, so an entry written by the loader is
  always within them) is parsed again; a cache that cannot be written (read-only
  home, no home) just means parsing every time.

The file: the cache version on the first line, then one line per entry, `key<TAB>JSON` (orjson writes no
newline), so reading it splits lines and decodes nothing until a file is loaded, and writing it joins
the texts as they are. A command that loads in several steps (`rules lint`: mappings, rules, the parser
examples) saves once at the end (DocumentCache.saving).

SOCPIPE_RULE_CACHE: a directory to keep it in instead of $XDG_CACHE_HOME/socpipe (~/.cache/socpipe),
or `off`.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from detectors.common.digests import blake2b

MAX_DEPTH = 64
MAX_NODES = 100_000  # per file, aliases expanded; the 3,000 SigmaHQ rules peak at a few hundred

# Bump when what yamlsafe builds from a text changes (its rules, bounds or resolvers); the cache is
# also dropped when the parser's code changes (_cache_version: yamlsafe's source, PyYAML's files).
CACHE_VERSION = f"rule-docs-3:{MAX_DEPTH}:{MAX_NODES}"
CACHE_NAME = "rule-documents.jsonl"
OLD_CACHE_NAMES = ("rule-documents.json",)  # earlier layouts (one JSON object): removed at the next save
MAX_CACHE_BYTES = 64 << 20
MAX_ENTRIES = 6_000  # ~2x the SigmaHQ rule files; past this only the latest load's entries are kept (~15 MB at most)


class RuleYAMLError(ValueError):
    """A file that is not YAML, or YAML beyond the bounds above. `line` is 1-based (0: unknown)."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def cache_dir() -> Path | None:
    """Where the cache lives (None: disabled)."""
    env = os.environ.get("SOCPIPE_RULE_CACHE", "").strip()
    if env.lower() in ("off", "0", "no", "false"):
        return None
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):
        return None
    return Path(base) / "socpipe"


_VERSION: list[str] = []


def _cache_version() -> str:
    """CACHE_VERSION plus what the documents were parsed with: the content of yamlsafe.py (our builder)
    and the size and mtime of PyYAML's installed files (an upgrade rewrites them), found without
    importing PyYAML (a warm load never imports it). Anything unreadable: a version that never matches."""
    if not _VERSION:
        import importlib.util

        parts = [CACHE_VERSION, sys.version]
        try:
            for parser in ("yamlsafe.py", "ruleyaml.py", "ruleyaml_scalars.py"):
                parts.append(_digest((Path(__file__).with_name(parser)).read_bytes()))
            spec = importlib.util.find_spec("yaml")
            folder = Path(spec.origin).parent if spec and spec.origin else None
            if folder is None:
                raise OSError("PyYAML not found")
            for entry in sorted(os.scandir(folder), key=lambda e: e.name):
                if entry.is_file():
                    st = entry.stat()
                    parts.append(f"{entry.name}:{st.st_size}:{st.st_mtime_ns}")
        except OSError as exc:
            parts.append(f"unknown:{os.getpid()}:{exc}")
        _VERSION.append(_digest("\0".join(parts)))
    return _VERSION[0]


def _digest(text: str | bytes) -> str:
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return blake2b(data, digest_size=16).hexdigest()


def _file_digest(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return _digest(fh.read())
    except OSError:
        return ""


def _sources_unchanged(sources: Any) -> bool:
    return type(sources) is dict and bool(sources) and all(_file_digest(p) == h for p, h in sources.items())


def _as_json(value: Any) -> bytes | None:
    """`value`'s JSON text, or None when reading it back would not give exactly `value`: orjson refuses
    non-str keys, sets, bytes and ints past 64 bits, and writes NaN/inf as null and dates as strings,
    tuples as lists; each of these then compares unequal."""
    blob = _encoded(value)
    return blob if blob is not None and orjson.loads(blob) == value else None


def _encoded(value: Any) -> bytes | None:
    """`value`'s JSON text (None: orjson refuses it). Reads back exactly for a value made only of dict
    (str keys), list, str, int, finite float, bool and None: orjson refuses non-str keys, ints past 64
    bits and lone surrogates, and writes every float so it reads back the same."""
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return None


def _trusted(st: os.stat_result) -> bool:
    return st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


class DocumentCache:
    """Parsed documents by text hash, read from and written to one file (see the module docstring).

    Each entry is kept as its own JSON text and decoded only when its file is loaded: reading the
    cache builds one string per rule file, not the object trees of rules this process never loads."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.entries: dict[str, bytes] = {}
        self.used: set[str] = set()
        self.dirty = False
        self._holds = 0  # saving() blocks open: save() waits for the last to close
        self.hits = self.misses = 0
        self._sources: dict[str, str] = {}  # module file -> content digest, read once per process
        self._read()

    @property
    def path(self) -> Path | None:
        return None if self.directory is None else self.directory / CACHE_NAME

    def _read(self) -> None:
        path = self.path
        if path is None:
            return
        try:
            if not _trusted(os.stat(path.parent)):
                return
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or not _trusted(st) or st.st_size > MAX_CACHE_BYTES:
                return
            with os.fdopen(fd, "rb", closefd=False) as fh:
                data = fh.read()
        except OSError:
            return
        finally:
            os.close(fd)
        self.entries = _parse_file(data)

    def _stored(self, key: str) -> Any:
        """The entry under `key`, decoded (objects of the caller's own); None if absent or not JSON."""
        entry = self.entries.get(key)
        if entry is None:
            return None
        try:
            return orjson.loads(entry)
        except orjson.JSONDecodeError:
            return None

    def _keep(self, key: str, blob: bytes | None) -> None:
        """Store `blob` (an entry's JSON text) under `key` for the next save; None keeps nothing."""
        if blob is not None:
            self.entries[key] = blob
            self.used.add(key)
            self.dirty = True

    def _as_entry(self, value: Any) -> bytes | None:
        return None if self.directory is None else _as_json(value)

    def documents(self, text: str) -> tuple[list[Any], list[int]]:
        """The documents of `text` and the 1-based line of each (yamlsafe.load_documents, cached)."""
        key = _digest(text)
        entry = self._stored(key)
        if _valid_entry(entry) and _within_bounds(entry[0], len(self.entries[key])):
            self.hits += 1
            self.used.add(key)
            return entry[0], entry[1]
        self.misses += 1
        from detectors.sigma.ruleyaml import parse

        read = parse(text)  # the block subset rules are written in, read directly; None: anything else
        if read is None:
            from detectors.sigma.yamlsafe import load_documents_typed

            read = load_documents_typed(text)  # raises RuleYAMLError: never stored
        docs, lines, plain = read
        if self.directory is not None:
            # plain: JSON's own types, finite floats (see _encoded); else read back and compared
            self._keep(key, _encoded([docs, lines]) if plain else _as_json([docs, lines]))
        return docs, lines

    def memo(self, name: str, key: str, compute: Callable[[], Any], kind: type, source: str) -> Any:
        """`compute()` of a pure function of `key` (a text) defined in the module file `source`, kept
        across runs while that file is unchanged; a stored value not of `kind` is computed again."""
        code = self._sources.get(source)
        if code is None:
            code = self._sources[source] = _file_digest(source)
        entry_key = "memo:" + _digest(f"{name}\0{code}\0{key}")
        value = self._stored(entry_key)
        if type(value) is kind:
            self.used.add(entry_key)
            return value
        value = compute()
        if self.directory is not None:
            self._keep(entry_key, _encoded(value) if type(value) is str else _as_json(value))
        return value

    def derived(
        self, name: str, inputs: str, compute: Callable[[], Any], code: tuple[str, ...], valid: Callable[[Any], bool]
    ) -> Any:
        """`compute()`, or what it returned last time if `inputs` (a text it reads) and the source of
        every module under the `code` packages loaded when it ran are unchanged (content hashes, checked
        on every read) and the stored value is `valid`. What JSON cannot hold exactly is computed every
        time."""
        key = f"derived:{name}"
        want = _digest(f"{sys.version}\0{inputs}")
        stored = self._stored(key)
        if (
            type(stored) is dict
            and stored.get("inputs") == want
            and valid(stored.get("value"))
            and _sources_unchanged(stored.get("sources"))
        ):
            self.hits += 1
            self.used.add(key)
            return stored["value"]
        self.misses += 1
        value = compute()
        files = [getattr(m, "__file__", None) for n, m in list(sys.modules.items()) if n.startswith(code)]
        sources = {f: _file_digest(f) for f in files if f}
        if self._as_entry(value) is not None and all(sources.values()):
            self._keep(key, orjson.dumps({"inputs": want, "sources": sources, "value": value}))
        return value

    @contextmanager
    def saving(self) -> Iterator[DocumentCache]:
        """Save once when the block ends, not at each save() inside it (each writes the whole file)."""
        self._holds += 1
        try:
            yield self
        finally:
            self._holds -= 1
            self.save()

    def save(self) -> None:
        """Write the cache if this load parsed something new (atomically; errors ignored)."""
        if not self.dirty or self.directory is None or self._holds:
            return
        self.dirty = False
        entries = self.entries
        if len(entries) > MAX_ENTRIES:
            entries = {k: v for k, v in entries.items() if k in self.used}
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not _trusted(os.stat(self.directory)):
                return
            blob = _file_text(entries)
            # a random part: a file left by a process killed mid-write (same pid: a container's pid 1) never blocks
            tmp = self.directory / f".{CACHE_NAME}.{os.getpid()}.{os.urandom(6).hex()}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(blob)
                os.replace(tmp, self.directory / CACHE_NAME)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            for old in OLD_CACHE_NAMES:  # never read again: up to ~15 MB left behind otherwise
                (self.directory / old).unlink(missing_ok=True)
        except (OSError, TypeError, orjson.JSONEncodeError):
            return


def _file_text(entries: dict[str, bytes]) -> bytes:
    """The cache file: the version, then `key<TAB>JSON` per entry, one a line."""
    out = [_cache_version().encode(), b"\n"]
    for key, blob in entries.items():
        if "\t" not in key and "\n" not in key and b"\n" not in blob:  # never so from orjson; kept out all the same
            out += (key.encode(), b"\t", blob, b"\n")
    return b"".join(out)


def _parse_file(data: bytes) -> dict[str, bytes]:
    """Entries of a cache file (none unless it is of this version); a line without a tab is skipped.
    Each entry stays JSON text: decoded, and checked, only when its rule file is loaded."""
    head, _, body = data.partition(b"\n")
    if head != _cache_version().encode():
        return {}
    entries: dict[str, bytes] = {}
    for line in body.split(b"\n"):
        key, tab, blob = line.partition(b"\t")
        if tab:
            entries[key.decode("latin-1")] = blob
    return entries


def _valid_entry(entry: Any) -> bool:
    return (
        type(entry) is list
        and len(entry) == 2
        and type(entry[0]) is list
        and type(entry[1]) is list
        and len(entry[0]) == len(entry[1])
        and all(type(n) is int for n in entry[1])
    )


def _within_bounds(docs: list[Any], size: int) -> bool:
    """Whether `docs` (decoded from a cache entry of `size` bytes) are within what yamlsafe accepts
    from a text: no collection nested deeper than MAX_DEPTH (a document's root collection is level 1)
    and at most MAX_NODES nodes in all (a mapping's keys count, as the parser counts their scalars).
    Every node takes at least a byte of JSON, so an entry under MAX_NODES bytes (all but one of SigmaHQ's
    3,006 rule files) is only walked for its depth, collection by collection: ~5 us a file on a warm
    load of those files (on top of ~7 us for the hit itself)."""
    count = size > MAX_NODES
    nodes = len(docs)
    level = [c for c in docs if type(c) is dict or type(c) is list]
    for depth in range(1, MAX_DEPTH + 2):
        if not level:
            return True
        if depth > MAX_DEPTH:
            return False
        inner: list[Any] = []
        for c in level:
            values = c.values() if type(c) is dict else c
            if count:
                nodes += len(c) + len(values) if values is not c else len(c)  # a mapping's keys count too
            inner += [v for v in values if type(v) is dict or type(v) is list]
        if count and nodes > MAX_NODES:
            return False
        level = inner
    return False


_CACHE: DocumentCache | None = None


def document_cache() -> DocumentCache:
    """This process's cache (read on first use; SOCPIPE_RULE_CACHE is read then)."""
    global _CACHE
    directory = cache_dir()
    if _CACHE is None or _CACHE.directory != directory:
        _CACHE = DocumentCache(directory)
    return _CACHE


def load_documents(text: str) -> tuple[list[Any], list[int]]:
    """Every document of `text` (None for an empty one) and the line of each, within yamlsafe's bounds."""
    return document_cache().documents(text)
