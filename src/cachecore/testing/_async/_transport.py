"""The in-process face: an httpx transport that calls the gateway core directly.

No sockets, any host name: ``httpx.AsyncClient(transport=gateway.async_transport())``
with ``base_url="http://cachecore.test"`` reaches the gateway. Streamed answers
are real byte streams. A delay longer than the request's read timeout raises
``httpx.ReadTimeout`` after the timeout, as a network transport would, so timeout
handling can be tested without a server. Each request writes one access-log line
(``cachecore.testing.access``, INFO), as the network face does.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING

import httpx

from cachecore.testing._access import log_access
from cachecore.testing._transports import (
    async_checkpoint,
    async_sleep,
    handle_async,
    timed_out,
    to_gateway_request,
)

if TYPE_CHECKING:
    from cachecore.testing._gateway import ReferenceGateway


class AsyncChunks(httpx.AsyncByteStream):
    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk
            await async_checkpoint()  # let other tasks run between events, as a socket would


async def _read(request: httpx.Request, limit: int) -> bytes:
    """Read a request body, stopping just past ``limit`` (the core then answers 413)."""
    if isinstance(request.stream, httpx.ByteStream) or not isinstance(
        request.stream, httpx.AsyncByteStream
    ):
        return request.read()
    parts, size = [], 0
    async for part in request.stream:
        parts.append(part)
        size += len(part)
        if size > limit:
            break
    return b"".join(parts)


class AsyncGatewayTransport(httpx.AsyncBaseTransport):
    """``httpx.AsyncClient(transport=gateway.async_transport())``."""

    def __init__(self, gateway: ReferenceGateway) -> None:
        self.gateway = gateway

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        body = await _read(request, self.gateway.config.max_body_bytes)
        gateway_request = to_gateway_request(request, body)
        response = await handle_async(self.gateway, gateway_request)
        limit = timed_out(request, response.delay)
        if limit is not None:
            await async_sleep(limit)
            log_access(gateway_request, response, started, note="client read timeout")
            raise httpx.ReadTimeout("the reference gateway answered too slowly", request=request)
        if response.delay:
            await async_sleep(response.delay)
        log_access(gateway_request, response, started)
        if response.chunks is None:
            return httpx.Response(response.status, headers=response.headers, content=response.body)
        return httpx.Response(
            response.status, headers=response.headers, stream=AsyncChunks(response.chunks)
        )
