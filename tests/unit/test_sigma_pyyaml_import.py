"""PyYAML imported through detectors.sigma.pyyaml_import: its pure-Python reader's NON_PRINTABLE pattern
is compiled on first use instead of at import, and behaves as the compiled pattern; nothing is left in
Python's regex cache."""

from __future__ import annotations

import re
import subprocess
import sys

import yaml

from detectors.sigma.pyyaml_import import NON_PRINTABLE, CompiledOnUse


def test_the_pattern_is_pyyamls():
    # whichever object the reader holds (compiled, or the stand-in when yamlsafe imported PyYAML first)
    assert yaml.reader.Reader.NON_PRINTABLE.pattern == NON_PRINTABLE


def test_the_stand_in_answers_as_the_compiled_pattern():
    stand_in, compiled = CompiledOnUse(NON_PRINTABLE), re.compile(NON_PRINTABLE)
    for text in ("plain text", "tab\tand\nnewline", "bell\x07", "\x85 \xa0 é 字 \U0001f600", "\ufffe", "\x7f", ""):
        got, want = stand_in.search(text), compiled.search(text)
        assert (got and got.span()) == (want and want.span())


def test_importing_yamlsafe_first_leaves_the_reader_working_and_the_cache_clean():
    code = """
import re
import detectors.sigma.yamlsafe
import yaml
from detectors.sigma.pyyaml_import import CompiledOnUse
assert isinstance(yaml.reader.Reader.NON_PRINTABLE, CompiledOnUse)
held = [v for c in (re._cache, getattr(re, "_cache2", {})) for v in c.values()]
assert not any(isinstance(v, CompiledOnUse) for v in held)
try:
    yaml.load("a: b\\x07", Loader=yaml.SafeLoader)  # the pure-Python reader still refuses it
    raise SystemExit("accepted")
except yaml.reader.ReaderError as exc:
    assert "#x0007" in str(exc)
assert yaml.load("a: é", Loader=yaml.SafeLoader) == {"a": "é"}
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "ok"
