"""Run the reference gateway on loopback with uvicorn, in a background thread.

uvicorn comes with the ``gateway`` extra and is imported only here, when a
server is actually wanted. The socket is bound before uvicorn starts, so port 0
gives an ephemeral port that is known (and printed) before the first request.

Limits (``ServerLimits``): uvicorn's own settings where it has them (idle
keep-alive timeout, request-head size, listen backlog, graceful-shutdown
timeout), and ``_guard.py`` for what it lacks (a request-head timeout, and a
connection cap enforced at accept, before a descriptor is held for long).
uvicorn's ``limit_concurrency`` is not used: it answers 503 only after a head
is parsed, and the guard's cap already bounds connections and so requests.
The protocol is always h11 (never httptools), wrapped by the guard; uvicorn's
access log is off (the gateway writes its own, ``cachecore.testing.access``).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cachecore.testing._gateway import ReferenceGateway
from cachecore.testing._limits import ServerLimits

INSTALL_HINT = "the reference gateway server needs uvicorn: pip install 'cachecore-python[gateway]'"


def _uvicorn() -> Any:
    try:
        import uvicorn
    except ImportError:
        raise RuntimeError(INSTALL_HINT) from None
    return uvicorn


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on ``host:port`` (port 0: ephemeral)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit it: without it, an answer written as headers then
    # body waits out the client's delayed ACK (about 40 ms per keep-alive request).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def make_server(
    gateway: ReferenceGateway, *, log_level: str = "warning", limits: ServerLimits | None = None
) -> Any:
    """A ``uvicorn.Server`` for ``gateway`` (call ``.run(sockets=[sock])``).

    ``limits`` (default ``ServerLimits()``) bound what clients may hold; the
    server's ``ConnectionGuard`` is ``server.cachecore_guard`` (open connections,
    ``refused`` count).
    """
    uvicorn = _uvicorn()
    from cachecore.testing._asgi import GatewayASGIApp
    from cachecore.testing._guard import ConnectionGuard, GuardedApp, guarded_protocol

    limits = limits or ServerLimits()
    guard = ConnectionGuard(cap=limits.connection_cap, header_timeout=limits.header_timeout)
    app = GuardedApp(GatewayASGIApp(gateway, body_timeout=limits.body_timeout), guard)
    options: dict[str, Any] = {
        "log_level": log_level,
        "lifespan": "on",
        "access_log": False,
        "http": guarded_protocol(guard),
        "ws": "none",
        # The guard knows a connection by its peer address: never a forwarded one.
        "proxy_headers": False,
        # All of these exist since uvicorn 0.23, the declared floor.
        "timeout_keep_alive": limits.idle_timeout,
        "h11_max_incomplete_event_size": limits.max_header_bytes,
        "backlog": limits.backlog,
        "timeout_graceful_shutdown": 2,  # an open stream must not hang shutdown
    }
    server = uvicorn.Server(uvicorn.Config(app, **options))
    server.cachecore_guard = guard
    return server


@contextmanager
def serve(
    gateway: ReferenceGateway,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout: float = 10.0,
    limits: ServerLimits | None = None,
) -> Iterator[str]:
    """Serve ``gateway`` on ``host:port`` in a thread; yield its base URL; stop on exit.

    ``with serve(gateway) as url: httpx.get(url + "/health")``; ``limits``: see
    ``ServerLimits`` (timeouts, connection cap).
    """
    server = make_server(gateway, limits=limits)
    sock = bind(host, port)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="cachecore-gateway", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the reference gateway server did not start; see its log")
            time.sleep(0.005)
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=startup_timeout)
        sock.close()
