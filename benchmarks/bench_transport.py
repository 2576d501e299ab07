"""Benchmark 1: transport overhead per request, isolated.

Our transport (or 0.1.0's) over a no-op inner transport, against the no-op
transport alone, in the same process: rounds alternate between the two and the
overhead is the median over rounds of (wrapped - bare) / requests. Async and
sync, without deps and with two deps (the context is entered once per round, as
an application enters it once around its calls).

    python benchmarks/bench_transport.py [--rounds 21] [--n 20000]

0.1.0 is loaded into the same process under its own module objects (see
``_util.load_v010``), so the rounds interleave bare, ours and 0.1.0.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import httpx

from _util import emit, load_v010, median

GATEWAY = "http://127.0.0.1:8080"
TOKEN = "cc_live_bench.eyJhbGciOiJIUzI1NiJ9.eyJ0ZW5hbnRfaWQiOiJiZW5jaCJ9.c2ln"


def _response() -> httpx.Response:
    return httpx.Response(200, headers={"x-cache": "HIT_L1", "x-cache-age": "3"})


class NoOpAsync(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.response = _response()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self.response


class NoOpSync(httpx.BaseTransport):
    def __init__(self) -> None:
        self.response = _response()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.response


def _request() -> httpx.Request:
    return httpx.Request(
        "POST",
        GATEWAY + "/v1/chat/completions",
        headers={"content-type": "application/json", "authorization": "Bearer x"},
        content=b'{"model":"gpt-4o-mini","messages":[]}',
    )


def _time_async(transport: httpx.AsyncBaseTransport, n: int, ctx: Callable[[], Any]) -> float:
    request = _request()

    async def loop() -> float:
        with ctx():
            handle = transport.handle_async_request
            start = time.perf_counter()
            for _ in range(n):
                await handle(request)
            return time.perf_counter() - start

    return asyncio.run(loop())


def _time_sync(transport: httpx.BaseTransport, n: int, ctx: Callable[[], Any]) -> float:
    request = _request()
    with ctx():
        handle = transport.handle_request
        start = time.perf_counter()
        for _ in range(n):
            handle(request)
        return time.perf_counter() - start


def overheads(
    timer: Callable[..., float],
    bare: Any,
    wrapped: dict[str, tuple[Any, Callable[[], AbstractContextManager[Any]]]],
    n: int,
    rounds: int,
) -> dict[str, Any]:
    """Per-request overhead (µs) of each wrapped transport over ``bare``.

    Each round times bare and every wrapped transport back to back; the figure
    is the median over rounds of (wrapped - bare) / n.
    """
    for transport, ctx in wrapped.values():
        timer(transport, n // 10, ctx)  # warm up
    diffs: dict[str, list[float]] = {name: [] for name in wrapped}
    bares = []
    for _ in range(rounds):
        gc.collect()
        t_bare = timer(bare, n, nullcontext)
        bares.append(t_bare / n * 1e6)
        for name, (transport, ctx) in wrapped.items():
            gc.collect()
            diffs[name].append((timer(transport, n, ctx) - t_bare) / n * 1e6)
    out: dict[str, Any] = {"bare_us": median(bares)}
    for name, values in diffs.items():
        out[name] = median(values)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--no-v010", action="store_true", help="time the current version only")
    args = parser.parse_args()

    v010 = None if args.no_v010 else load_v010()
    import cachecore

    deps = [cachecore.Dep("table:products"), cachecore.Dep("doc:contract-123", hash="v7")]
    client = cachecore.CachecoreClient(GATEWAY, TOKEN)
    sync_client = cachecore.SyncCachecoreClient(GATEWAY, TOKEN)
    ours_a = cachecore.AsyncCachecoreTransport(
        gateway_url=GATEWAY, tenant_jwt=TOKEN, inner_transport=NoOpAsync()
    )
    ours_s = cachecore.SyncCachecoreTransport(
        gateway_url=GATEWAY, tenant_jwt=TOKEN, inner_transport=NoOpSync()
    )

    def ctx_ours() -> Any:
        return client.request_context(deps=deps)

    def ctx_ours_sync() -> Any:
        return sync_client.request_context(deps=deps)

    async_nodeps: dict[str, Any] = {"ours": (ours_a, nullcontext)}
    async_deps: dict[str, Any] = {"ours": (ours_a, ctx_ours)}
    if v010 is not None:
        old_client = v010.CacheCoreClient(GATEWAY, TOKEN)
        old_deps = [v010.Dep("table:products"), v010.Dep("doc:contract-123", hash="v7")]
        old = v010.CacheCoreTransport(TOKEN, wrapped=NoOpAsync())
        async_nodeps["v010"] = (old, nullcontext)
        async_deps["v010"] = (old, lambda: old_client.request_context(deps=old_deps))
    out: dict[str, Any] = {"n": args.n, "rounds": args.rounds, "version": cachecore.__version__}
    out["async_nodeps"] = overheads(_time_async, NoOpAsync(), async_nodeps, args.n, args.rounds)
    out["async_2deps"] = overheads(_time_async, NoOpAsync(), async_deps, args.n, args.rounds)
    out["sync_nodeps"] = overheads(
        _time_sync, NoOpSync(), {"ours": (ours_s, nullcontext)}, args.n, args.rounds
    )
    out["sync_2deps"] = overheads(
        _time_sync, NoOpSync(), {"ours": (ours_s, ctx_ours_sync)}, args.n, args.rounds
    )
    out.update(httpx2_cases(args.n, args.rounds))
    emit(out)


def httpx2_cases(n: int, rounds: int) -> dict[str, Any]:
    """The no-deps cases with httpx2 requests and an httpx2 inner transport, if installed."""
    try:
        import httpx2
    except ImportError:
        return {}
    import cachecore

    def request() -> Any:
        return httpx2.Request(
            "POST",
            GATEWAY + "/v1/chat/completions",
            headers={"content-type": "application/json", "authorization": "Bearer x"},
            content=b'{"model":"gpt-4o-mini","messages":[]}',
        )

    response = httpx2.Response(200, headers={"x-cache": "HIT_L1", "x-cache-age": "3"})

    class NoOp2Async(httpx2.AsyncBaseTransport):
        async def handle_async_request(self, request: Any) -> Any:
            return response

    class NoOp2Sync(httpx2.BaseTransport):
        def handle_request(self, request: Any) -> Any:
            return response

    def time_async(transport: Any, n: int, ctx: Callable[[], Any]) -> float:
        req = request()

        async def loop() -> float:
            with ctx():
                start = time.perf_counter()
                for _ in range(n):
                    await transport.handle_async_request(req)
                return time.perf_counter() - start

        return asyncio.run(loop())

    def time_sync(transport: Any, n: int, ctx: Callable[[], Any]) -> float:
        req = request()
        with ctx():
            start = time.perf_counter()
            for _ in range(n):
                transport.handle_request(req)
            return time.perf_counter() - start

    ours_a = cachecore.AsyncCachecoreTransport(
        gateway_url=GATEWAY, tenant_jwt=TOKEN, inner_transport=NoOp2Async()
    )
    ours_s = cachecore.SyncCachecoreTransport(
        gateway_url=GATEWAY, tenant_jwt=TOKEN, inner_transport=NoOp2Sync()
    )
    return {
        "async_nodeps_httpx2": overheads(
            time_async, NoOp2Async(), {"ours": (ours_a, nullcontext)}, n, rounds
        ),
        "sync_nodeps_httpx2": overheads(
            time_sync, NoOp2Sync(), {"ours": (ours_s, nullcontext)}, n, rounds
        ),
    }


if __name__ == "__main__":
    main()
