"""Per-source rate limit (pure): a token bucket refilled by the caller's clock."""

from __future__ import annotations


class TokenBucket:
    def __init__(self, rate_per_s: float, burst: float):
        self.rate = rate_per_s
        self.burst = max(burst, 1.0)
        self.tokens = self.burst
        self.updated: float | None = None

    def _refill(self, now: float) -> None:
        if self.updated is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def available(self, now: float) -> bool:
        self._refill(now)
        return self.tokens > 0

    def take(self, n: int, now: float) -> None:
        """Spend n tokens; may go negative (a big read), which then pauses the source longer."""
        self._refill(now)
        self.tokens -= n
