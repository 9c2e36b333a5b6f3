"""Numbers as a person reads them in a status line, one home for the agent and the SOC side:
an age ("45s ago", "12m ago", "3.5h ago", "4d ago") and a size ("512 B", "1.5 MiB"). Pure."""

from __future__ import annotations


def ago(ts: float | None, now: float) -> str:
    """How long before `now` the epoch time `ts` was; "never" for None or 0 (never happened)."""
    if not ts:
        return "never"
    d = max(0.0, now - ts)
    if d < 120:
        return f"{d:.0f}s ago"
    if d < 7200:
        return f"{d / 60:.0f}m ago"
    if d < 172800:
        return f"{d / 3600:.1f}h ago"
    return f"{d / 86400:.0f}d ago"


def size(n: float) -> str:
    """A byte count in B, KiB, MiB or GiB."""
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
