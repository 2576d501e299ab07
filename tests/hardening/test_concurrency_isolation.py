"""Request contexts stay with their task or thread; the transport holds no memory.

10,000 asyncio tasks (and a smaller trio run) and 64 threads each mix deps,
bypass, nesting and no context at all; every request the inner transport sees
must carry exactly its own task's deps and bypass state. 100,000 requests
through the transport must leave traced memory flat, and a handle must die
with its ``with`` block.
"""

from __future__ import annotations

import gc
import threading
import time
import tracemalloc
import weakref
from concurrent.futures import ThreadPoolExecutor

import anyio
import anyio.lowlevel
import httpx
import pytest
from hardening_helpers import figure

from cachecore import CachecoreClient, Dep, SyncCachecoreClient
from cachecore._wire import DEPS_HEADER_LC, TOKEN_HEADER_LC, decode_deps
from shared_constants import GATEWAY_URL

TOKEN = "cc_test_local.aaaa.bbbb.cccc"


def expected(i: int) -> tuple[bool, list[tuple[str, str]]]:
    """What request ``i`` must carry: (token sent?, deps) for mode ``i % 5``."""
    mode = i % 5
    if mode == 0:
        return True, []  # no context
    if mode == 1:
        return True, [(f"task:{i}", "v1")]
    if mode == 2:
        return False, [(f"task:{i}", "v1")]  # bypass keeps the deps header
    if mode == 3:
        return True, [("outer", "v1"), (f"task:{i}", f"h{i}")]  # nested
    return False, []  # bypass without deps


class Check:
    """Inner transport: verifies each request against what its task declared."""

    def __init__(self) -> None:
        self.seen = 0
        self.wrong: list[str] = []
        self._lock = threading.Lock()

    def verify(self, request: httpx.Request) -> None:
        i = int(request.headers["x-task"])
        token, deps = expected(i)
        got_deps = decode_deps(request.headers.get(DEPS_HEADER_LC, ""))
        got_token = TOKEN_HEADER_LC in request.headers
        with self._lock:
            self.seen += 1
            if got_token != token or got_deps != deps:
                self.wrong.append(f"{i}: token={got_token} deps={got_deps}")


class AsyncCheck(Check, httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await (
            anyio.lowlevel.checkpoint()
        )  # let other tasks run between header steering and the answer
        self.verify(request)
        return httpx.Response(200, headers=[(b"x-cache", b"MISS")])


class SyncCheck(Check, httpx.BaseTransport):
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        time.sleep(0)
        self.verify(request)
        return httpx.Response(200, headers=[(b"x-cache", b"MISS")])


async def one_async_call(cc: CachecoreClient, http: httpx.AsyncClient, i: int) -> None:
    mode = i % 5
    headers = {"x-task": str(i)}
    await anyio.lowlevel.checkpoint()
    if mode == 0:
        await http.post("/v1/chat/completions", headers=headers)
    elif mode in (1, 2):
        with cc.request_context(deps=[Dep(f"task:{i}")], bypass=mode == 2) as ctx:
            await anyio.lowlevel.checkpoint()
            await http.post("/v1/chat/completions", headers=headers)
        assert len(ctx) == 1
    elif mode == 3:
        with cc.request_context(deps=["outer"]):
            await anyio.lowlevel.checkpoint()
            with cc.request_context(deps=[Dep(f"task:{i}", hash=f"h{i}")]):
                await http.post("/v1/chat/completions", headers=headers)
    else:
        with cc.request_context(bypass=True):
            await http.post("/v1/chat/completions", headers=headers)


@pytest.mark.anyio
async def test_concurrent_tasks_never_see_each_others_context(anyio_backend: str) -> None:
    tasks = 10_000 if anyio_backend == "asyncio" else 2_000
    check = AsyncCheck()
    cc = CachecoreClient(GATEWAY_URL, TOKEN, inner_transport=check)
    start = time.monotonic()
    async with httpx.AsyncClient(transport=cc.transport, base_url=GATEWAY_URL) as http:  # noqa: SIM117 (nesting is what is tested)
        async with anyio.create_task_group() as tg:
            for i in range(tasks):
                tg.start_soon(one_async_call, cc, http, i)
    elapsed = time.monotonic() - start
    assert check.wrong == []
    assert check.seen == tasks
    figure(f"tasks.{anyio_backend}.requests", tasks)
    figure(f"tasks.{anyio_backend}.seconds", round(elapsed, 2))


def test_threads_never_see_each_others_context() -> None:
    threads, per_thread = 64, 60
    check = SyncCheck()
    barrier = threading.Barrier(threads)
    with SyncCachecoreClient(GATEWAY_URL, TOKEN, inner_transport=check) as cc:

        def run(t: int) -> None:
            barrier.wait()
            with httpx.Client(transport=cc.transport, base_url=GATEWAY_URL) as http:
                for k in range(per_thread):
                    i = t * per_thread + k
                    mode, headers = i % 5, {"x-task": str(i)}
                    if mode == 0:
                        http.post("/v1/chat/completions", headers=headers)
                    elif mode in (1, 2):
                        with cc.request_context(deps=[Dep(f"task:{i}")], bypass=mode == 2):
                            http.post("/v1/chat/completions", headers=headers)
                    elif mode == 3:
                        with cc.request_context(deps=["outer"]):  # noqa: SIM117 (nesting is what is tested)
                            with cc.request_context(deps=[Dep(f"task:{i}", hash=f"h{i}")]):
                                http.post("/v1/chat/completions", headers=headers)
                    else:
                        with cc.request_context(bypass=True):
                            http.post("/v1/chat/completions", headers=headers)

        with ThreadPoolExecutor(max_workers=threads) as pool:
            for future in [pool.submit(run, t) for t in range(threads)]:
                future.result()
    assert check.wrong == []
    assert check.seen == threads * per_thread
    figure("threads.requests", threads * per_thread)


class Fixed(httpx.BaseTransport):
    """A no-op gateway: the same prepared answer every time (nothing allocated here)."""

    def __init__(self) -> None:
        self.answer = httpx.Response(200, headers=[(b"x-cache", b"HIT_L1")])

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.answer


def test_memory_flat_over_100k_requests() -> None:
    cc = SyncCachecoreClient(GATEWAY_URL, TOKEN, inner_transport=Fixed(), collect_stats=True)
    transport = cc.transport
    url = httpx.URL(GATEWAY_URL + "/v1/chat/completions")
    deps = [[Dep(f"doc:{k}")] for k in range(50)]

    # One request object, re-sent: the transport rewrites its headers in place each
    # time, so any state it kept per request would show up as growth.
    request = httpx.Request("POST", url, content=b"{}")
    send = transport.handle_request

    def run(start: int, stop: int) -> None:
        for block in range(start, stop, 100):
            for _ in range(50):
                send(request)
            with cc.request_context(deps=deps[block // 100 % 50]) as ctx:
                for _ in range(50):
                    send(request)
            assert len(ctx) == 50
            assert ctx.last is not None

    total = 100_000
    tracemalloc.start()
    try:
        run(0, 10_000)  # warm-up: caches, interned strings, pools
        gc.collect()
        after_10k = tracemalloc.get_traced_memory()[0]
        run(10_000, total)
        gc.collect()
        after_100k, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    growth = after_100k - after_10k
    assert cc.stats.requests == total
    figure("memory.requests", total)
    figure("memory.growth_bytes_10k_to_100k", growth)
    figure("memory.peak_bytes", peak)
    assert growth < 64 * 1024, f"traced memory grew {growth} bytes over 90,000 requests"


def test_handle_dies_with_its_block_sync() -> None:
    with SyncCachecoreClient(GATEWAY_URL, TOKEN, inner_transport=Fixed()) as cc:  # noqa: SIM117 (nesting is what is tested)
        with httpx.Client(transport=cc.transport, base_url=GATEWAY_URL) as http:
            context = cc.request_context(deps=[Dep("doc:1")])
            with context as handle:
                response = http.post("/v1/chat/completions")
                with cc.request_context(deps=["inner"]) as inner:
                    http.post("/v1/chat/completions")
            assert handle.hits == 2
            refs = [weakref.ref(handle), weakref.ref(inner)]
            del handle, inner
            gc.collect()
            assert [r() for r in refs] == [None, None]
            assert response.status_code == 200
            assert context is not None


@pytest.mark.anyio
async def test_handle_dies_with_its_block_async() -> None:
    refs: list[weakref.ref[object]] = []
    cc = CachecoreClient(GATEWAY_URL, TOKEN, inner_transport=AsyncFixed())
    async with httpx.AsyncClient(transport=cc.transport, base_url=GATEWAY_URL) as http:

        async def task() -> None:
            with cc.request_context(deps=[Dep("doc:1")]) as handle:
                await http.post("/v1/chat/completions")
            refs.append(weakref.ref(handle))

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(task)
        with cc.request_context(deps=["x"]) as handle:
            await http.post("/v1/chat/completions")
        refs.append(weakref.ref(handle))
        del handle
    gc.collect()
    assert all(r() is None for r in refs)


class AsyncFixed(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=[(b"x-cache", b"MISS")])
