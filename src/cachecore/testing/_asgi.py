"""The network face: a minimal hand-rolled ASGI app around the gateway core.

No framework: the core already routes and answers, so ASGI only needs the body
read (capped, and within ``body_timeout`` seconds: a slower upload is answered
408 and the connection closed), the answer sent, SSE chunks flushed one by one,
and one access-log line written (``_access.py``). ``lifespan`` is acknowledged so
servers that probe it (uvicorn) start quietly.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import anyio

from cachecore.testing._access import log_access
from cachecore.testing._http import GatewayRequest, GatewayResponse, error
from cachecore.testing._transports import handle_async

if TYPE_CHECKING:
    from cachecore.testing._gateway import ReferenceGateway

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class GatewayASGIApp:
    """``uvicorn.run(GatewayASGIApp(gateway))`` serves the reference gateway.

    ``body_timeout``: seconds to receive a request body once its head has arrived
    (``None``: no limit; ``serve`` and ``cachecore gateway`` pass ``ServerLimits``').
    """

    def __init__(self, gateway: ReferenceGateway, *, body_timeout: float | None = None) -> None:
        self.gateway = gateway
        self.body_timeout = body_timeout

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
        started = time.perf_counter()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        body: bytes | None = None
        with anyio.move_on_after(self.body_timeout):
            body = await self._read_body(receive)
        if body is None:
            request = GatewayRequest.build(scope["method"], scope["path"], headers)
            response = error(
                408,
                "request_timeout",
                f"the request body did not arrive within {self.body_timeout:g} s",
                [("connection", "close")],
            )
        else:
            request = GatewayRequest.build(scope["method"], scope["path"], headers, body)
            response = await handle_async(self.gateway, request)
            if response.delay:
                await anyio.sleep(response.delay)
        await self._send(response, send)
        log_access(request, response, started)

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
