"""Start-up: `socpipe rules lint` and the engine build on the shared rule set (issue 15, target <= 0.3 s).

Rules: every SigmaHQ server-log rule in ../shared/sigma/rules* plus the province rules (the rule set of
bench_detect). Figures are CPU seconds (user+sys of the child, best of 5): on a shared 2-core machine wall
time mostly measures the neighbours. Baselines from the same run: a bare interpreter start, and the
pure-Python PyYAML SafeLoader reading the same files (what reading the YAML alone cost before libyaml).

    python tests/bench/bench_startup.py
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchreport import target  # noqa: E402

TARGET_S = 0.3


def child_cpu(cmd: list, repeat: int = 5, env: dict | None = None) -> float:
    best = float("inf")
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO, check=False, env=env)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return best


def main() -> None:
    import yaml

    from detectors.sigma import Engine, load_rules
    from detectors.sigma.loader import rule_files

    sigma = [SHARED / "sigma" / d for d in ("rules", "rules-emerging-threats", "rules-threat-hunting")]
    paths = [str(p) for p in sigma if p.is_dir()] + [str(REPO / "rules")]
    lint_cmd = [sys.executable, "-m", "pipeline.cli", "rules", "lint", *paths]
    # As installed: bytecode cached (pip writes .pyc; this machine sets PYTHONDONTWRITEBYTECODE, which
    # would recompile every module on every start), in a throw-away prefix so the tree stays clean.
    with tempfile.TemporaryDirectory() as pyc:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = pyc
        subprocess.run(lint_cmd, stdout=subprocess.DEVNULL, cwd=REPO, env=env, check=False)  # writes the .pyc
        lint = child_cpu(lint_cmd, env=env)
        bare = child_cpu([sys.executable, "-c", "pass"], env=env)
    lint_nopyc = child_cpu(lint_cmd, repeat=3)

    best = float("inf")
    for _ in range(3):
        t0 = time.process_time()
        loaded = load_rules(paths)
        Engine(loaded.rules)
        best = min(best, time.process_time() - t0)
    texts = [f.read_text(encoding="utf-8") for f in rule_files(paths)]
    t0 = time.process_time()
    for t in texts:
        list(yaml.load_all(t, Loader=yaml.SafeLoader))
    pure_yaml = time.process_time() - t0

    print(f"rules: {loaded.loaded} of {loaded.documents} from {loaded.files} files ({len(loaded.errors)} errors)")
    target(
        "start-up: `socpipe rules lint`, shared rules",
        lint,
        TARGET_S,
        unit="s CPU",
        higher_is_better=False,
        baseline=f"`python -c pass` {bare:.3f} s",
    )
    print(f"`socpipe rules lint` (whole process, bytecode cached): {lint:.3f} s CPU  [target <= {TARGET_S} s]", end="")
    print("  MET" if lint <= TARGET_S else "  MISSED")
    print(f"  baseline: bare `python -c pass` {bare:.3f} s CPU; without cached bytecode: {lint_nopyc:.3f} s CPU")
    print(f"load_rules + Engine build in process: {best:.3f} s CPU")
    print(f"  baseline: pure-Python PyYAML reading the same files: {pure_yaml:.3f} s CPU ({pure_yaml / best:.1f}x)")
    print(f"(CPU seconds, best of 5/3; machine shared, load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
