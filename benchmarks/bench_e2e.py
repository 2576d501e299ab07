"""Benchmark 5: a HIT_L1 end to end, through the real OpenAI SDK and the loopback gateway.

The reference gateway runs in its own process (uvicorn, ``_gateway_server.py``).
The same ``openai.OpenAI`` call is timed with our transport under its httpx
client, and with a plain ``httpx.Client`` sending the token as a default header;
rounds alternate between the two and each round's figure is its median call.

    python benchmarks/bench_e2e.py [--rounds 15] [--calls 40]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from typing import Any

import httpx
import openai

import cachecore
from _util import HERE, emit, median
from cachecore.testing import mint_token

SECRET = "bench-secret"
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def calls(client: openai.OpenAI, n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=MESSAGES
        )
        times.append(time.perf_counter() - start)
        assert raw.headers.get("x-cache") == "HIT_L1", raw.headers.get("x-cache")
    return median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=40)
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, str(HERE / "_gateway_server.py"), "--secret", SECRET],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split()[1]
        token = mint_token(SECRET, "e2e-tenant")
        cc = cachecore.SyncCachecoreClient(url, token)
        ours = openai.OpenAI(
            api_key=token, base_url=url + "/v1", http_client=httpx.Client(transport=cc.transport)
        )
        plain = openai.OpenAI(
            api_key=token,
            base_url=url + "/v1",
            http_client=httpx.Client(headers={"X-CacheCore-Token": token}),
        )
        ours.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # MISS: store it
        calls(ours, 10)
        calls(plain, 10)
        ours_ms, plain_ms, ratios = [], [], []
        for _ in range(args.rounds):
            a = calls(ours, args.calls)
            b = calls(plain, args.calls)
            ours_ms.append(a)
            plain_ms.append(b)
            ratios.append(a / b)
        out: dict[str, Any] = {
            "ours_ms": median(ours_ms),
            "plain_ms": median(plain_ms),
            "ratio": median(ratios),
            "openai": openai.__version__,
        }
        cc.close()
    finally:
        server.terminate()
        server.wait(10)
    emit(out)


if __name__ == "__main__":
    main()
