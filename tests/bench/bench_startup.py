"""Start-up: `socpipe rules lint` and the engine build on the shared rule set (issue 15, target <= 0.3 s).

Rules: every SigmaHQ server-log rule in ../shared/sigma/rules* plus the province rules (the rule set of
bench_detect). Figures are CPU seconds (user+sys of the child, best of 5): on a shared 2-core machine wall
time mostly measures the neighbours. Baselines from the same run: a bare interpreter start, and the
pure-Python PyYAML SafeLoader reading the same files (what reading the YAML alone cost before libyaml).

Both starts are measured: warm (the rule-document cache of detectors.sigma.ruledocs holds every file: a
restart, a lint of unchanged rules) and cold (an empty cache: the first start, or every file edited; this
start also writes the cache). Each is a target: the cache must not be what makes start-up fast enough.

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
from tests.bench.benchreport import target, verdict  # noqa: E402

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
    from detectors.sigma.rulefiles import rule_files

    sigma = [SHARED / "sigma" / d for d in ("rules", "rules-emerging-threats", "rules-threat-hunting")]
    paths = [str(p) for p in sigma if p.is_dir()] + [str(REPO / "rules")]
    lint_cmd = [sys.executable, "-m", "pipeline.cli", "rules", "lint", *paths]
    # As installed: bytecode cached (pip writes .pyc; this machine sets PYTHONDONTWRITEBYTECODE, which
    # would recompile every module on every start), in a throw-away prefix so the tree stays clean.
    with tempfile.TemporaryDirectory() as pyc:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = pyc
        env["SOCPIPE_RULE_CACHE"] = os.path.join(pyc, "rules")
        subprocess.run(lint_cmd, stdout=subprocess.DEVNULL, cwd=REPO, env=env, check=False)  # .pyc and cache
        warm = child_cpu(lint_cmd, env=env)
        bare = child_cpu([sys.executable, "-c", "pass"], env=env)
        cold = float("inf")
        for i in range(5):  # an empty cache directory each time
            env["SOCPIPE_RULE_CACHE"] = os.path.join(pyc, f"cold{i}")
            cold = min(cold, child_cpu(lint_cmd, repeat=1, env=env))
        env["SOCPIPE_RULE_CACHE"] = "off"
        uncached = child_cpu(lint_cmd, env=env)
        lint_nopyc = child_cpu(lint_cmd, repeat=3, env={**os.environ, "SOCPIPE_RULE_CACHE": os.path.join(pyc, "rules")})

    best = float("inf")
    best_off = float("inf")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["SOCPIPE_RULE_CACHE"] = cache
        load_rules(paths)  # fills the cache
        for mode in [cache, "off"] * 3:
            os.environ["SOCPIPE_RULE_CACHE"] = mode
            t0 = time.process_time()
            loaded = load_rules(paths)
            Engine(loaded.rules)
            took = time.process_time() - t0
            if mode == "off":
                best_off = min(best_off, took)
            else:
                best = min(best, took)
    texts = [f.read_text(encoding="utf-8") for f in rule_files(paths)]
    t0 = time.process_time()
    for t in texts:
        list(yaml.load_all(t, Loader=yaml.SafeLoader))
    pure_yaml = time.process_time() - t0

    print(f"rules: {loaded.loaded} of {loaded.documents} from {loaded.files} files ({len(loaded.errors)} errors)")
    for label, figure in (("warm", warm), ("cold", cold)):
        target(
            f"start-up: `socpipe rules lint`, {label} cache",
            figure,
            TARGET_S,
            unit="s CPU",
            higher_is_better=False,
            baseline=f"`python -c pass` {bare:.3f} s; no cache {uncached:.3f} s",
        )
    for label, figure in (("rule cache warm", warm), ("rule cache cold (empty, then written)", cold)):
        print(f"`socpipe rules lint` (whole process, bytecode cached), {label}: {figure:.3f} s CPU  ", end="")
        print(verdict(figure, TARGET_S, higher_is_better=False))
    print(f"  baseline: bare `python -c pass` {bare:.3f} s CPU; cache off {uncached:.3f} s CPU; ", end="")
    print(f"without cached bytecode (warm rule cache): {lint_nopyc:.3f} s CPU")
    print(f"load_rules + Engine build in process: {best:.3f} s CPU warm, {best_off:.3f} s cache off")
    print(
        f"  baseline: pure-Python PyYAML reading the same files: {pure_yaml:.3f} s CPU ({pure_yaml / best_off:.1f}x cache off)"
    )
    print(f"(CPU seconds, best of 5/3; machine shared, load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
