"""Fault injection against the SDK core: every failure bounded, counted and reported.

Each test states what the guarantee is, then checks the number of attempts
(``max_retries + 1`` at most), the elapsed time (a bound built from the
timeout and the capped waits, never an exact figure), that a generated
``new_hash`` never changes between retries, and that every requested dep comes
back with ``ok`` and, when false, its cause. Proxied LLM calls are made once
(the LLM SDK owns retries) and end within the caller's timeout.
"""

from __future__ import annotations

import email.utils
import random
import time
from typing import Any

import httpx
import pytest
from hardening_helpers import (
    FAST,
    Recorder,
    answer_ok,
    chat_body,
    closed_port,
    figure,
    raw_server,
    request_json,
    reset_after_partial_headers,
    reset_mid_body,
)

from cachecore import CachecoreClient, Dep, SyncCachecoreClient
from cachecore._retry import RetryPolicy
from cachecore._wire import CHAT_COMPLETIONS_PATH, INVALIDATE_PATH
from cachecore.errors import (
    CachecoreAuthError,
    CachecoreConnectionError,
    CachecoreRateLimitError,
    CachecoreStatusError,
    CachecoreTimeoutError,
)
from cachecore.testing import Fault, ReferenceGateway, serve
from shared_constants import GATEWAY_URL

pytestmark = pytest.mark.anyio

SLACK = 1.0  # scheduling noise on a busy CI machine


def assert_failed(result: Any, *, attempts: int, cause: type[Exception]) -> None:
    assert result.ok is False
    assert result.attempts == attempts
    assert isinstance(result.exception, cause)
    assert result.error
    assert str(result.exception) == result.error


def client_for(
    gw: ReferenceGateway, recorder: Recorder | None = None, **kw: Any
) -> CachecoreClient:
    kw.setdefault("retry_policy", FAST)
    kw.setdefault("inner_transport", recorder if recorder is not None else gw.async_transport())
    return CachecoreClient(GATEWAY_URL, gw.mint_token("acme"), **kw)


# -- gateway down -------------------------------------------------------------------


async def test_gateway_down_invalidation_bounded_and_reported() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    async with CachecoreClient(url, "tok", max_retries=2, retry_policy=FAST, timeout=2) as cc:
        start = time.monotonic()
        results = await cc.invalidate_many(["doc:1", "doc:2", "doc:1", "doc:3"])
        elapsed = time.monotonic() - start
    assert [r.dep_id for r in results] == ["doc:1", "doc:2", "doc:1", "doc:3"]
    for r in results:
        assert_failed(r, attempts=3, cause=CachecoreConnectionError)
        assert "could not reach the gateway" in (r.error or "")
    assert results[0] is results[2]  # a repeated dep is sent once
    # 3 attempts, 2 backoffs of at most FAST.max_delay, refused connections are instant.
    assert elapsed < 2 * FAST.max_delay + SLACK
    figure("gateway_down.attempts", results[0].attempts)
    figure("gateway_down.seconds", round(elapsed, 3))


async def test_gateway_down_proxied_call_made_once() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    counter = Recorder(httpx.AsyncHTTPTransport())
    cc = CachecoreClient(url, "tok", inner_transport=counter)
    async with httpx.AsyncClient(transport=cc.transport, base_url=url, timeout=2) as http:
        with pytest.raises(httpx.ConnectError):
            await http.post("/v1/chat/completions", json=chat_body("hi"))
    await counter.inner.aclose()
    assert len(counter.calls) == 1


def test_gateway_down_sync_twin() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with SyncCachecoreClient(url, "tok", max_retries=3, retry_policy=FAST, timeout=2) as cc:
        result = cc.invalidate("doc:1")
    assert_failed(result, attempts=4, cause=CachecoreConnectionError)


# -- connection reset mid-response ----------------------------------------------------


@pytest.mark.parametrize("reset", [reset_after_partial_headers, reset_mid_body])
async def test_connection_reset_then_recovery_keeps_new_hash(reset: Any) -> None:
    with raw_server([reset, reset], default=answer_ok) as (url, seen):
        async with CachecoreClient(url, "tok", max_retries=3, retry_policy=FAST) as cc:
            result = await cc.invalidate("doc:1")
    assert result.ok
    assert result.attempts == 3
    hashes = {request_json(raw)["new_hash"] for raw in seen}
    assert hashes == {result.new_hash}  # generated once, before the first attempt
    assert len(seen) == 3


async def test_connection_reset_every_time_is_bounded() -> None:
    with raw_server([], default=reset_mid_body) as (url, seen):
        async with CachecoreClient(url, "tok", max_retries=2, retry_policy=FAST) as cc:
            start = time.monotonic()
            result = await cc.invalidate("doc:1", new_hash="v7")
            elapsed = time.monotonic() - start
    assert_failed(result, attempts=3, cause=CachecoreConnectionError)
    assert len(seen) == 3
    assert {request_json(r)["new_hash"] for r in seen} == {"v7"}
    assert elapsed < 2 * FAST.max_delay + SLACK
    figure("connection_reset.attempts", result.attempts)
    figure("connection_reset.seconds", round(elapsed, 3))


async def test_connection_reset_on_proxied_call_is_not_retried() -> None:
    with raw_server([], default=reset_mid_body) as (url, seen):
        cc = CachecoreClient(url, "tok")
        async with httpx.AsyncClient(transport=cc.transport, base_url=url, timeout=2) as http:
            with pytest.raises(httpx.RemoteProtocolError):
                await http.post("/v1/chat/completions", json=chat_body("hi"))
        await cc.aclose()
    assert len(seen) == 1


# -- a gateway slower than the timeout --------------------------------------------------


async def test_slow_gateway_in_process_times_out_each_attempt(gw: ReferenceGateway) -> None:
    gw.add_fault(Fault(delay=30), path=INVALIDATE_PATH, times=10)
    recorder = Recorder(gw.async_transport())
    async with client_for(gw, recorder, timeout=0.2, max_retries=2) as cc:
        start = time.monotonic()
        result = await cc.invalidate("doc:1")
        elapsed = time.monotonic() - start
    assert_failed(result, attempts=3, cause=CachecoreTimeoutError)
    assert len({b["new_hash"] for b in recorder.bodies(INVALIDATE_PATH)}) == 1
    assert 3 * 0.2 <= elapsed < 3 * 0.2 + 2 * FAST.max_delay + SLACK


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # one real-socket run; trio is in-process
async def test_slow_gateway_over_loopback(gw: ReferenceGateway, anyio_backend: str) -> None:
    gw.add_fault(Fault(delay=1.0), path=INVALIDATE_PATH, times=3)
    gw.add_fault(Fault(delay=1.0), path=CHAT_COMPLETIONS_PATH, times=1)
    with serve(gw) as url:
        token = gw.mint_token("acme")
        async with CachecoreClient(
            url, token, timeout=0.25, max_retries=2, retry_policy=FAST
        ) as cc:
            start = time.monotonic()
            result = await cc.invalidate("doc:1")
            elapsed = time.monotonic() - start
            assert_failed(result, attempts=3, cause=CachecoreTimeoutError)
            assert elapsed < 3 * 0.25 + 2 * FAST.max_delay + SLACK
            figure("slow_gateway.attempts", result.attempts)
            figure("slow_gateway.seconds", round(elapsed, 3))
            # The proxied call: one request, ended by the caller's own timeout.
            async with httpx.AsyncClient(transport=cc.transport, base_url=url, timeout=0.3) as http:
                start = time.monotonic()
                with pytest.raises(httpx.ReadTimeout):
                    await http.post("/v1/chat/completions", json=chat_body("slow"))
                proxied = time.monotonic() - start
    assert proxied < 0.3 + SLACK
    figure("slow_proxied_call.seconds", round(proxied, 3))


async def test_slow_proxied_call_in_process_ends_at_callers_timeout(gw: ReferenceGateway) -> None:
    gw.add_fault(Fault(delay=30), path=CHAT_COMPLETIONS_PATH, times=5)
    cc = client_for(gw)
    async with httpx.AsyncClient(transport=cc.transport, base_url=GATEWAY_URL, timeout=0.2) as http:
        start = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await http.post("/v1/chat/completions", json=chat_body("hi"))
        elapsed = time.monotonic() - start
    assert elapsed < 0.2 + SLACK
    assert gw.faults.pending() == 4  # exactly one request reached the gateway


def test_slow_gateway_sync_twin(gw: ReferenceGateway) -> None:
    gw.add_fault(Fault(delay=30), path=INVALIDATE_PATH, times=10)
    with SyncCachecoreClient(
        GATEWAY_URL,
        gw.mint_token("acme"),
        inner_transport=gw.transport(),
        timeout=0.15,
        max_retries=1,
        retry_policy=FAST,
    ) as cc:
        start = time.monotonic()
        result = cc.invalidate("doc:1")
        elapsed = time.monotonic() - start
    assert_failed(result, attempts=2, cause=CachecoreTimeoutError)
    assert elapsed < 2 * 0.15 + FAST.max_delay + SLACK


# -- bursts of 5xx --------------------------------------------------------------------


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_short_burst_is_retried_to_success(gw: ReferenceGateway, status: int) -> None:
    gw.add_fault(Fault(status), path=INVALIDATE_PATH, times=2)
    recorder = Recorder(gw.async_transport())
    async with client_for(gw, recorder, max_retries=3) as cc:
        result = await cc.invalidate("doc:1")
    assert result.ok
    assert result.attempts == 3
    assert result.status_code == 200
    sent = recorder.bodies(INVALIDATE_PATH)
    assert len(sent) == 3
    assert {b["new_hash"] for b in sent} == {result.new_hash}
    assert gw.dep_version("acme", "doc:1") == result.new_hash


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_long_burst_gives_up_after_max_retries(gw: ReferenceGateway, status: int) -> None:
    gw.add_fault(Fault(status), path=INVALIDATE_PATH, times=50)
    async with client_for(gw, max_retries=4) as cc:
        start = time.monotonic()
        result = await cc.invalidate("doc:1")
        elapsed = time.monotonic() - start
    assert_failed(result, attempts=5, cause=CachecoreStatusError)
    assert result.status_code == status
    assert str(status) in (result.error or "")
    assert gw.faults.pending() == 45
    assert elapsed < 4 * FAST.max_delay + SLACK
    assert gw.dep_version("acme", "doc:1") is None


async def test_500_is_not_retried(gw: ReferenceGateway) -> None:
    gw.add_fault(Fault(500), path=INVALIDATE_PATH, times=3)
    async with client_for(gw, max_retries=3) as cc:
        result = await cc.invalidate("doc:1")
    assert_failed(result, attempts=1, cause=CachecoreStatusError)
    assert result.status_code == 500
    assert gw.faults.pending() == 2


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_proxied_call_5xx_passes_through_once(gw: ReferenceGateway, status: int) -> None:
    gw.add_fault(Fault(status), path=CHAT_COMPLETIONS_PATH, times=3)
    cc = client_for(gw)
    async with httpx.AsyncClient(transport=cc.transport, base_url=GATEWAY_URL) as http:
        response = await http.post("/v1/chat/completions", json=chat_body("hi"))
    assert response.status_code == status
    assert gw.faults.pending() == 2


def test_burst_sync_twin(gw: ReferenceGateway) -> None:
    gw.add_fault(Fault(503), path=INVALIDATE_PATH, times=2)
    with SyncCachecoreClient(
        GATEWAY_URL, gw.mint_token("acme"), inner_transport=gw.transport(), retry_policy=FAST
    ) as cc:
        result = cc.invalidate("doc:1")
    assert result.ok
    assert result.attempts == 3


# -- 429 and Retry-After ----------------------------------------------------------------


async def test_retry_after_seconds_is_honoured(gw: ReferenceGateway) -> None:
    gw.add_fault(Fault(429, retry_after="0.15"), path=INVALIDATE_PATH, times=1)
    async with client_for(gw) as cc:
        start = time.monotonic()
        result = await cc.invalidate("doc:1")
        elapsed = time.monotonic() - start
    assert result.ok
    assert result.attempts == 2
    assert 0.15 <= elapsed < 0.15 + SLACK


async def test_retry_after_http_date_is_honoured_and_capped(gw: ReferenceGateway) -> None:
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    gw.add_fault(Fault(429, retry_after=when), path=INVALIDATE_PATH, times=1)
    async with client_for(gw) as cc:
        start = time.monotonic()
        result = await cc.invalidate("doc:1")
        elapsed = time.monotonic() - start
    assert result.ok
    assert result.attempts == 2
    # ~120 s asked, capped at max_retry_after; the plain backoff would be <= 0.01 s.
    assert FAST.max_retry_after <= elapsed < FAST.max_retry_after + SLACK


async def test_absurd_retry_after_is_capped(gw: ReferenceGateway) -> None:
    gw.add_fault(Fault(429, retry_after=10**9), path=INVALIDATE_PATH, times=50)
    async with client_for(gw, max_retries=2) as cc:
        start = time.monotonic()
        result = await cc.invalidate("doc:1")
        elapsed = time.monotonic() - start
    assert_failed(result, attempts=3, cause=CachecoreRateLimitError)
    assert result.exception.retry_after == 10**9  # type: ignore[union-attr]
    assert 2 * FAST.max_retry_after <= elapsed < 2 * FAST.max_retry_after + SLACK
    figure("retry_after_1e9.attempts", result.attempts)
    figure("retry_after_1e9.seconds", round(elapsed, 3))


def test_default_policy_caps_retry_after_at_30_seconds() -> None:
    policy = RetryPolicy()
    huge = CachecoreRateLimitError("429", retry_after=1e9)
    assert policy.delay(huge, 1) == policy.max_retry_after == 30.0
    plain = CachecoreStatusError("503", status_code=503)
    assert all(policy.delay(plain, a) <= policy.max_delay for a in range(1, 4))  # type: ignore[operator]
    assert policy.delay(plain, policy.max_retries + 1) is None
    # Worst case for one dep with the defaults: 3 backoffs (<= 0.25+0.5+1 s) or 3 x 30 s of 429.


@pytest.mark.parametrize("value", ["-5", "nan", "inf", "soon", "Mon, 99 Foo 2024"])
async def test_unusable_retry_after_falls_back_to_backoff(gw: ReferenceGateway, value: str) -> None:
    gw.add_fault(Fault(429, retry_after=value), path=INVALIDATE_PATH, times=1)
    async with client_for(gw) as cc:
        start = time.monotonic()
        result = await cc.invalidate("doc:1")
    assert result.ok
    assert result.attempts == 2
    assert time.monotonic() - start < FAST.max_retry_after + SLACK


# -- malformed answers and a proxy answering HTML --------------------------------------

HTML = b"<html><head><title>502 Bad Gateway</title></head><body><h1>nginx</h1></body></html>"


class HTMLProxy(httpx.AsyncBaseTransport):
    """A proxy in front of the gateway answering ``failures`` HTML pages, then passing through."""

    def __init__(self, gw: ReferenceGateway, status: int, failures: int) -> None:
        self.inner = gw.async_transport()
        self.status = status
        self.failures = failures
        self.seen = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen += 1
        if self.seen <= self.failures:
            return httpx.Response(self.status, headers={"content-type": "text/html"}, content=HTML)
        return await self.inner.handle_async_request(request)


@pytest.mark.parametrize("status", [502, 503])
async def test_proxy_html_error_is_retried_and_reported(gw: ReferenceGateway, status: int) -> None:
    proxy = HTMLProxy(gw, status, failures=100)
    async with client_for(gw, inner_transport=proxy, max_retries=2) as cc:  # type: ignore[arg-type]
        result = await cc.invalidate("doc:1")
    assert_failed(result, attempts=3, cause=CachecoreStatusError)
    assert "nginx" in (result.error or "")
    assert result.status_code == status
    proxy.failures, proxy.seen = 1, 0
    async with client_for(gw, inner_transport=proxy) as cc:  # type: ignore[arg-type]
        assert (await cc.invalidate("doc:1")).ok


async def test_proxy_html_on_proxied_call_passes_through(gw: ReferenceGateway) -> None:
    proxy = HTMLProxy(gw, 200, failures=1)
    cc = client_for(gw, inner_transport=proxy)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=cc.transport, base_url=GATEWAY_URL) as http:
        with cc.request_context(deps=[Dep("doc:1")]) as ctx:
            response = await http.post("/v1/chat/completions", json=chat_body("hi"))
    assert response.status_code == 200
    assert response.content == HTML
    assert ctx.last is not None
    assert ctx.last.status == "UNKNOWN"
    assert proxy.seen == 1


@pytest.mark.parametrize("status", [401, 403, 429])
async def test_proxy_html_gateway_errors_become_typed(gw: ReferenceGateway, status: int) -> None:
    async def html(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "text/html", "retry-after": "<b>later</b>"}
        return httpx.Response(status, headers=headers, content=HTML)

    cc = client_for(gw, inner_transport=httpx.MockTransport(html), gateway_errors="raise")
    async with httpx.AsyncClient(transport=cc.transport, base_url=GATEWAY_URL) as http:
        with pytest.raises((CachecoreAuthError, CachecoreRateLimitError)) as info:
            await http.post("/v1/chat/completions", json=chat_body("hi"))
    assert info.value.status_code == status
    assert "nginx" in info.value.body
    if isinstance(info.value, CachecoreRateLimitError):
        assert info.value.retry_after is None


@pytest.mark.parametrize(
    "body", [b"{not json", b"", b"\xff\xfe\x00", b"[" * 5000, b'{"ok": false}']
)
async def test_malformed_2xx_answer_to_invalidation_is_success(body: bytes) -> None:
    # PROTOCOL.md section 3: any 2xx is success; the body is never parsed.
    async def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    async with CachecoreClient(
        GATEWAY_URL, "tok", inner_transport=httpx.MockTransport(answer)
    ) as cc:
        result = await cc.invalidate("doc:1")
    assert result.ok
    assert result.attempts == 1


async def test_malformed_error_bodies_never_raise() -> None:
    bodies = [b"\xff\xfe not utf-8", b"[" * 5000, b"x" * 100_000, b""]

    async def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, content=bodies[answer.n % len(bodies)])  # type: ignore[attr-defined]

    answer.n = 0  # type: ignore[attr-defined]
    async with CachecoreClient(
        GATEWAY_URL, "tok", inner_transport=httpx.MockTransport(answer), retry_policy=FAST
    ) as cc:
        for i in range(len(bodies)):
            answer.n = i  # type: ignore[attr-defined]
            result = await cc.invalidate("doc:1")
            assert_failed(result, attempts=4, cause=CachecoreStatusError)
            assert len(result.exception.body) <= 500  # type: ignore[union-attr]


# -- no invalidation lost ---------------------------------------------------------------


async def test_no_invalidation_lost_under_mixed_faults(gw: ReferenceGateway) -> None:
    rng = random.Random(6)
    menu = [
        None,
        None,
        Fault(502),
        Fault(503),
        Fault(504),
        Fault(500),
        Fault(429, retry_after=0),
        Fault(401),
        Fault(delay=30),
    ]

    def hook(method: str, path: str) -> Fault | None:
        return rng.choice(menu) if path == INVALIDATE_PATH else None

    gw.faults.hook = hook
    recorder = Recorder(gw.async_transport())
    deps = [f"doc:{i}" for i in range(60)] + ["doc:0", "doc:5"]
    async with client_for(gw, recorder, timeout=0.1, max_retries=3, max_concurrency=8) as cc:
        start = time.monotonic()
        results = await cc.invalidate_many(deps)
        elapsed = time.monotonic() - start
    assert [r.dep_id for r in results] == deps
    sent: dict[str, set[str]] = {}
    for body in recorder.bodies(INVALIDATE_PATH):
        sent.setdefault(body["dep_id"], set()).add(body["new_hash"])
    for r in results:
        assert sent[r.dep_id] == {r.new_hash}  # one version per dep across all its attempts
        assert 1 <= r.attempts <= 4
        if r.ok:
            assert gw.dep_version("acme", r.dep_id) == r.new_hash
        else:
            assert r.error
            assert r.exception is not None
    ok = sum(r.ok for r in results[:60])
    attempts = sum(r.attempts for r in results[:60])
    figure("mixed_faults.deps", 60)
    figure("mixed_faults.ok", ok)
    figure("mixed_faults.attempts", attempts)
    figure("mixed_faults.seconds", round(elapsed, 3))
    # 60 deps, 8 at a time, each at most 4 x 0.1 s timeouts + 3 x 0.05 s waits.
    assert elapsed < (60 / 8 + 1) * (4 * 0.1 + 3 * FAST.max_delay) + SLACK
