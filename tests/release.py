"""release/build.py (what `make dist` and `make agent-deb` run), loaded from its path: release/ is no
package, and a plain `import build` would give pypa's `build` instead whenever that was imported first."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

BUILD_PY = Path(__file__).resolve().parents[1] / "release" / "build.py"


def release_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("release_build", BUILD_PY)
    assert spec is not None and spec.loader is not None, BUILD_PY
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
