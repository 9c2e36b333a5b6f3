"""Windows events per second on one core: normalisation, and normalisation + the Windows rule set.

Events: every record of ../shared/datasets/evtx_attack_samples (Security, Sysmon, PowerShell,
System, Defender ...) rendered once, before timing, as the JSON NXLog CE and Winlogbeat send,
alternating shapes, repeated up to --events. Rules: SigmaHQ's Windows rules
(../shared/sigma/rules-windows) plus the province rules (rules/). Baseline in the same run: decoding
the same lines with orjson alone (the floor any JSON normaliser pays), so the figures are ratios a
loaded shared machine does not distort much. CPU time, best of 3.

    python tests/bench/bench_windows.py [--events N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import orjson  # noqa: E402

from collectors.wire import LineBatch, LogLine  # noqa: E402
from detectors.normalise import Normaliser  # noqa: E402
from detectors.sigma import Engine, load_rules  # noqa: E402
from tests.winforward import REPO_RULES, WINDOWS_RULES, forwarded_lines, sample_files  # noqa: E402


def pin_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        except OSError:
            pass


def best_cpu(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=30000)
    args = ap.parse_args()
    try:
        import evtx  # noqa: F401
    except ImportError:
        sys.exit("skipped: the evtx package (test extra) is not installed")
    files = sample_files()
    if not files or not WINDOWS_RULES.is_dir():
        sys.exit("skipped: ../shared/datasets/evtx_attack_samples or ../shared/sigma/rules-windows missing")
    pin_one_core()
    lines: list[str] = []
    for i, f in enumerate(files):
        lines.extend(forwarded_lines(f, "nxlog" if i % 2 == 0 else "winlogbeat"))
    distinct = len(lines)
    lines = (lines * (args.events // max(1, distinct) + 1))[: args.events]
    batches = [
        LineBatch(
            "bench",
            "bench",
            "collector",
            "winlog-tcp:6514/bench",
            [LogLine(text=t, seq=j + 1, read_at=1.7e9) for j, t in enumerate(lines[i : i + 500])],
            "windows",
            "UTC",
        )
        for i in range(0, len(lines), 500)
    ]
    t0 = time.perf_counter()
    loaded = load_rules([str(WINDOWS_RULES), str(REPO_RULES)])
    load_s = time.perf_counter() - t0

    def decode_only() -> None:
        for b in batches:
            for ln in b.lines:
                orjson.loads(ln.text)

    normalised: list[dict] = []

    def normalise() -> None:
        normalised.clear()
        n = Normaliser(default_timezone="UTC")
        for b in batches:
            normalised.extend(n.normalise_batch(b))

    engine = Engine(loaded.rules)
    blank = engine.snapshot()
    normalise()
    for ev in normalised:  # warm up: build every logsource bucket before timing
        engine.matching_rules(ev)

    def normalise_and_detect() -> None:
        engine.restore(blank)
        n = Normaliser(default_timezone="UTC")
        for b in batches:
            for ev in n.normalise_batch(b):
                engine.process(ev)

    def detect_only() -> None:
        engine.restore(blank)
        for ev in normalised:
            engine.process(ev)

    n_ev = len(lines)
    dec_s = best_cpu(decode_only)
    norm_s = best_cpu(normalise)
    det_s = best_cpu(detect_only)
    both_s = best_cpu(normalise_and_detect)
    singles = sum(1 for r in loaded.rules if getattr(r, "kind", "") == "single")
    print(
        f"events: {n_ev} ({distinct} distinct EVTX records, NXLog and Winlogbeat shapes); one core, CPU time, best of 3"
    )
    print(f"rules: {len(loaded.rules)} loaded ({singles} single) from rules-windows + rules/ in {load_s:.1f} s")
    print(f"baseline orjson decode only:      {n_ev / dec_s:>10,.0f} events/s")
    print(f"normalisation (windows.py):       {n_ev / norm_s:>10,.0f} events/s  ({norm_s / dec_s:.1f}x the decode)")
    print(f"detection only (engine.process):  {n_ev / det_s:>10,.0f} events/s")
    print(f"normalisation + Windows rule set: {n_ev / both_s:>10,.0f} events/s  ({both_s / dec_s:.1f}x the decode)")


if __name__ == "__main__":
    main()
