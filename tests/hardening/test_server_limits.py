"""Server limits on loopback: half-open and silent connections, slow uploads, the cap.

Raw sockets play the misbehaving clients (half a request head, nothing at all, a
body a byte at a time); httpx plays the well-behaved one. Timeouts are small
(tenths of a second) so every test ends in a few seconds.
"""

from __future__ import annotations

import logging
import select
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import pytest
from hardening_helpers import chat_body, figure, make_gateway

from cachecore._wire import CACHE_HEADER, TOKEN_HEADER
from cachecore.testing import OfflineModel, ServerLimits, serve
from cachecore.testing._limits import DEFAULT_MAX_CONNECTIONS, FD_MARGIN, connection_cap_for

SERVER_LOG = "cachecore.testing.server"
HALF_HEAD = b"GET /health HTTP/1.1\r\nHost: x\r\n"  # no blank line: the head never ends


@contextmanager
def running(**limits: float | int) -> Iterator[tuple[str, int, str]]:
    """A loopback server with ``ServerLimits(**limits)``: (host, port, base URL)."""
    with serve(make_gateway(), limits=ServerLimits(**limits)) as url:  # type: ignore[arg-type]
        host, port = url.removeprefix("http://").rsplit(":", 1)
        yield host, int(port), url


@dataclass
class Outcome:
    """What a raw client saw: the bytes it got and when the server closed (s after start)."""

    data: bytes = b""
    closed_after: float | None = None
    reset: bool = False
    started: float = field(default_factory=time.monotonic)


def watch(socks: list[socket.socket], within: float) -> list[Outcome]:
    """Read every socket until the server closes it or ``within`` seconds pass."""
    start = time.monotonic()
    outcomes = {s: Outcome(started=start) for s in socks}
    pending = list(socks)
    for s in socks:
        s.setblocking(False)
    while pending:
        remaining = within - (time.monotonic() - start)
        if remaining <= 0:
            break
        readable, _, _ = select.select(pending, [], [], remaining)
        for s in readable:
            outcome = outcomes[s]
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                outcome.reset, chunk = True, b""
            if chunk:
                outcome.data += chunk
                continue
            outcome.closed_after = time.monotonic() - start
            pending.remove(s)
    return [outcomes[s] for s in socks]


def read_answer(s: socket.socket) -> bytes:
    """One whole answer to a ``GET /health`` (chunked: it ends with the empty chunk)."""
    s.settimeout(2)
    data = b""
    while not data.endswith(b"\r\n0\r\n\r\n"):
        chunk = s.recv(65536)
        assert chunk, f"closed mid-answer: {data!r}"
        data += chunk
    return data


def connect(host: str, port: int, first: bytes = b"") -> socket.socket:
    s = socket.create_connection((host, port), timeout=2)
    if first:
        s.sendall(first)
    return s


def test_half_open_connections_over_the_cap_are_closed_and_warned_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=SERVER_LOG)
    cap, extra, header_timeout = 5, 15, 1.0
    with running(max_connections=cap, header_timeout=header_timeout) as (host, port, url):
        socks = [connect(host, port, HALF_HEAD) for _ in range(cap + extra)]
        try:
            outcomes = watch(socks, within=header_timeout + 2.0)
        finally:
            for s in socks:
                s.close()
        assert all(o.closed_after is not None for o in outcomes), "the server closed each"
        # Over the cap: answered a bare 503 at accept (or reset, the half head unread).
        refused: list[Outcome] = []
        held: list[Outcome] = []
        for o in outcomes:
            (refused if o.data.startswith(b"HTTP/1.1 503 ") or o.reset else held).append(o)
        assert len(refused) == extra, "over the cap: refused"
        assert len(held) == cap, "under the cap: held until the header timeout"
        assert all(o.data == b"" for o in held)
        # A busy machine makes them later, never earlier.
        timed_out = [o.closed_after for o in held if o.closed_after is not None]
        assert min(timed_out) >= header_timeout / 2
        assert max(timed_out) < header_timeout + 1.0
        started = time.monotonic()
        health = httpx.get(url + "/health", timeout=2)
        health_ms = (time.monotonic() - started) * 1000
    figure("half_open_closed_after_s", round(max(timed_out), 2))
    figure("health_after_flood_ms", round(health_ms, 1))
    assert health.status_code == 200
    warnings = [r for r in caplog.records if r.name == SERVER_LOG]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert warnings[0].levelno == logging.WARNING
    assert f"max_connections={cap}" in warnings[0].getMessage()


def test_a_refused_silent_connection_reads_a_503() -> None:
    with running(max_connections=2, header_timeout=1.0) as (host, port, _):
        held = [connect(host, port) for _ in range(2)]
        time.sleep(0.1)  # let the server accept both before the third arrives
        third = connect(host, port)
        try:
            [outcome] = watch([third], within=0.5)
        finally:
            for s in [*held, third]:
                s.close()
    assert outcome.closed_after is not None
    assert outcome.data.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert outcome.data.endswith(b"too many connections; retry in a moment")


def test_a_fresh_silent_connection_is_closed_after_the_header_timeout() -> None:
    with running(header_timeout=0.4, idle_timeout=5) as (host, port, _):
        s = connect(host, port)
        try:
            [outcome] = watch([s], within=2.0)
        finally:
            s.close()
    assert outcome.data == b""
    assert outcome.closed_after is not None
    assert 0.3 <= outcome.closed_after < 1.4


def test_half_a_head_after_a_response_is_closed_after_the_header_timeout() -> None:
    with running(header_timeout=0.4, idle_timeout=5) as (host, port, _):
        s = connect(host, port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            assert read_answer(s).startswith(b"HTTP/1.1 200 ")
            time.sleep(0.6)  # idle, longer than the header timeout: still open (idle timer)
            s.sendall(HALF_HEAD)
            [outcome] = watch([s], within=2.0)
        finally:
            s.close()
    assert outcome.data == b""
    assert outcome.closed_after is not None
    assert 0.3 <= outcome.closed_after < 1.4


def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() -> None:
    with running(header_timeout=5, idle_timeout=0.4) as (host, port, _):
        s = connect(host, port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            [outcome] = watch([s], within=2.0)
        finally:
            s.close()
    assert outcome.data.startswith(b"HTTP/1.1 200 ")
    assert outcome.closed_after is not None
    assert 0.3 <= outcome.closed_after < 1.4


def test_a_slow_upload_is_answered_408_and_closed() -> None:
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        b"content-type: application/json\r\ncontent-length: 1000\r\n\r\n"
    )
    with running(header_timeout=5, body_timeout=0.5) as (host, port, _):
        s = connect(host, port, head + b'{"model":')
        try:
            started = time.monotonic()
            for _ in range(4):  # dribble: each byte resets no timer
                time.sleep(0.1)
                s.sendall(b" ")
            [outcome] = watch([s], within=2.0)
            total = time.monotonic() - started
        finally:
            s.close()
    assert outcome.data.startswith(b"HTTP/1.1 408 ")
    assert b'"code":"request_timeout"' in outcome.data
    assert outcome.closed_after is not None
    assert 0.4 <= total < 1.5


def test_a_keep_alive_client_is_unaffected() -> None:
    """Pauses longer than the header timeout between requests, and an answer slower
    than it: the same connection serves every request."""
    gateway_latency = 0.5
    limits = ServerLimits(header_timeout=0.3, idle_timeout=2.0, body_timeout=1.0)
    gw = make_gateway(upstream=OfflineModel(latency=gateway_latency))
    token = gw.mint_token("tenant-a")
    with serve(gw, limits=limits) as url, httpx.Client(base_url=url, timeout=5) as client:
        answers, peers = [], set()
        questions = ["What is the capital of France?", "How many legs does a spider have?"]
        for i in range(4):
            answer = client.post(
                "/v1/chat/completions",
                json=chat_body(questions[i % 2]),
                headers={TOKEN_HEADER: token},
            )
            answers.append((answer.status_code, answer.headers[CACHE_HEADER]))
            peers.add(answer.extensions["network_stream"].get_extra_info("client_addr"))
            time.sleep(0.4)  # idle longer than the header timeout
    assert answers == [(200, "MISS"), (200, "MISS"), (200, "HIT_L1"), (200, "HIT_L1")]
    assert len(peers) == 1, "one keep-alive connection served them all"


# -- the settings --------------------------------------------------------------------


def test_the_default_cap_stays_below_the_descriptor_limit() -> None:
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (300, hard))
        assert ServerLimits().connection_cap == 300 - FD_MARGIN
        with pytest.raises(ValueError, match="ulimit -n"):
            ServerLimits(max_connections=300)
        assert ServerLimits(max_connections=10).connection_cap == 10
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert connection_cap_for(None) == DEFAULT_MAX_CONNECTIONS
    assert connection_cap_for(100) == 50  # a small limit: half of it
    assert connection_cap_for(1) == 1
    assert connection_cap_for(1_000_000) == 1_000_000 - FD_MARGIN


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"header_timeout": 0}, "header_timeout"),
        ({"idle_timeout": -1}, "idle_timeout"),
        ({"body_timeout": float("inf")}, "body_timeout"),
        ({"body_timeout": float("nan")}, "body_timeout"),
        ({"max_connections": 0}, "max_connections"),
        ({"max_connections": True}, "max_connections"),
        ({"max_header_bytes": 100}, "max_header_bytes"),
        ({"backlog": 0}, "backlog"),
    ],
)
def test_bad_limits_are_refused_at_construction(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServerLimits(**kwargs)  # type: ignore[arg-type]


def test_a_head_larger_than_max_header_bytes_is_refused() -> None:
    with running(max_header_bytes=2048) as (host, port, _):
        s = connect(host, port, b"GET /health HTTP/1.1\r\nx-big: " + b"a" * 4096 + b"\r\n\r\n")
        try:
            [outcome] = watch([s], within=2.0)
        finally:
            s.close()
    assert outcome.data.startswith(b"HTTP/1.1 400 ") or outcome.reset
    assert outcome.closed_after is not None
    assert outcome.closed_after < 1.0
