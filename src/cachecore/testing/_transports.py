"""The in-process face: httpx transports that call the gateway core directly.

No sockets, any host name: ``httpx.Client(transport=gateway.transport())`` with
``base_url="http://cachecore.test"`` reaches the gateway. Streamed answers are
real byte streams. A delay longer than the request's read timeout raises
``httpx.ReadTimeout`` after the timeout, as a network transport would, so timeout
handling can be tested without a server.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
import anyio.to_thread
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


def _timed_out(request: httpx.Request, delay: float) -> float | None:
    """The read timeout when ``delay`` exceeds it, else ``None``."""
    limit = read_timeout(request)
    return limit if limit is not None and delay > limit else None


async def handle_async(gateway: ReferenceGateway, request: GatewayRequest) -> GatewayResponse:
    """Run the core without blocking the event loop when the upstream does I/O."""
    if gateway.upstream.blocking:
        return await anyio.to_thread.run_sync(gateway.handle, request)
    return gateway.handle(request)


class _Chunks(httpx.SyncByteStream):
    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks


class _AsyncChunks(httpx.AsyncByteStream):
    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk
            await (
                anyio.lowlevel.checkpoint()
            )  # let other tasks run between events, as a socket would


def _read(request: httpx.Request, limit: int) -> bytes:
    """Read a request body, stopping just past ``limit`` (the core then answers 413)."""
    if isinstance(request.stream, httpx.ByteStream) or not isinstance(
        request.stream, httpx.SyncByteStream
    ):
        return request.read()
    parts, size = [], 0
    for part in request.stream:
        parts.append(part)
        size += len(part)
        if size > limit:
            break
    return b"".join(parts)


async def _aread(request: httpx.Request, limit: int) -> bytes:
    """``_read`` for async request streams."""
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


class GatewayTransport(httpx.BaseTransport):
    """Sync face: ``httpx.Client(transport=gateway.transport())``."""

    def __init__(self, gateway: ReferenceGateway) -> None:
        self.gateway = gateway

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = _read(request, self.gateway.config.max_body_bytes)
        response = self.gateway.handle(to_gateway_request(request, body))
        limit = _timed_out(request, response.delay)
        if limit is not None:
            time.sleep(limit)
            raise httpx.ReadTimeout("the reference gateway answered too slowly", request=request)
        if response.delay:
            time.sleep(response.delay)
        if response.chunks is None:
            return httpx.Response(response.status, headers=response.headers, content=response.body)
        return httpx.Response(
            response.status, headers=response.headers, stream=_Chunks(response.chunks)
        )


class AsyncGatewayTransport(httpx.AsyncBaseTransport):
    """Async face: ``httpx.AsyncClient(transport=gateway.async_transport())``."""

    def __init__(self, gateway: ReferenceGateway) -> None:
        self.gateway = gateway

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await _aread(request, self.gateway.config.max_body_bytes)
        response = await handle_async(self.gateway, to_gateway_request(request, body))
        limit = _timed_out(request, response.delay)
        if limit is not None:
            await anyio.sleep(limit)
            raise httpx.ReadTimeout("the reference gateway answered too slowly", request=request)
        if response.delay:
            await anyio.sleep(response.delay)
        if response.chunks is None:
            return httpx.Response(response.status, headers=response.headers, content=response.body)
        return httpx.Response(
            response.status, headers=response.headers, stream=_AsyncChunks(response.chunks)
        )
