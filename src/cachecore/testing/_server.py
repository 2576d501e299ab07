"""Run the reference gateway on loopback with uvicorn, in a background thread.

uvicorn comes with the ``gateway`` extra and is imported only here, when a
server is actually wanted. The socket is bound before uvicorn starts, so port 0
gives an ephemeral port that is known (and printed) before the first request.
"""

from __future__ import annotations

import inspect
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cachecore.testing._gateway import ReferenceGateway

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


def make_server(gateway: ReferenceGateway, *, log_level: str = "warning") -> Any:
    """A ``uvicorn.Server`` for ``gateway`` (call ``.run(sockets=[sock])``)."""
    uvicorn = _uvicorn()
    options: dict[str, Any] = {"log_level": log_level, "lifespan": "on", "access_log": False}
    if "timeout_graceful_shutdown" in inspect.signature(uvicorn.Config).parameters:
        options["timeout_graceful_shutdown"] = 2  # an open stream must not hang shutdown
    return uvicorn.Server(uvicorn.Config(gateway.asgi_app(), **options))


@contextmanager
def serve(
    gateway: ReferenceGateway,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout: float = 10.0,
) -> Iterator[str]:
    """Serve ``gateway`` on ``host:port`` in a thread; yield its base URL; stop on exit.

    ``with serve(gateway) as url: httpx.get(url + "/health")``
    """
    server = make_server(gateway)
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
