"""Per-tenant rate limiting and injected faults (the SDK's retry tests use both)."""

from __future__ import annotations

import time

import httpx
import pytest
from gateway_helpers import FakeClock, chat, error_of, make_gateway

from cachecore._wire import (
    HEALTH_PATH,
    INVALIDATE_PATH,
    RETRY_AFTER_HEADER,
    TOKEN_HEADER,
    parse_retry_after,
)
from cachecore.testing import IN_PROCESS_URL, Fault, ReferenceGateway


def test_rate_limit_429_with_retry_after(clock: FakeClock) -> None:
    gw = make_gateway(rate_limit=2, clock=clock)
    a, b = gw.mint_token("a"), gw.mint_token("b")
    with httpx.Client(transport=gw.transport(), base_url=IN_PROCESS_URL) as client:
        allowed = [chat(client, a, f"q{i}").status_code for i in range(2)]
        limited = chat(client, a, "q3")
        other_tenant = chat(client, b, "q3")
        clock.now += 0.5  # one token back at 2/s
        refilled = chat(client, a, "q4")
    assert allowed == [200, 200]
    assert limited.status_code == 429
    assert error_of(limited)["type"] == "rate_limit_error"
    assert limited.headers[RETRY_AFTER_HEADER] == "1"
    assert parse_retry_after(limited.headers[RETRY_AFTER_HEADER]) == 1.0
    assert other_tenant.status_code == 200
    assert refilled.status_code == 200
    assert gw.stats().rate_limited == 1


def test_rate_limit_off_by_default(http: httpx.Client, gw: ReferenceGateway) -> None:
    token = gw.mint_token("t")
    assert {chat(http, token, "q").status_code for _ in range(50)} == {200}


def test_fault_burst_then_normal(http: httpx.Client, gw: ReferenceGateway) -> None:
    token = gw.mint_token("t")
    gw.add_fault(Fault(503), path="/v1/chat/completions", times=2)
    gw.add_fault(Fault(502))
    health = http.get(HEALTH_PATH)  # takes the any-path 502, not the chat faults
    statuses = [chat(http, token, "q").status_code for _ in range(3)]
    assert health.status_code == 502
    assert statuses == [503, 503, 200]
    assert gw.faults.pending() == 0
    assert error_of(health)["code"] == "injected_fault"


def test_fault_429_with_retry_after(http: httpx.Client, gw: ReferenceGateway) -> None:
    gw.add_fault(Fault(429, retry_after=7))
    response = chat(http, gw.mint_token("t"), "q")
    assert response.status_code == 429
    assert response.headers[RETRY_AFTER_HEADER] == "7"


def test_fault_hook(http: httpx.Client, gw: ReferenceGateway) -> None:
    gw.faults.hook = lambda method, path: Fault(504) if path == INVALIDATE_PATH else None
    token = gw.mint_token("t")
    inv = http.post(
        INVALIDATE_PATH, json={"dep_id": "d", "new_hash": "h"}, headers={TOKEN_HEADER: token}
    )
    assert inv.status_code == 504
    assert chat(http, token, "q").status_code == 200


def test_slow_answer_then_timeout(http: httpx.Client, gw: ReferenceGateway) -> None:
    token = gw.mint_token("t")
    gw.add_fault(Fault(delay=0.05))
    started = time.monotonic()
    slow = chat(http, token, "q")
    assert slow.status_code == 200
    assert time.monotonic() - started >= 0.05
    gw.add_fault(Fault(delay=5.0))
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        http.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "q"}]},
            headers={TOKEN_HEADER: token},
            timeout=0.05,
        )
    assert time.monotonic() - started < 2.0


@pytest.mark.anyio
async def test_async_timeout_and_fault(gw: ReferenceGateway) -> None:
    gw.add_fault(Fault(503, delay=0.01))
    gw.add_fault(Fault(delay=5.0))
    async with httpx.AsyncClient(transport=gw.async_transport(), base_url=IN_PROCESS_URL) as c:
        first = await c.get(HEALTH_PATH)
        with pytest.raises(httpx.ReadTimeout):
            await c.get(HEALTH_PATH, timeout=0.05)
        third = await c.get(HEALTH_PATH)
    assert (first.status_code, third.status_code) == (503, 200)


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="status"):
        Fault(42)
    with pytest.raises(ValueError, match="delay"):
        Fault(delay=-1)
