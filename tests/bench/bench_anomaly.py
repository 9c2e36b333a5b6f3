"""Anomaly scoring cost per event and throughput with models on vs off, on one core.

Off = feature-free pass-through (the loop the worker runs anyway, with event-time parsing for the
watermark). On = the same loop through `AnomalyScorer.process` + `advance`, as the worker calls it.
Run: python tests/bench/bench_anomaly.py
Also, when ../shared holds CSIC 2010: the `request_profile` model (default for web.request) per
request on 6,000 unseen CSIC requests (target <= 50 us/request), and its training time on 30,000.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: tests.bench
from detectors.anomaly import AnomalyScorer, event_epoch, save_model_dir, train  # noqa: E402
from pipeline.devtools.synthetic import benign_web, scanner_web  # noqa: E402
from tests.bench.benchreport import target  # noqa: E402

T0 = 1_700_000_040.0


def stream(events, scorer=None, clock=time.perf_counter) -> tuple[float, int]:
    findings = 0
    newest = float("-inf")
    start = clock()
    for e in events:
        ts = event_epoch(e)
        if scorer is not None:
            findings += len(scorer.process(e))
        if ts is not None and ts > newest:
            newest = ts
            if scorer is not None:
                findings += len(scorer.advance(newest - 5.0))
    if scorer is not None:
        findings += len(scorer.flush())
    return clock() - start, findings


def main() -> None:
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    except (AttributeError, OSError):
        pass
    train_events = benign_web(T0, 600, seed=1, visitors=6)
    test_events = sorted(
        benign_web(T0 + 700 * 60, 300, seed=2, visitors=40) + scanner_web(T0 + 750 * 60, 5, rate=600),
        key=lambda e: e["@timestamp"],
    )
    n = len(test_events)
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {}
        for label, profile, kind in (
            ("web.source/isolation_forest", "web.source", "isolation_forest"),
            ("web.request/request_profile", "web.request", "request_profile"),
            ("web.request/robust_baseline", "web.request", "robust_baseline"),
            ("web.request/isolation_forest", "web.request", "isolation_forest"),
        ):
            d = Path(tmp) / label.replace("/", "_")
            save_model_dir(train(profile, train_events, kind=kind, fp_rate=0.01), d)
            dirs[label] = d
        base, _ = min(stream(test_events) for _ in range(3))
        print(f"events: {n} synthetic web events (benign + one scanner), one core")
        print(f"{'configuration':44s} {'events/s':>10s} {'us/event':>9s} {'model us/event':>15s} {'findings':>9s}")
        print(f"{'models off (pass-through)':44s} {n / base:10.0f} {base / n * 1e6:9.2f} {0.0:15.2f} {0:9d}")
        configs = [[k] for k in dirs] + [["web.source/isolation_forest", "web.request/request_profile"]]
        for labels in configs:
            runs = [stream(test_events, AnomalyScorer.from_dirs([dirs[k] for k in labels])) for _ in range(2)]
            elapsed, found = min(runs)
            name = " + ".join(labels)
            print(
                f"{name[:44]:44s} {n / elapsed:10.0f} {elapsed / n * 1e6:9.2f} "
                f"{(elapsed - base) / n * 1e6:15.2f} {found:9d}"
            )
        csic(Path(tmp))


CSIC = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "csic2010_http_training"


def csic(tmp: Path) -> None:
    import gzip

    from detectors.anomaly.csic import csic_events

    path = CSIC / "normalTrafficTraining.txt.gz"
    if not path.is_file():
        print(f"CSIC 2010 not found at {CSIC}: request_profile on real requests skipped")
        return
    with gzip.open(path, "rt", encoding="latin-1") as fh:
        events = list(csic_events(fh))
    started = time.perf_counter()
    model = train("web.request", events[:30000], kind="request_profile")
    trained = time.perf_counter() - started
    save_model_dir(model, tmp / "csic")
    test = events[30000:]
    # CPU time of this process (best of 5): a busy shared host stretches wall time, not this much
    cpu = time.process_time
    base, _ = min(stream(test, clock=cpu) for _ in range(5))
    elapsed, found = min(stream(test, AnomalyScorer.from_dirs([tmp / "csic"]), clock=cpu) for _ in range(5))
    per = (elapsed - base) / len(test) * 1e6
    target(
        "web anomaly scoring (us per request)",
        per,
        50.0,
        unit="us",
        higher_is_better=False,
        baseline=f"training 30k requests {trained:.2f} s",
    )
    print(f"CSIC 2010 request_profile: trained on 30,000 requests in {trained:.2f} s")
    print(
        f"CSIC 2010 request_profile: {len(test)} unseen requests, {per:.1f} us/request scoring, CPU time "
        f"(target <= 50), {found} findings"
    )


if __name__ == "__main__":
    main()
