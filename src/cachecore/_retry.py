"""When to retry a management call, and how long to wait: decisions, no I/O.

Both twins ask ``RetryPolicy.delay`` and differ only in how they sleep.
Retried: connection errors, timeouts, 429 (honouring ``Retry-After``, capped)
and 502/503/504, with jittered exponential backoff. Proxied LLM calls use it
only for a 429 the transport raises (see ``AsyncCachecoreTransport._retry_delay``):
otherwise the LLM SDK owns their retries.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from . import _wire
from .errors import (
    CachecoreConnectionError,
    CachecoreError,
    CachecoreRateLimitError,
    CachecoreStatusError,
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 3
    base_delay: float = 0.25
    max_delay: float = 8.0
    max_retry_after: float = 30.0

    def delay(self, error: CachecoreError, attempt: int) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or ``None`` to give up."""
        if attempt > self.max_retries or not is_retryable(error):
            return None
        if isinstance(error, CachecoreRateLimitError) and error.retry_after is not None:
            return min(error.retry_after, self.max_retry_after)
        backoff = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return backoff * (0.5 + random.random() / 2)  # "equal jitter"


def is_retryable(error: CachecoreError) -> bool:
    if isinstance(error, (CachecoreConnectionError, CachecoreRateLimitError)):
        return True
    return isinstance(error, CachecoreStatusError) and error.status_code in _wire.RETRY_STATUSES
