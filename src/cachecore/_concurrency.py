"""Concurrency that cannot be rewritten token by token, as async/sync pairs.

Modelled on httpcore's ``_synchronization.py``: each pair has the same method
names, so the async core uses ``AsyncWorkerPool``/``async_sleep`` and the
generated sync twin uses ``SyncWorkerPool``/``sync_sleep`` with no
``if is_async:`` anywhere. Hand-written, shared, never rewritten.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

import anyio

from .errors import CachecoreClosedError

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


def running_loop() -> Any:
    """The running asyncio loop, or the running trio run's token."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            return trio.lowlevel.current_trio_token()
        except RuntimeError:
            pass
    raise RuntimeError("the async Cachecore client needs a running asyncio or trio event loop")


def _loop_is_closed(loop: Any) -> bool:
    is_closed = getattr(loop, "is_closed", None)  # asyncio; a trio token has no such notion
    return bool(is_closed()) if is_closed is not None else False


class AsyncPerLoop(Generic[T]):
    """One ``T`` (a connection pool) per running event loop, closed when that loop ends.

    httpcore's async connections belong to the loop that opened them: a pool
    reused from a later ``asyncio.run`` (a script calling it twice, pytest's
    per-test loops, a notebook restarting its loop) fails with "Event loop is
    closed". So each loop gets its own ``T``, made on first use there, and a
    watcher task on that loop closes it when the loop shuts down: ``asyncio.run``
    and ``asyncio.Runner`` cancel the tasks left at their end, and trio cancels
    its system tasks. A loop closed without cancelling its tasks leaves its
    ``T`` to be dropped at the next use from another loop.
    """

    def __init__(self, make: Callable[[], T], close: Callable[[T], Awaitable[None]]) -> None:
        self._make = make
        self._close = close
        self._items: dict[Any, tuple[T, Callable[[], object]]] = {}  # loop -> (T, stop watcher)
        self._tasks: set[asyncio.Task[None]] = set()  # asyncio keeps only weak references
        self._lock = threading.Lock()  # loops in several threads may share one client
        self._closed = False

    def get(self) -> T:
        """The ``T`` of the running loop, made (and watched) on its first use there."""
        if self._closed:
            raise CachecoreClosedError(
                "this Cachecore client (or transport) is closed: make a new one"
            )
        loop = running_loop()
        entry = self._items.get(loop)
        if entry is not None:
            return entry[0]
        with self._lock:
            if self._closed:
                raise CachecoreClosedError(
                    "this Cachecore client (or transport) is closed: make a new one"
                )
            self._forget_closed_loops()
            item = self._make()
            self._items[loop] = (item, self._watch(loop, item))
        return item

    def _forget_closed_loops(self) -> None:
        """Drop what belongs to loops closed without cancelling our watchers (under the lock).

        Nothing can be awaited on a closed loop: its pool's sockets are left to the
        garbage collector, which may warn about them. ``asyncio.run`` never does this.
        """
        for gone in [k for k in self._items if _loop_is_closed(k)]:
            del self._items[gone]
        self._tasks.difference_update([t for t in self._tasks if t.get_loop().is_closed()])

    def _watch(self, loop: Any, item: T) -> Callable[[], object]:
        """Start the watcher of ``item`` on ``loop``; return what stops it quietly."""
        wait: Callable[[], Awaitable[object]]
        stop: Callable[[], object]
        if isinstance(loop, asyncio.AbstractEventLoop):
            # A bare future rather than an anyio.Event: if the loop is closed
            # without cancelling us, the coroutine is simply dropped.
            done: asyncio.Future[None] = loop.create_future()

            async def wait() -> object:
                await done
                return None

            def stop() -> object:
                if not done.done():
                    done.set_result(None)
                return None

        else:
            event = anyio.Event()
            wait, stop = event.wait, event.set

        async def watcher() -> None:
            # Looked up now: an except clause is evaluated as an exception passes, and
            # a GeneratorExit (the coroutine dropped with its loop) passes with no loop.
            cancelled = anyio.get_cancelled_exc_class()
            try:
                await wait()  # stopped by aclose(), which closes the item itself
            except cancelled:  # the loop is shutting down
                with self._lock:
                    self._items.pop(loop, None)
                with anyio.CancelScope(shield=True):
                    await self._close(item)
                raise

        if isinstance(loop, asyncio.AbstractEventLoop):
            task = loop.create_task(watcher(), name="cachecore: close the pool when the loop ends")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            sys.modules["trio"].lowlevel.spawn_system_task(watcher)
        return stop

    async def aclose(self) -> None:
        """Close the running loop's ``T``; drop those of loops that have ended.

        ``T``s of loops still running in other threads are closed by their
        watchers when those loops end.
        """
        try:
            loop: Any = running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            self._closed = True
            entry = self._items.pop(loop, None)
            self._forget_closed_loops()
        if entry is not None:
            item, stop = entry
            stop()
            await self._close(item)


class SyncPerLoop(Generic[T]):
    """The thread twin of ``AsyncPerLoop``: one ``T``, made on first use."""

    def __init__(self, make: Callable[[], T], close: Callable[[T], None]) -> None:
        self._make = make
        self._close = close
        self._item: T | None = None
        self._lock = threading.Lock()
        self._closed = False

    def get(self) -> T:
        item = self._item
        if item is not None:
            return item
        with self._lock:
            if self._closed:
                raise CachecoreClosedError(
                    "this Cachecore client (or transport) is closed: make a new one"
                )
            if self._item is None:
                self._item = self._make()
            return self._item

    def close(self) -> None:
        with self._lock:
            self._closed = True
            item, self._item = self._item, None
        if item is not None:
            self._close(item)
