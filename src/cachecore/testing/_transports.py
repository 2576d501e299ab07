"""What the in-process faces share, and the few primitives that differ by flavour.

The faces themselves (httpx transports that call the gateway core directly) are
written once, async, in ``cachecore/testing/_async/_transport.py``; the sync face
in ``cachecore/testing/_sync/`` is generated from it (``codegen/make_sync.py``),
which maps each ``async_*``/``handle_async`` primitive below to its sync partner.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
import httpx

from cachecore.testing._http import GatewayRequest, GatewayResponse

if TYPE_CHECKING:
    from cachecore.testing._gateway import ReferenceGateway


def to_gateway_request(request: httpx.Request, body: bytes) -> GatewayRequest:
    return GatewayRequest.build(
        request.method, request.url.path, request.headers.multi_items(), body
    )


def read_timeout(request: httpx.Request) -> float | None:
    timeout = request.extensions.get("timeout")
    value = timeout.get("read") if isinstance(timeout, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


def timed_out(request: httpx.Request, delay: float) -> float | None:
    """The read timeout when ``delay`` exceeds it, else ``None``."""
    limit = read_timeout(request)
    return limit if limit is not None and delay > limit else None


async def handle_async(gateway: ReferenceGateway, request: GatewayRequest) -> GatewayResponse:
    """Run the core without blocking the event loop (``ReferenceGateway.handle_async``)."""
    return await gateway.handle_async(request)


def handle_sync(gateway: ReferenceGateway, request: GatewayRequest) -> GatewayResponse:
    return gateway.handle(request)


async def async_sleep(seconds: float) -> None:
    await anyio.sleep(seconds)


def sync_sleep(seconds: float) -> None:
    time.sleep(seconds)


async def async_checkpoint() -> None:
    """Let other tasks run (between streamed events, as a socket would)."""
    await anyio.lowlevel.checkpoint()


def sync_checkpoint() -> None:
    """Nothing: a sync stream has no other tasks to let run."""
