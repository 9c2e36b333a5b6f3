"""One place where every benchmark target is judged, so `make bench` ends with one table.

A benchmark calls `target(...)` for each figure an issue sets a target on: it prints the usual
"[target ...] MET/MISSED" verdict and, when `SOCPIPE_BENCH_SUMMARY` names a file (the Makefile sets
it), appends the figure as one JSON line there. `python tests/bench/benchreport.py FILE` prints the
table of every figure beside its baseline and target, and how many targets were met in the run.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def target(
    name: str,
    value: float,
    goal: float,
    *,
    unit: str,
    higher_is_better: bool,
    baseline: str = "",
    source: str = "",
    info: str = "",
) -> bool:
    """Judge one figure against its target; record it for the run's summary; return whether met.
    `info` (why): the figure is shown beside the targets but not counted as one (e.g. a yardstick
    that does not do the same work as what it measures)."""
    met = value >= goal if higher_is_better else value <= goal
    path = os.environ.get("SOCPIPE_BENCH_SUMMARY")
    if path:
        row = {
            "name": name,
            "value": value,
            "goal": goal,
            "unit": unit,
            "op": ">=" if higher_is_better else "<=",
            "met": met,
            "baseline": baseline,
            "source": source or Path(sys.argv[0]).name,
            "load": round(os.getloadavg()[0], 1),
            "info": info,
        }
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
    return met


def verdict(value: float, goal: float, *, higher_is_better: bool) -> str:
    """The bracketed verdict benchmarks print beside a figure, e.g. "[target <= 1.5] MET"."""
    met = value >= goal if higher_is_better else value <= goal
    return f"[target {'>=' if higher_is_better else '<='} {goal:g}] {'MET' if met else 'MISSED'}"


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def summary(rows: list[dict]) -> str:
    lines = [
        f"{'figure':46s} {'value':>10s} {'target':>12s}  {'':6s} {'load':>4s}  baseline (same run)",
    ]
    for r in rows:
        goal = f"{r['op']} {_fmt(r['goal'])} {r['unit']}"
        state = "info" if r.get("info") else ("MET" if r["met"] else "MISSED")
        lines.append(
            f"{r['name'][:46]:46s} {_fmt(r['value']):>10s} {goal:>12s}  {state:6s} {r['load']:4.1f}  {r['baseline']}"
        )
    judged = [r for r in rows if not r.get("info")]
    met = sum(1 for r in judged if r["met"])
    lines.append(f"{met} of {len(judged)} targets met in this run")
    for r in rows:
        if r.get("info"):
            lines.append(f"info, not counted: {r['name']}: {r['info']}")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: benchreport.py SUMMARY_FILE")
    file = Path(sys.argv[1])
    rows = (
        [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
        if file.exists()
        else []
    )
    print(summary(rows) if rows else "no benchmark recorded a target")
