"""PyYAML, imported without compiling its pure-Python reader's NON_PRINTABLE pattern at import.

yaml/reader.py compiles, when it is imported, a character class of nearly all of Unicode
(`[^\\x09\\x0A\\x0D\\x20-\\x7E\\x85\\xA0-\\uD7FF\\uE000-\\uFFFD\\U00010000-\\U0010ffff]`): ~6 ms CPU, Python's
regex compiler building the charset of ranges up to U+10FFFF, a fifth of importing PyYAML and ~2% of a
cold `socpipe rules lint`. Only PyYAML's pure-Python Reader uses it, and rule files never go through
that reader while libyaml is there (yamlsafe reads them with libyaml's parser). So while PyYAML is
imported, Python's regex cache holds a stand-in under that pattern's key: the reader gets an object that
compiles the real pattern when first used (a config read with yaml.safe_load, PyYAML without libyaml),
and the stand-in leaves the cache as soon as the import is done. Nothing else is touched; if PyYAML is
already imported, or the regex cache is not the dict it is in CPython 3.11-3.13, a plain import.
"""

from __future__ import annotations

import importlib
import re
import sys
from types import ModuleType
from typing import Any

NON_PRINTABLE = "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"


class CompiledOnUse:
    """Stands in for re.compile(pattern): compiles it on the first attribute read (search, match...)."""

    __slots__ = ("_compiled", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._compiled: re.Pattern[str] | None = None

    def __getattr__(self, name: str) -> Any:
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = re.compile(self.pattern)
        return getattr(compiled, name)


def import_pyyaml() -> ModuleType:
    """The `yaml` module (see the module docstring)."""
    if "yaml" in sys.modules:
        return sys.modules["yaml"]
    cache = getattr(re, "_cache", None)
    key = (str, NON_PRINTABLE, 0)
    if type(cache) is not dict or key in cache:
        return importlib.import_module("yaml")
    stand_in = CompiledOnUse(NON_PRINTABLE)
    cache[key] = stand_in
    try:
        return importlib.import_module("yaml")
    finally:
        for held in (cache, getattr(re, "_cache2", None)):  # 3.12+ keeps recent patterns in a second dict
            if type(held) is dict and held.get(key) is stand_in:
                del held[key]
