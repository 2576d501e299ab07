"""Running counts of the gateway's cache answers (``collect_stats=True``): thread-safe."""

from __future__ import annotations

import threading
from typing import ClassVar

from ._models import CacheStats


class StatsRecorder:
    """Thread-safe running counts of cache statuses."""

    _FIELDS: ClassVar[dict[str, str]] = {
        "HIT_L1": "hits_l1",
        "HIT_L1_STALE": "hits_l1_stale",
        "HIT_L2": "hits_l2",
        "MISS": "misses",
        "BYPASS": "bypasses",
    }

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys((*self._FIELDS.values(), "unknown", "requests"), 0)

    def observe(self, status: str) -> None:
        field = self._FIELDS.get(status, "unknown")
        with self._lock:
            self._counts[field] += 1
            self._counts["requests"] += 1

    def snapshot(self) -> CacheStats:
        with self._lock:
            return CacheStats(**self._counts)

    def reset(self) -> None:
        with self._lock:
            for key in self._counts:
                self._counts[key] = 0
