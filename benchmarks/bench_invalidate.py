"""Benchmark 2: bulk invalidation against a loopback gateway that answers after 5 ms.

One client run per process (so peak memory is that run's alone):

    python benchmarks/bench_invalidate.py --url URL --impl ours|v010|httpx --n 1000 [--http2]

``ours``: ``CachecoreClient.invalidate_many`` (default ``max_concurrency=32``);
``v010``: cachecore-python 0.1.0's ``invalidate_many`` (run with 0.1.0 first on
``sys.path``); ``httpx``: a plain ``httpx.AsyncClient`` with 32 requests in
flight (a semaphore), the hand-written baseline. Prints elapsed seconds, how
many deps succeeded, and the peak RSS growth over the process after imports.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
import uuid
from typing import Any

import httpx

from _util import emit

TOKEN = "cc_live_bench.eyJhbGciOiJIUzI1NiJ9.eyJ0ZW5hbnRfaWQiOiJiZW5jaCJ9.c2ln"


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def run_ours(url: str, dep_ids: list[str], http2: bool) -> int:
    import cachecore

    inner = None
    if http2:
        inner = httpx.AsyncHTTPTransport(
            http1=False, http2=True, limits=httpx.Limits(max_connections=32)
        )
    async with cachecore.CachecoreClient(url, TOKEN, inner_transport=inner) as cc:
        results = await cc.invalidate_many(dep_ids)
    if inner is not None:
        await inner.aclose()
    return sum(r.ok for r in results)


async def run_v010(url: str, dep_ids: list[str]) -> int:
    import cachecore

    client = cachecore.CacheCoreClient(url, TOKEN)
    try:
        results = await client.invalidate_many(dep_ids)
    finally:
        await client.aclose()
    return sum(r.ok for r in results)


async def run_httpx(url: str, dep_ids: list[str], concurrency: int = 32) -> int:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def one(dep_id: str) -> bool:
            async with sem:
                response = await client.post(
                    "/v1/invalidate",
                    json={"dep_id": dep_id, "new_hash": uuid.uuid4().hex},
                    headers={"X-CacheCore-Token": TOKEN, "Authorization": f"Bearer {TOKEN}"},
                )
                return response.is_success

        results = await asyncio.gather(*(one(d) for d in dep_ids))
    return sum(results)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--impl", choices=["ours", "v010", "httpx"], default="ours")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--http2", action="store_true")
    args = parser.parse_args()
    import cachecore  # noqa: F401  (imported before the baseline RSS reading)

    dep_ids = [f"table:t{i}" for i in range(args.n)]
    base = maxrss_mb()
    start = time.perf_counter()
    if args.impl == "ours":
        ok = asyncio.run(run_ours(args.url, dep_ids, args.http2))
    elif args.impl == "v010":
        ok = asyncio.run(run_v010(args.url, dep_ids))
    else:
        ok = asyncio.run(run_httpx(args.url, dep_ids))
    elapsed = time.perf_counter() - start
    out: dict[str, Any] = {
        "impl": args.impl,
        "n": args.n,
        "http2": args.http2,
        "seconds": elapsed,
        "ok": ok,
        "peak_rss_growth_mb": maxrss_mb() - base,
    }
    emit(out)


if __name__ == "__main__":
    main()
