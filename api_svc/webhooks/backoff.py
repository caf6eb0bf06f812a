"""When a failed delivery is tried again, and when it is given up: exponential backoff with
jitter, inside a bounded retry period."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetryPolicy:
    # The first retry waits this long; each later one twice as long as the one before, up to
    # max_backoff_seconds.
    first_backoff_seconds: float = 5.0
    max_backoff_seconds: float = 3600.0
    # No attempt starts later than this after the task ended.
    retry_seconds: float = 86400.0

    def delay_after(self, failures: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait after the `failures`-th failed attempt (1, 2, ...): first × 2^(n−1),
        capped, plus up to half of that again. Jitter spreads the retries of many events that
        failed together (a receiver down for everyone); added on top rather than drawn from the
        whole range ("full jitter") so each gap stays longer than the one before until the cap
        (b·2ⁿ > 1.5·b·2ⁿ⁻¹): a receiver that is struggling is given ever more room."""
        base = min(self.first_backoff_seconds * 2.0 ** (max(failures, 1) - 1), self.max_backoff_seconds)
        return base * (1 + 0.5 * rng())

    def next_attempt(
        self, ended_at: datetime, now: datetime, failures: int, rng: Callable[[], float] = random.random
    ) -> datetime | None:
        """When to try again after `failures` failed attempts; None: the next attempt would
        start past the retry period, so the delivery is given up now."""
        at = now + timedelta(seconds=self.delay_after(failures, rng))
        return None if at > ended_at + timedelta(seconds=self.retry_seconds) else at
