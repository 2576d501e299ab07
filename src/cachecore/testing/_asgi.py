"""The network face: a minimal hand-rolled ASGI app around the gateway core.

No framework: the core already routes and answers, so ASGI only needs the body
read (capped), the answer sent, and SSE chunks flushed one by one. ``lifespan``
is acknowledged so servers that probe it (uvicorn) start quietly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import anyio

from cachecore.testing._http import GatewayRequest, GatewayResponse
from cachecore.testing._transports import handle_async

if TYPE_CHECKING:
    from cachecore.testing._gateway import ReferenceGateway

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class GatewayASGIApp:
    """``uvicorn.run(GatewayASGIApp(gateway))`` serves the reference gateway."""

    def __init__(self, gateway: ReferenceGateway) -> None:
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await self._read_body(receive)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        request = GatewayRequest.build(scope["method"], scope["path"], headers, body)
        response = await handle_async(self.gateway, request)
        if response.delay:
            await anyio.sleep(response.delay)
        await self._send(response, send)

    async def _read_body(self, receive: Receive) -> bytes:
        """The request body, cut just past the cap (the core then answers 413)."""
        limit = self.gateway.config.max_body_bytes
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect
                break
            part = message.get("body", b"")
            parts.append(part)
            size += len(part)
            if size > limit or not message.get("more_body", False):
                break
        return b"".join(parts)

    @staticmethod
    async def _send(response: GatewayResponse, send: Send) -> None:
        raw_headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers
        ]
        await send(
            {"type": "http.response.start", "status": response.status, "headers": raw_headers}
        )
        if response.chunks is None:
            await send({"type": "http.response.body", "body": response.body})
            return
        for chunk in response.chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
