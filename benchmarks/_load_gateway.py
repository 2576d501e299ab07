"""Serve the reference gateway with a slow upstream on loopback; print ``URL <base url>``.

The upstream answers prompts that start with ``slow:`` after ``--delay`` seconds
(awaited, as ``HTTPUpstream`` awaits a real API) and others at once, so a
benchmark can keep many slow misses in flight and still prime fast entries.

    python benchmarks/_load_gateway.py [--delay 5]
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

import anyio

from cachecore.testing import GatewayConfig, OfflineModel, ReferenceGateway, serve

SECRET = "bench-secret-of-at-least-32-bytes-long"


class SlowForSome:
    """The offline model, late by ``delay`` seconds for ``slow:`` prompts."""

    blocking = False
    latency = 0.0

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.model = OfflineModel()

    def _slow(self, request: dict[str, Any]) -> bool:
        content = request["messages"][-1].get("content")
        return isinstance(content, str) and content.startswith("slow:")

    def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        if self._slow(request):
            time.sleep(self.delay)
        return self.model.complete(request)

    async def acomplete(self, request: dict[str, Any]) -> dict[str, Any]:
        if self._slow(request):
            await anyio.sleep(self.delay)
        return self.model.complete(request)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=5.0)
    args = parser.parse_args()
    gateway = ReferenceGateway(GatewayConfig(secret=SECRET, upstream=SlowForSome(args.delay)))
    with serve(gateway) as url:
        print(f"URL {url}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
