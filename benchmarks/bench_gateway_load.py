"""Benchmark 7: the reference gateway under load (issue 12's starvation scenarios).

The gateway runs in its own process (``_load_gateway.py``, uvicorn on loopback)
with an upstream that takes ``--delay`` seconds for ``slow:`` prompts. Measured
from a client process, sequentially, on one keep-alive connection:

- idle: tenant B's HIT_L1 and ``/health``, 0.2.0 answered in about 2 ms;
- while 60 slow misses of tenant A are in flight (0.2.0: a hit took 4.6 s and
  ``/health`` up to 6 s, every request queued for a 40-thread pool);
- while three workers of tenant A send prompts at ``max_prompt_chars`` (200,000
  characters) back to back (0.2.0 embedded them on the event loop: another
  tenant's short chat took 10 s).

    python benchmarks/bench_gateway_load.py [--delay 5] [--samples 40]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx

from _util import HERE, emit
from cachecore.testing import mint_token

SECRET = "bench-secret-of-at-least-32-bytes-long"
PATH = "/v1/chat/completions"


def chat(text: str) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}


def big_prompt(i: int, size: int = 199_000) -> str:
    words = [hashlib.sha256(f"{i}-{k}".encode()).hexdigest()[:7] for k in range(size // 8)]
    return " ".join(words)[:size]


async def sample(client: httpx.AsyncClient, token: str, n: int) -> dict[str, float]:
    """``n`` sequential HIT_L1s of tenant B and ``n`` ``/health``: median and max, ms."""
    hits: list[float] = []
    health: list[float] = []
    for _ in range(n):
        started = time.perf_counter()
        answer = await client.post(
            PATH, json=chat("fast: primed"), headers={"X-CacheCore-Token": token}
        )
        hits.append((time.perf_counter() - started) * 1000)
        assert answer.headers["x-cache"] == "HIT_L1", answer.headers
        started = time.perf_counter()
        assert (await client.get("/health")).status_code == 200
        health.append((time.perf_counter() - started) * 1000)
    return {
        "hit_p50": statistics.median(hits),
        "hit_max": max(hits),
        "health_p50": statistics.median(health),
        "health_max": max(health),
    }


async def measure(url: str, delay: float, n: int) -> dict[str, Any]:
    a, b = mint_token(SECRET, "tenant-a"), mint_token(SECRET, "tenant-b")
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with (
        httpx.AsyncClient(base_url=url, timeout=delay * 4) as probe,
        httpx.AsyncClient(base_url=url, timeout=delay * 4, limits=limits) as load,
    ):
        primed = await probe.post(PATH, json=chat("fast: primed"), headers={"X-CacheCore-Token": b})
        assert primed.headers["x-cache"] == "MISS"
        out: dict[str, Any] = {"idle": await sample(probe, b, n)}

        async def slow_miss(i: int) -> str:
            answer = await load.post(
                PATH, json=chat(f"slow: {i}"), headers={"X-CacheCore-Token": a}
            )
            return answer.headers["x-cache"]

        started = time.perf_counter()
        misses = [asyncio.create_task(slow_miss(i)) for i in range(60)]
        await asyncio.sleep(min(0.5, delay / 4))  # all 60 sent and waiting on the upstream
        out["slow_misses"] = await sample(probe, b, n)
        assert time.perf_counter() - started < delay, "the sample outlasted the misses"
        statuses = await asyncio.gather(*misses)
        assert statuses == ["MISS"] * 60, statuses
        out["slow_misses_took_s"] = time.perf_counter() - started

        stop = asyncio.Event()
        big_done = 0
        big_ms: list[float] = []

        async def big_worker(w: int) -> None:
            nonlocal big_done
            i = 0
            while not stop.is_set():
                t = time.perf_counter()
                answer = await load.post(
                    PATH, json=chat(big_prompt(w * 1000 + i)), headers={"X-CacheCore-Token": a}
                )
                assert answer.status_code == 200, answer.text[:200]
                big_ms.append((time.perf_counter() - t) * 1000)
                big_done += 1
                i += 1

        workers = [asyncio.create_task(big_worker(w)) for w in range(3)]
        await asyncio.sleep(0.3)
        out["big_prompts"] = await sample(probe, b, n)
        stop.set()
        await asyncio.gather(*workers)
        out["big_prompts_done"] = big_done
        out["big_prompt_ms_p50"] = statistics.median(big_ms)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=5.0)
    parser.add_argument("--samples", type=int, default=40)
    args = parser.parse_args()
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "_load_gateway.py"), "--delay", str(args.delay)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[1]
        emit(asyncio.run(measure(url, args.delay, args.samples)))
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
