"""An async client made once (module level) works from every event loop, without leaks.

Scripts call ``asyncio.run`` more than once, pytest-asyncio gives each test a
loop, notebooks restart theirs. httpcore's connections belong to the loop that
opened them, so before 0.3 the second loop failed with "Event loop is closed".
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
import warnings

import httpx
import trio

from cachecore import CachecoreClient, Dep
from cachecore._concurrency import AsyncPerLoop
from cachecore.testing import GatewayConfig, ReferenceGateway, serve

SECRET = "event-loops-secret-of-at-least-32-bytes"
PROMPT = {"model": "gpt-test", "messages": [{"role": "user", "content": "capital of Peru?"}]}


def open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return count


def settle(baseline: int) -> int:
    """Socket count once the server has seen every client close (bounded wait)."""
    deadline = time.monotonic() + 5
    while (now := open_sockets()) > baseline and time.monotonic() < deadline:
        time.sleep(0.05)
    return now


def test_one_client_from_several_event_loops_leaks_nothing() -> None:
    gw = ReferenceGateway(GatewayConfig(secret=SECRET))
    with serve(gw) as url, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        cc = CachecoreClient(url, gw.mint_token("tenant-loops"))  # "module level"
        baseline = open_sockets()

        async def one_round() -> str:
            async with httpx.AsyncClient(transport=cc.transport, base_url=url) as http:
                with cc.request_context(deps=[Dep("doc:loops")]) as ctx:
                    response = await http.post("/v1/chat/completions", json=PROMPT)
            assert response.status_code == 200
            assert (await cc.invalidate("doc:other")).ok
            assert ctx.last is not None
            return ctx.last.status

        statuses = [asyncio.run(one_round()) for _ in range(3)]
        statuses.append(trio.run(one_round))
        after_runs = settle(baseline)
        gc.collect()
    assert statuses == ["MISS", "HIT_L1", "HIT_L1", "HIT_L1"]
    assert after_runs == baseline, "pools of ended loops must be closed"
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == [], [str(w.message) for w in leaks]


def test_a_loop_closed_without_cleanup_only_costs_its_own_pool() -> None:
    """``loop.close()`` without cancelling tasks: the next loop still works."""
    gw = ReferenceGateway(GatewayConfig(secret=SECRET))
    with serve(gw) as url:
        cc = CachecoreClient(url, gw.mint_token("tenant-manual"))

        async def health() -> int:
            async with httpx.AsyncClient(transport=cc.transport) as http:
                return (await http.get(f"{url}/health")).status_code

        loop = asyncio.new_event_loop()
        assert loop.run_until_complete(health()) == 200
        loop.close()
        assert asyncio.run(health()) == 200
        asyncio.run(cc.aclose())


def test_a_closed_loop_is_forgotten_at_the_next_use() -> None:
    """Nothing of a loop closed without cleanup is kept once another loop uses the pools."""
    pools: AsyncPerLoop[list[str]] = AsyncPerLoop(lambda: ["pool"], _no_close)

    async def use() -> list[str]:
        return pools.get()

    loop = asyncio.new_event_loop()
    first = loop.run_until_complete(use())
    loop.close()
    second = asyncio.run(use())
    assert first is not second, "each loop gets its own"
    assert pools._tasks == set(), "the closed loop's watcher task is not kept (nor its loop)"
    assert list(pools._items) == [], "asyncio.run cancelled its own watcher"


async def _no_close(item: object) -> None:
    return None
