"""Benchmark 6: what a script, notebook or serverless handler pays to start.

``SyncCachecoreClient(url, token)`` then ``close()``, against ``httpx.Client()``
then ``close()``, in one process, alternating; and the same client made, used
for its first invalidation's set-up (its connection pools, built on first use)
and closed. An https gateway, so that SSL contexts are part of the cost.
Figures are the median of ``--rounds`` rounds, each the best of ``--n`` tries.

    python benchmarks/bench_construct.py [--rounds 9] [--n 5]
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable

import httpx

import cachecore
from _util import emit, median

GATEWAY = "https://gateway.example"
TOKEN = "cc_live_bench.eyJhbGciOiJIUzI1NiJ9.eyJ0ZW5hbnRfaWQiOiJiZW5jaCJ9.c2ln"


def best_ms(action: Callable[[], None], n: int) -> float:
    times = []
    for _ in range(n):
        gc.collect()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def plain() -> None:
    httpx.Client().close()


def ours() -> None:
    cachecore.SyncCachecoreClient(GATEWAY, TOKEN).close()


def ours_first_use() -> None:
    cc = cachecore.SyncCachecoreClient(GATEWAY, TOKEN)
    # What the first invalidation builds before sending: the pools of its shards
    # (public API has no way to build them without sending a request).
    cc._pools.get()
    cc.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--n", type=int, default=5)
    args = parser.parse_args()
    plain()
    ours_first_use()  # warm imports and caches
    rounds: dict[str, list[float]] = {"httpx_ms": [], "ours_ms": [], "ours_first_use_ms": []}
    for _ in range(args.rounds):
        rounds["httpx_ms"].append(best_ms(plain, args.n))
        rounds["ours_ms"].append(best_ms(ours, args.n))
        rounds["ours_first_use_ms"].append(best_ms(ours_first_use, args.n))
    out = {name: median(values) for name, values in rounds.items()}
    out["ratio"] = out["ours_ms"] / out["httpx_ms"]
    out["ratio_first_use"] = out["ours_first_use_ms"] / out["httpx_ms"]
    emit(out)


if __name__ == "__main__":
    main()
