"""Per-tenant token buckets, so one noisy tenant cannot starve the others."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable


class RateLimiter:
    """``rate`` requests per second per tenant with bursts of ``burst``; ``rate=0`` is off."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # tenant -> (tokens, at)

    def acquire(self, tenant: str) -> int | None:
        """Take one token; ``None`` when allowed, else whole seconds to wait (>= 1)."""
        if self.rate <= 0:
            return None
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(tenant, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                self._buckets[tenant] = (tokens - 1.0, now)
                return None
            self._buckets[tenant] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.rate))
