"""Concurrency that cannot be rewritten token by token, as async/sync pairs.

Modelled on httpcore's ``_synchronization.py``: each pair has the same method
names, so the async core uses ``AsyncWorkerPool``/``async_sleep`` and the
generated sync twin uses ``SyncWorkerPool``/``sync_sleep`` with no
``if is_async:`` anywhere. Hand-written, shared, never rewritten.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import anyio

T = TypeVar("T")
R = TypeVar("R")


async def async_sleep(seconds: float) -> None:
    await anyio.sleep(seconds)


def sync_sleep(seconds: float) -> None:
    time.sleep(seconds)


class AsyncWorkerPool:
    """Run ``fn`` over ``items`` with at most ``limit`` in flight; results in input order.

    A fixed number of workers pull indices from one iterator, so 10,000 items
    cost ``limit`` tasks, not 10,000.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit

    async def map(self, fn: Callable[[T], Awaitable[R]], items: Sequence[T]) -> list[R]:
        results: list[R | None] = [None] * len(items)
        indices = iter(range(len(items)))
        errors: list[Exception] = []

        async def worker() -> None:
            try:
                for i in indices:  # one event loop thread: next() never races
                    results[i] = await fn(items[i])
            except Exception as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(min(self.limit, len(items))):
                tg.start_soon(worker)
        if errors:
            # Raised as itself, not wrapped in an ExceptionGroup: as SyncWorkerPool does.
            raise errors[0]
        return results  # type: ignore[return-value]


class SyncWorkerPool:
    """The thread twin of ``AsyncWorkerPool``: at most ``limit`` threads."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if len(items) <= 1:
            return [fn(item) for item in items]
        results: list[R | None] = [None] * len(items)
        indices = iter(range(len(items)))
        lock = threading.Lock()

        def worker() -> None:
            while True:
                with lock:
                    i = next(indices, None)
                if i is None:
                    return
                results[i] = fn(items[i])

        workers = min(self.limit, len(items))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cachecore") as pool:
            futures = [pool.submit(worker) for _ in range(workers)]
            for future in futures:
                future.result()
        return results  # type: ignore[return-value]
