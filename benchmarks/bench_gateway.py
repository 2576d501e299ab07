"""Benchmark 4: the reference gateway.

- L1 lookup: one HIT_L1 answered by the gateway core (``gateway.handle``), median.
- L2 lookup with 1,000 and 10,000 entries in one tenant: a paraphrase of a stored
  prompt (so the answer is HIT_L2), median; the time includes embedding the prompt.
- Memory per entry: tracemalloc growth while storing 2,000 entries, divided by 2,000.
- Requests per second of L1 hits through uvicorn on loopback: the gateway in its
  own process (``_gateway_server.py``), a client process with 16 connections.

    python benchmarks/bench_gateway.py [--entries 1000,10000] [--rps-seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import subprocess
import sys
import time
import tracemalloc
from typing import Any

from _util import HERE, emit, median
from cachecore.testing import GatewayConfig, GatewayRequest, ReferenceGateway, mint_token

SECRET = "bench-secret-of-at-least-32-bytes-long"


def prompt(i: int) -> str:
    """Distinct prompts, far apart for the n-gram embedder (no shared template)."""
    digest = hashlib.sha256(str(i).encode()).hexdigest()
    return " ".join(digest[k : k + 8] for k in range(0, 48, 8)) + "."


def chat_request(token: str, text: str) -> GatewayRequest:
    body = json.dumps(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
    ).encode()
    headers = [
        ("x-cachecore-token", token),
        ("authorization", f"Bearer {token}"),
        ("content-type", "application/json"),
    ]
    return GatewayRequest.build("POST", "/v1/chat/completions", headers, body)


def timed(gateway: ReferenceGateway, request: GatewayRequest, expect: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = gateway.handle(request)
        times.append(time.perf_counter() - start)
        got = response.header("X-Cache")
        assert got == expect, (got, expect, response.status)
    return median(times) * 1e3


def fill(gateway: ReferenceGateway, token: str, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        response = gateway.handle(chat_request(token, prompt(i)))
        assert response.status == 200, response.status


def lookups(sizes: list[int], repeat: int) -> dict[str, Any]:
    gateway = ReferenceGateway(GatewayConfig(secret=SECRET, max_entries=max(sizes) + 10))
    token = mint_token(SECRET, "bench-tenant")
    out: dict[str, Any] = {}
    filled = 0
    for size in sorted(sizes):
        fill(gateway, token, size - filled, filled)
        filled = size
        hit = chat_request(token, prompt(size // 2))
        out[f"l1_ms_{size}"] = timed(gateway, hit, "HIT_L1", repeat)
        # A paraphrase: different case and punctuation, so not an exact (L1) match.
        paraphrase = prompt(size // 2).upper().replace(".", " ?")
        out[f"l2_ms_{size}"] = timed(gateway, chat_request(token, paraphrase), "HIT_L2", repeat)
    out["entries"] = gateway.entry_count("bench-tenant")
    out["numpy"] = gateway.config.use_numpy is not False
    return out


def memory_per_entry(n: int = 2000) -> float:
    gateway = ReferenceGateway(GatewayConfig(secret=SECRET, max_entries=n + 10))
    token = mint_token(SECRET, "bench-tenant")
    fill(gateway, token, 100)  # grow the first index blocks and caches before measuring
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    fill(gateway, token, n, 100)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / n


async def _hammer(url: str, token: str, seconds: float, connections: int) -> dict[str, float]:
    import httpx

    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello rps"}]}
    headers = {"X-CacheCore-Token": token, "Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits) as client:
        first = await client.post("/v1/chat/completions", json=body, headers=headers)
        assert first.status_code == 200
        count = 0
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal count
            while time.perf_counter() < stop:
                r = await client.post("/v1/chat/completions", json=body, headers=headers)
                assert r.headers.get("x-cache") == "HIT_L1", r.headers.get("x-cache")
                count += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        return {"rps": count / (time.perf_counter() - start), "requests": count}


def rps(seconds: float, connections: int = 16, tcp_proto: bool = False) -> dict[str, float]:
    server = subprocess.Popen(
        [sys.executable, str(HERE / "_gateway_server.py"), "--secret", SECRET]
        + (["--tcp-proto"] if tcp_proto else []),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        url = line.split()[1]
        return asyncio.run(_hammer(url, mint_token(SECRET, "rps-tenant"), seconds, connections))
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", default="1000,10000")
    parser.add_argument("--repeat", type=int, default=31)
    parser.add_argument("--rps-seconds", type=float, default=5.0)
    args = parser.parse_args()
    out = lookups([int(x) for x in args.entries.split(",")], args.repeat)
    out["bytes_per_entry"] = memory_per_entry()
    out.update(rps(args.rps_seconds))
    # The same with TCP_NODELAY on the server's connections (see docs/performance.md).
    out["rps_nodelay"] = rps(args.rps_seconds, tcp_proto=True)["rps"]
    emit(out)


if __name__ == "__main__":
    main()
