"""Request contexts under load: 500 asyncio tasks, trio tasks, 32 threads, one transport.

Every request says which worker sent it (``X-Worker``); the stand-in gateway
answers each worker with its own cache status. Zero requests may carry another
worker's deps or the wrong bypass state, and every handle must record only its
own worker's answers.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import anyio
import anyio.lowlevel
import httpx
import pytest

from cachecore import CachecoreClient, Dep, SyncCachecoreClient, _wire
from cachecore._context import RequestHandle

GATEWAY = "http://gw.test"
TOKEN = "cc_live_k1.isolation-token"
REQUESTS_PER_WORKER = 3


def status_for(worker: int) -> str:
    return ("HIT_L1", "MISS", "HIT_L2", "BYPASS")[worker % 4]


def expected(worker: int) -> tuple[list[tuple[str, str]], bool]:
    """The deps and bypass state every request of ``worker`` must carry."""
    deps = [(f"tenant-data:{worker}", f"h{worker}"), ("shared:table", "v1")]
    if worker % 5 == 0:
        deps.append((f"inner:{worker}", "v1"))
    return deps, worker % 3 == 0


class Ledger:
    """What the gateway saw, checked against what each worker declared."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[tuple[int, list[tuple[str, str]], bool]] = []

    def answer(self, request: httpx.Request) -> httpx.Response:
        worker = int(request.headers["x-worker"])
        deps_value = request.headers.get(_wire.DEPS_HEADER)
        deps = _wire.decode_deps(deps_value) if deps_value else []
        bypassed = _wire.TOKEN_HEADER not in request.headers
        with self.lock:
            self.seen.append((worker, deps, bypassed))
        return httpx.Response(200, headers={_wire.CACHE_HEADER: status_for(worker)}, json={})

    def assert_isolated(self, workers: int, handles: dict[int, RequestHandle]) -> None:
        assert len(self.seen) == workers * REQUESTS_PER_WORKER
        wrong = [
            (worker, deps, bypassed)
            for worker, deps, bypassed in self.seen
            if (deps, bypassed) != expected(worker)
        ]
        assert wrong == [], f"{len(wrong)} requests carried another worker's context"
        assert sorted(handles) == list(range(workers))
        for worker, handle in handles.items():
            assert [s.status for s in handle.statuses] == [status_for(worker)] * REQUESTS_PER_WORKER


def open_context(cc: CachecoreClient | SyncCachecoreClient, worker: int):  # type: ignore[no-untyped-def]
    deps, bypass = expected(worker)
    return cc.request_context(
        deps=[Dep(deps[0][0], hash=deps[0][1]), "shared:table"], bypass=bypass
    )


async def run_async_workers(workers: int) -> tuple[Ledger, dict[int, RequestHandle]]:
    ledger = Ledger()

    async def answer(request: httpx.Request) -> httpx.Response:
        await anyio.lowlevel.checkpoint()  # let other tasks run between send and answer
        return ledger.answer(request)

    cc = CachecoreClient(GATEWAY, TOKEN, inner_transport=httpx.MockTransport(answer))
    handles: dict[int, RequestHandle] = {}
    all_inside = anyio.Event()
    inside = 0

    async def worker(i: int, http: httpx.AsyncClient) -> None:
        nonlocal inside
        with open_context(cc, i) as handle:
            handles[i] = handle
            inside += 1
            if inside == workers:
                all_inside.set()
            await all_inside.wait()  # every context is open at once before anyone sends
            for _ in range(REQUESTS_PER_WORKER):
                await anyio.lowlevel.checkpoint()
                if i % 5 == 0:
                    with cc.request_context(deps=[f"inner:{i}"]):
                        await http.post("/v1/x", headers={"x-worker": str(i)})
                else:
                    await http.post("/v1/x", headers={"x-worker": str(i)})

    limits = httpx.Limits(max_connections=None)
    http = httpx.AsyncClient(transport=cc.transport, base_url=GATEWAY, limits=limits)
    async with cc, http, anyio.create_task_group() as tg:
        for i in range(workers):
            tg.start_soon(worker, i, http)
    return ledger, handles


@pytest.mark.anyio
async def test_500_tasks_never_see_each_others_context() -> None:
    # Runs once on asyncio tasks and once on trio tasks (see tests/conftest.py).
    ledger, handles = await run_async_workers(500)
    ledger.assert_isolated(500, handles)


def test_asyncio_gather_tasks_are_isolated() -> None:
    """Plain asyncio, as most users write it: ``asyncio.gather`` of coroutines."""
    ledger = Ledger()

    async def answer(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0)
        return ledger.answer(request)

    async def main() -> dict[int, RequestHandle]:
        cc = CachecoreClient(GATEWAY, TOKEN, inner_transport=httpx.MockTransport(answer))
        handles: dict[int, RequestHandle] = {}

        async def worker(i: int, http: httpx.AsyncClient) -> None:
            with open_context(cc, i) as handle:
                handles[i] = handle
                for _ in range(REQUESTS_PER_WORKER):
                    await asyncio.sleep(0)
                    if i % 5 == 0:
                        with cc.request_context(deps=[f"inner:{i}"]):
                            await http.post("/v1/x", headers={"x-worker": str(i)})
                    else:
                        await http.post("/v1/x", headers={"x-worker": str(i)})

        async with cc, httpx.AsyncClient(transport=cc.transport, base_url=GATEWAY) as http:
            await asyncio.gather(*(worker(i, http) for i in range(500)))
        return handles

    handles = asyncio.run(main())
    ledger.assert_isolated(500, handles)


def test_32_threads_through_the_sync_transport_are_isolated() -> None:
    ledger = Ledger()
    cc = SyncCachecoreClient(GATEWAY, TOKEN, inner_transport=httpx.MockTransport(ledger.answer))
    barrier = threading.Barrier(32)
    handles: dict[int, RequestHandle] = {}

    def worker(i: int, http: httpx.Client) -> None:
        with open_context(cc, i) as handle:
            handles[i] = handle
            barrier.wait(timeout=30)  # every thread is inside its context before anyone sends
            for _ in range(REQUESTS_PER_WORKER):
                if i % 5 == 0:
                    with cc.request_context(deps=[f"inner:{i}"]):
                        http.post("/v1/x", headers={"x-worker": str(i)})
                else:
                    http.post("/v1/x", headers={"x-worker": str(i)})

    http = httpx.Client(transport=cc.transport, base_url=GATEWAY)
    with cc, http, ThreadPoolExecutor(max_workers=32) as pool:
        for future in [pool.submit(worker, i, http) for i in range(32)]:
            future.result()
    ledger.assert_isolated(32, handles)


def test_a_context_in_one_thread_does_not_reach_another() -> None:
    seen: list[httpx.Request] = []
    mock = httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200))  # type: ignore[func-returns-value]
    cc = SyncCachecoreClient(GATEWAY, TOKEN, inner_transport=mock)
    http = httpx.Client(transport=cc.transport, base_url=GATEWAY)
    with cc, http, cc.request_context(deps=["main-thread"], bypass=True):
        thread = threading.Thread(target=http.get, args=("/v1/models",))
        thread.start()
        thread.join()
    (request,) = seen
    assert _wire.DEPS_HEADER not in request.headers
    assert request.headers[_wire.TOKEN_HEADER] == TOKEN


@pytest.mark.anyio
async def test_a_child_task_inherits_but_never_leaks_back() -> None:
    seen: list[httpx.Request] = []
    mock = httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200))  # type: ignore[func-returns-value]
    cc = CachecoreClient(GATEWAY, TOKEN, inner_transport=mock)
    child_entered = anyio.Event()
    parent_sent = anyio.Event()

    async def child(http: httpx.AsyncClient) -> None:
        with cc.request_context(deps=["child"], bypass=True):
            child_entered.set()
            await parent_sent.wait()
            await http.get("/v1/child")

    async with cc, httpx.AsyncClient(transport=cc.transport, base_url=GATEWAY) as http:
        with cc.request_context(deps=["parent"]):
            async with anyio.create_task_group() as tg:
                tg.start_soon(child, http)
                await child_entered.wait()
                await http.get("/v1/parent")  # the child's block is open right now
                parent_sent.set()
    by_path = {r.url.path: r for r in seen}
    parent, kid = by_path["/v1/parent"], by_path["/v1/child"]
    assert _wire.decode_deps(parent.headers[_wire.DEPS_HEADER]) == [("parent", "v1")]
    assert parent.headers[_wire.TOKEN_HEADER] == TOKEN
    assert _wire.decode_deps(kid.headers[_wire.DEPS_HEADER]) == [("parent", "v1"), ("child", "v1")]
    assert _wire.TOKEN_HEADER not in kid.headers
