"""Forced failures and slow answers, for the SDK's retry and timeout tests.

Faults are queued per path and consumed one per matching request, before
authentication: they stand for a load balancer or an overloaded gateway in
front of the real logic. A hook can decide instead, for patterns a queue
cannot express.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Fault:
    """What to do to one request.

    ``status=None`` answers normally after ``delay`` seconds (a slow gateway);
    otherwise the gateway answers ``status`` with an OpenAI-style error after
    ``delay``, with ``Retry-After: retry_after`` when given.
    """

    status: int | None = None
    delay: float = 0.0
    retry_after: int | str | None = None
    message: str = "fault injected by the reference gateway"

    def __post_init__(self) -> None:
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"Fault status must be an HTTP status, got {self.status}")
        if self.delay < 0:
            raise ValueError("Fault delay must be >= 0 seconds")


#: Called with (method, path); returns a fault for this request or ``None``.
FaultHook = Callable[[str, str], "Fault | None"]


class FaultQueue:
    """FIFO faults, each bound to one path or to any path (``None``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[tuple[str | None, Fault]] = deque()
        self.hook: FaultHook | None = None

    def add(self, fault: Fault, *, path: str | None = None, times: int = 1) -> None:
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._queue.extend((path, fault) for _ in range(times))

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
        self.hook = None

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def take(self, method: str, path: str) -> Fault | None:
        """The first queued fault for ``path`` (removed), else what the hook says."""
        with self._lock:
            for i, (where, fault) in enumerate(self._queue):
                if where is None or where == path:
                    del self._queue[i]
                    return fault
        hook = self.hook
        return hook(method, path) if hook is not None else None
