"""Test support: the benign Windows corpus (tests/data/windows_benign, written by us) through the
production normaliser and the full Windows rule set (SigmaHQ's + the province's) -> alerts per
1,000 events, by level and by origin, and which rules fire.

`python -m tests.winbenign [tune|report]` prints the table and the rules that fired (README figures).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.winforward import REPO_RULES, WINDOWS_RULES, _engine

CORPUS = Path(__file__).resolve().parent / "data" / "windows_benign"
LEVELS = ("informational", "low", "medium", "high", "critical")


def files(half: str) -> list[Path]:
    """The corpus files of one half: 'tune' (province rules were narrowed on it) or 'report'."""
    return sorted(CORPUS.glob(f"{half}-*.jsonl"))


def origin(rule_path: str) -> str:
    """'province' for rules/ of this repository, 'sigmahq' for the shared SigmaHQ rules."""
    return "province" if Path(rule_path).resolve().is_relative_to(REPO_RULES.resolve()) else "sigmahq"


@dataclass
class BenignFigures:
    events: int = 0
    alerts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (origin, level) -> alerts
    rules: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (origin, level, title) -> alerts

    def per_1000(self, org: str, levels: tuple[str, ...]) -> float:
        n = sum(self.alerts[(org, lv)] for lv in levels)
        return 1000 * n / self.events if self.events else 0.0


def replay(paths: list[Path], rule_paths: list[Path] | None = None) -> BenignFigures:
    """Each file is one host's half-day: correlation state is reset between files."""
    from collectors.wire import LineBatch, LogLine
    from detectors.normalise import Normaliser

    engine, blank = _engine(tuple(rule_paths or (WINDOWS_RULES, REPO_RULES)))
    out = BenignFigures()
    for path in paths:
        engine.restore(blank)
        text = path.read_text(encoding="utf-8").splitlines()
        lines = [LogLine(text=t, seq=i + 1, read_at=1.7e9) for i, t in enumerate(text) if t.strip()]
        out.events += len(lines)
        batch = LineBatch("benign", "benign", "collector", "winlog-tcp:6514/benign", lines, "windows", "UTC")
        hits: list[Any] = []
        for ev in Normaliser(default_timezone="UTC").normalise_batch(batch):
            hits += engine.process(ev)
        hits += engine.advance(float("inf"))
        for d in hits:
            if d.continuation:
                continue
            org = origin(d.rule_path)
            out.alerts[(org, d.level)] += 1
            out.rules[(org, d.level, d.rule_title)] += 1
    return out


def table(by_half: dict[str, BenignFigures]) -> str:
    """Markdown: alerts per 1,000 events by level, SigmaHQ vs province, per half."""
    head = (
        "| rules | "
        + " | ".join(f"{h} ({f.events} events): info/low, medium, high+critical" for h, f in by_half.items())
        + " |"
    )
    rows = [head, "|---" * (len(by_half) + 1) + "|"]
    for org in ("sigmahq", "province"):
        cells = []
        for f in by_half.values():
            cells.append(
                f"{f.per_1000(org, ('informational', 'low')):.1f}, {f.per_1000(org, ('medium',)):.1f}, "
                f"**{f.per_1000(org, ('high', 'critical')):.1f}**"
            )
        rows.append(f"| {org} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    import sys

    halves = sys.argv[1:] or ["tune", "report"]
    figs = {h: replay(files(h)) for h in halves}
    print(table(figs))
    for h, f in figs.items():
        print(f"\n{h}: rules that fired")
        for (org, level, title), n in sorted(
            f.rules.items(), key=lambda x: (x[0][0], LEVELS.index(x[0][1]) if x[0][1] in LEVELS else 9, x[0][2])
        ):
            print(f"  {org:8} {level:13} {n:4}  {title}")
