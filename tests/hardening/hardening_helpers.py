"""Helpers for the hardening tests (a uniquely named module, not conftest).

Figures the tests measure are printed as ``FIGURE <name> = <value>`` lines
(visible with ``pytest -s``); docs/reliability.md quotes them.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from cachecore._retry import RetryPolicy
from cachecore.testing import GatewayConfig, ReferenceGateway
from shared_constants import SECRET

#: Small waits so the suite stays fast; ``max_retries`` is set per test.
FAST = RetryPolicy(base_delay=0.01, max_delay=0.05, max_retry_after=0.25)
#: How many examples each hypothesis test runs (``nox -s fuzz`` raises it).
FUZZ_EXAMPLES = int(os.environ.get("CACHECORE_FUZZ_EXAMPLES", "150"))


def make_gateway(**kwargs: Any) -> ReferenceGateway:
    kwargs.setdefault("l2_threshold", 0.87)
    return ReferenceGateway(GatewayConfig(secret=SECRET, **kwargs))


def figure(name: str, value: object) -> None:
    print(f"FIGURE {name} = {value}")


def chat_body(content: str, model: str = "gpt-4o-mini") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}]}


def closed_port() -> int:
    """A loopback port nobody listens on: bind, read the port, close."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


class Recorder(httpx.AsyncBaseTransport, httpx.BaseTransport):
    """Wraps a transport (sync or async); records every request's path, headers and JSON body."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[tuple[str, dict[str, str], Any]] = []
        self._lock = threading.Lock()

    def _note(self, request: httpx.Request) -> None:
        raw = request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        with self._lock:
            self.calls.append((request.url.path, dict(request.headers), body))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._note(request)
        return self.inner.handle_request(request)  # type: ignore[no-any-return]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._note(request)
        return await self.inner.handle_async_request(request)  # type: ignore[no-any-return]

    def bodies(self, path: str) -> list[Any]:
        return [b for p, _, b in self.calls if p == path]


Behaviour = Callable[[socket.socket, bytes], None]


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head + b"\r\n\r\n" + rest


def reset_after_partial_headers(conn: socket.socket, request: bytes) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/js")


def reset_mid_body(conn: socket.socket, request: bytes) -> None:
    conn.sendall(
        b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"dep'
    )


def answer_ok(conn: socket.socket, request: bytes) -> None:
    body = b'{"ok":true}'
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


@contextmanager
def raw_server(
    behaviours: list[Behaviour], default: Behaviour
) -> Iterator[tuple[str, list[bytes]]]:
    """A loopback HTTP server written on sockets: connection ``i`` gets ``behaviours[i]``.

    Yields its URL and the raw requests it read. Every connection is closed after one answer.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    seen: list[bytes] = []
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                request = _read_request(conn)
                index = len(seen)
                seen.append(request)
                behaviour = behaviours[index] if index < len(behaviours) else default
                try:
                    behaviour(conn, request)
                except OSError:
                    pass
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", seen
    finally:
        stop.set()
        thread.join(timeout=2)
        listener.close()


def request_json(raw: bytes) -> Any:
    return json.loads(raw.partition(b"\r\n\r\n")[2] or b"null")
