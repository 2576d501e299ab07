"""The connection limits uvicorn does not have: a header timeout and a cap at accept.

Why this exists. uvicorn bounds a keep-alive connection between requests
(``timeout_keep_alive``), the size of a request head
(``h11_max_incomplete_event_size``) and, with ``limit_concurrency``, the requests
it runs; ``make_server`` sets those. It has no timeout for a request head that
never completes (or never starts: a fresh connection is not idle-timed), and
``limit_concurrency`` answers 503 only once a head has been parsed: a client
opening connections that send half a header holds one descriptor each, forever,
until the process runs out of them (measured on 0.2.0: 1,100 such connections
made ``/health`` time out).

How. uvicorn's public ``Config(http=<protocol class>)`` takes an
``asyncio.Protocol`` class; ``GuardedH11`` (made per server by
``guarded_protocol``) wraps uvicorn's h11 protocol, delegating every protocol
method to it, and adds two things:

- the cap: ``connection_made`` over ``ConnectionGuard.cap`` writes a bare 503 and
  closes the transport at once, without handing it to uvicorn, so a refused
  connection holds a descriptor for one loop turn; the first refusal of a burst
  logs one WARNING (a burst ends when half the cap is free again);
- the header timer: armed on connect, and on the first bytes after a response;
  it closes the connection when it fires. ``GuardedApp``, the ASGI app uvicorn
  runs, cancels it when a request of that connection reaches the app: the ASGI
  scope's ``client`` is the connection's peer address, the guard's key for it
  (uvicorn's ``proxy_headers`` is off so it cannot be rewritten).

The body timeout is the ASGI face's own (``GatewayASGIApp(body_timeout=...)``).
Everything runs on the server's event loop thread: no locks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("cachecore.testing.server")

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]
Peer = tuple[str, int]

#: What a refused connection is told before it is closed.
REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\n"
    b"content-length: 39\r\n"
    b"\r\n"
    b"too many connections; retry in a moment"
)


class ConnectionGuard:
    """The open connections of one server, by peer address, and the cap on them."""

    def __init__(self, *, cap: int, header_timeout: float) -> None:
        self.cap = cap
        self.header_timeout = header_timeout
        self.open: dict[Peer, GuardedH11] = {}
        #: Connections refused at accept since the server started.
        self.refused = 0
        self._in_burst = False

    def admit(self, peer: Peer, protocol: GuardedH11) -> bool:
        if len(self.open) >= self.cap:
            self.refused += 1
            if not self._in_burst:
                self._in_burst = True
                log.warning(
                    "connection cap reached: %d connections open (max_connections=%d);"
                    " refusing new connections with 503 until half of them close",
                    len(self.open),
                    self.cap,
                )
            return False
        self.open[peer] = protocol
        return True

    def release(self, peer: Peer, protocol: GuardedH11) -> None:
        if self.open.get(peer) is protocol:  # not a newer connection from the same port
            del self.open[peer]
        if self._in_burst and len(self.open) <= self.cap // 2:
            self._in_burst = False

    def request_started(self, client: Any) -> None:
        protocol = self.open.get(_peer(client)) if client else None
        if protocol is not None:
            protocol.request_started()

    def request_finished(self, client: Any) -> None:
        protocol = self.open.get(_peer(client)) if client else None
        if protocol is not None:
            protocol.request_finished()


def _peer(address: Any) -> Peer:
    return (str(address[0]), int(address[1]))


class GuardedH11(asyncio.Protocol):
    """uvicorn's h11 protocol, behind the cap and the header timer of ``guard``."""

    guard: ConnectionGuard  # set on the per-server subclass (``guarded_protocol``)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.inner = H11Protocol(*args, **kwargs)
        self.peer: Peer | None = None
        self.transport: asyncio.Transport | None = None
        self.refused = False
        self.busy = False
        self.timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol, delegated ---------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        address = transport.get_extra_info("peername")
        if not isinstance(address, (tuple, list)) or len(address) < 2:
            self.inner.connection_made(transport)  # not TCP: nothing to key it by
            return
        peer = _peer(address)
        if not self.guard.admit(peer, self):
            self.refused = True
            transport.write(REFUSED)
            transport.close()
            return
        self.peer, self.transport = peer, transport
        self.inner.connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.peer is not None and not self.busy and self.timer is None:
            self._arm()  # the first bytes after a response: a new head has begun
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        self.inner.eof_received()
        return None  # as uvicorn: the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        if self.refused:
            return  # refused at accept: uvicorn never saw it
        self._disarm()
        if self.peer is not None:
            self.guard.release(self.peer, self)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    # -- the header timer ------------------------------------------------------------

    def request_started(self) -> None:
        self.busy = True
        self._disarm()

    def request_finished(self) -> None:
        self.busy = False  # uvicorn's keep-alive timer now runs until the next bytes

    def _arm(self) -> None:
        self._disarm()
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.guard.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _expired(self) -> None:
        self.timer = None
        if self.transport is not None and not self.busy and not self.transport.is_closing():
            self.transport.close()


def guarded_protocol(guard: ConnectionGuard) -> type[GuardedH11]:
    """A ``GuardedH11`` class bound to ``guard`` (uvicorn instantiates it per connection)."""
    return type("GuardedH11", (GuardedH11,), {"guard": guard})


class GuardedApp:
    """Tells ``guard`` when a connection's request is in the app (and its head complete)."""

    def __init__(self, app: ASGIApp, guard: ConnectionGuard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        self.guard.request_started(client)
        try:
            await self.app(scope, receive, send)
        finally:
            self.guard.request_finished(client)
