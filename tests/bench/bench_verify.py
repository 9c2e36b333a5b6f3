"""What verifying raw records costs stage 1 (issue #17: "a few per cent at most").

Records are real corpus lines (../shared/datasets: sshd/syslog and web access logs; synthetic sshd
lines without them) in agent-sized batches, signed as `collectors.agent` signs them. Both passes do
stage 1's pure work per record, same records, same run, one core:

  baseline : decode the batch, drop re-sent seqs, normalise, match the province rules (what stage 1
             did before records were signed);
  verified : the same, but the record first goes through `Intake.accept` (registry lookup, HMAC over
             key + headers + value, key/value agreement, registry stamping) instead of a bare decode.

    python tests/bench/bench_verify.py [--records N] [--lines-per-record N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO))

from collectors.wire import LineBatch, LogLine, signed_record  # noqa: E402
from detectors.normalise import Normaliser  # noqa: E402
from detectors.sigma import Engine, load_rules  # noqa: E402
from pipeline.dedup import SeenSequences  # noqa: E402
from pipeline.enrolment.registry import AgentRecord  # noqa: E402
from pipeline.worker.intake import Intake  # noqa: E402

CORPORA = [
    ("datasets/loghub_2k_samples/OpenSSH", "*.log", "system.auth"),
    ("datasets/loghub_2k_samples/Linux", "*.log", None),
    ("datasets/secrepo_web_access_samples", "access.log*", "apache.access"),
]


def corpus_lines(limit: int) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for rel, pattern, dataset in CORPORA:
        root = SHARED / rel
        for f in sorted(root.rglob(pattern)) if root.is_dir() else []:
            with open(f, "rb") as fh:
                out += [(raw.decode("utf-8", "replace").rstrip("\r\n"), dataset) for raw in fh if raw.strip()]
            if len(out) >= limit:
                return out[:limit]
    if out:
        return (out * (limit // len(out) + 1))[:limit]  # repeated to size (seqs stay unique)
    if not out:  # no corpora: synthetic sshd lines
        out = [
            (f"Dec  6 01:02:03 web01 sshd[{i}]: Failed password for root from 10.0.{i % 250}.1 port 22 ssh2", None)
            for i in range(limit)
        ]
    return out[:limit]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=300)
    ap.add_argument("--lines-per-record", type=int, default=100)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        except OSError:
            pass
    agent = AgentRecord("agt-bench", "xa-bench", "web01", "s" * 43, "1", 0.0, False)
    lines = corpus_lines(args.records * args.lines_per_record)
    records = []
    for r in range(0, len(lines), args.lines_per_record):
        chunk = lines[r : r + args.lines_per_record]
        batch = LineBatch(
            agent.agency_id,
            agent.agent_id,
            "web01",
            f"/var/log/src{r % 7}.log",
            [LogLine(t, seq=r + i + 1, line_no=r + i + 1, read_at=1.0) for i, (t, _) in enumerate(chunk)],
            dataset=chunk[0][1],
        )
        records.append(signed_record(batch, agent.secret, r + 1))
    rules = load_rules([REPO / "rules"]).rules
    lookup = {agent.agent_id: agent}.get

    def baseline() -> None:
        seen, norm, engine = SeenSequences(), Normaliser(default_timezone="UTC"), Engine(rules)
        for _key, _headers, value in records:
            b = LineBatch.from_bytes(value)
            b.lines = [ln for ln in b.lines if seen.add(b.agent_id, b.source, ln.seq)]
            for ev in norm.normalise_batch(b):
                engine.process(ev)

    def verified() -> None:
        intake, norm, engine = Intake(lookup, 100_000), Normaliser(default_timezone="UTC"), Engine(rules)
        for key, headers, value in records:
            got = intake.accept(0, key, headers, value)
            assert not isinstance(got, str), got
            for ev in norm.normalise_batch(got.batch):
                engine.process(ev)

    def verify_only() -> None:
        intake = Intake(lookup, 100_000)
        for key, headers, value in records:
            intake.accept(0, key, headers, value)

    def decode_only() -> None:
        for _key, _headers, value in records:
            LineBatch.from_bytes(value)

    best: dict[str, float] = {}
    for _ in range(5):  # interleaved passes, best CPU time of each: load from others only adds noise
        for name, fn in (
            ("baseline", baseline),
            ("verified", verified),
            ("verify", verify_only),
            ("decode", decode_only),
        ):
            t = time.process_time()
            fn()
            best[name] = min(best.get(name, float("inf")), time.process_time() - t)
    n_lines = sum(len(LineBatch.from_bytes(v).lines) for _k, _h, v in records)
    mb = sum(len(v) for _k, _h, v in records) / 1e6
    print(
        f"records: {len(records)} x ~{args.lines_per_record} lines ({n_lines} lines, {mb:.1f} MB), rules: {len(rules)}"
    )
    print(f"stage 1 baseline (decode, dedup, normalise, match): {n_lines / best['baseline']:,.0f} lines/s")
    print(
        f"stage 1 verified (intake: verify + decode + dedup, normalise, match): {n_lines / best['verified']:,.0f} lines/s"
    )
    extra = best["verify"] - best["decode"]
    print(
        f"verification alone: {1e6 * extra / len(records):.0f} us/record over a bare decode "
        f"= {100 * extra / best['baseline']:.1f}% of stage 1's baseline; "
        f"end to end {100 * (best['verified'] / best['baseline'] - 1):+.1f}% (target: a few per cent at most)"
    )
    print("(CPU seconds of this process, best of 5 interleaved passes, pinned to one core)")


if __name__ == "__main__":
    main()
