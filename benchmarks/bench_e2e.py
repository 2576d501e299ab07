"""Benchmark 5: a HIT_L1 end to end, through the real OpenAI SDK and the loopback gateway.

The reference gateway runs in its own process (uvicorn, ``_gateway_server.py``).
The same ``openai.OpenAI`` call is timed with our transport under its httpx
client, and with a plain ``httpx.Client`` sending the token as a default header;
calls alternate one by one between the two, and each round's figure is its median call.
Where openai's ``DefaultHttpxClient`` is an httpx2 client (openai 3.x), the same
pair is timed with it too (``*_httpx2``).

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

SECRET = "bench-secret-of-at-least-32-bytes-long"
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def call(client: openai.OpenAI) -> float:
    start = time.perf_counter()
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    elapsed = time.perf_counter() - start
    assert raw.headers.get("x-cache") == "HIT_L1", raw.headers.get("x-cache")
    return elapsed * 1e3


def pair(
    ours: openai.OpenAI, plain: openai.OpenAI, rounds: int, n: int, suffix: str
) -> dict[str, float]:
    """Median call through ours and through plain, and their ratio.

    Calls alternate one by one (ours, plain, ours, ...), so that a shared VM's
    drift hits both alike; each round's ratio is of its two medians, and the
    figures are medians over rounds.
    """
    for _ in range(10):
        call(ours)
        call(plain)
    ours_ms, plain_ms, ratios = [], [], []
    for _ in range(rounds):
        a, b = [], []
        for _ in range(n):
            a.append(call(ours))
            b.append(call(plain))
        ours_ms.append(median(a))
        plain_ms.append(median(b))
        ratios.append(median(a) / median(b))
    return {
        f"ours_ms{suffix}": median(ours_ms),
        f"plain_ms{suffix}": median(plain_ms),
        f"ratio{suffix}": median(ratios),
    }


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
        out: dict[str, Any] = {"openai": openai.__version__}
        out.update(pair(ours, plain, args.rounds, args.calls, ""))
        default = openai.DefaultHttpxClient
        if not issubclass(default, httpx.Client):  # openai 3.x: an httpx2 client
            ours2 = openai.OpenAI(
                api_key=token, base_url=url + "/v1", http_client=default(transport=cc.transport)
            )
            plain2 = openai.OpenAI(
                api_key=token,
                base_url=url + "/v1",
                http_client=default(headers={"X-CacheCore-Token": token}),
            )
            out.update(pair(ours2, plain2, args.rounds, args.calls, "_httpx2"))
        cc.close()
    finally:
        server.terminate()
        server.wait(10)
    emit(out)


if __name__ == "__main__":
    main()
