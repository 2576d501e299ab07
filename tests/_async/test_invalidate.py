"""``invalidate`` and ``invalidate_many``: auth, idempotent retries, results, order."""

from __future__ import annotations

import email.utils
import logging
import threading
import time
import uuid

import httpx
import pytest
import respx

from cachecore import CachecoreClient, InvalidateResult, _wire
from cachecore._async import _client as client_module
from cachecore._concurrency import async_sleep
from cachecore.errors import (
    CachecoreAuthError,
    CachecoreClosedError,
    CachecoreConfigError,
    CachecoreConnectionError,
    CachecoreRateLimitError,
    CachecoreStatusError,
    CachecoreTimeoutError,
)

from ._helpers import GATEWAY, TOKEN, Gateway, make_token, reply

pytestmark = pytest.mark.anyio

OK = reply(200, json_body={"ok": True})


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the retry backoff instead of waiting it out."""
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(client_module, "async_sleep", fake_sleep)
    return slept


def client_for(gateway: Gateway, **kwargs: object) -> CachecoreClient:
    return CachecoreClient(
        gateway_url=kwargs.pop("gateway_url", GATEWAY),  # type: ignore[arg-type]
        tenant_jwt=kwargs.pop("tenant_jwt", TOKEN),  # type: ignore[arg-type]
        inner_transport=gateway.transport(),
        **kwargs,  # type: ignore[arg-type]
    )


async def test_invalidate_posts_the_body_with_the_tenant_token() -> None:
    gw = Gateway(default=OK)
    async with client_for(gw) as cc:
        result = await cc.invalidate("doc:contract-123", new_hash="v2")
    assert isinstance(result, InvalidateResult)
    assert (result.ok, result.dep_id, result.new_hash, result.status_code) == (
        True,
        "doc:contract-123",
        "v2",
        200,
    )
    request = gw.last
    assert request.method == "POST"
    assert request.url == httpx.URL(f"{GATEWAY}/v1/invalidate")
    assert gw.bodies() == [{"dep_id": "doc:contract-123", "new_hash": "v2"}]
    assert request.headers[_wire.TOKEN_HEADER] == TOKEN
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    "base",
    ["http://gw.test/v1", "http://gw.test/", "http://gw.test/prefix", "http://gw.test/prefix/v1/"],
)
async def test_invalidate_url_follows_the_gateway_base(base: str) -> None:
    gw = Gateway(default=OK)
    async with client_for(gw, gateway_url=base) as cc:
        assert (await cc.invalidate("a", new_hash="b")).ok
    prefix = "/prefix" if "prefix" in base else ""
    assert gw.last.url.path == f"{prefix}/v1/invalidate"


async def test_invalidate_is_not_affected_by_the_request_context() -> None:
    gw = Gateway(default=OK)
    async with client_for(gw) as cc:
        with cc.request_context(deps=["x"], bypass=True):
            await cc.invalidate("a", new_hash="b")
    assert gw.last.headers[_wire.TOKEN_HEADER] == TOKEN
    assert _wire.DEPS_HEADER not in gw.last.headers


async def test_rotating_token_is_read_for_each_invalidation() -> None:
    current = {"token": make_token("t1")}
    gw = Gateway(default=OK)
    async with client_for(gw, tenant_jwt=lambda: current["token"]) as cc:
        await cc.invalidate("a", new_hash="1")
        current["token"] = make_token("t2")
        await cc.invalidate("a", new_hash="2")
    assert [r.headers[_wire.TOKEN_HEADER] for r in gw.requests] == [
        make_token("t1"),
        make_token("t2"),
    ]


async def test_generated_hash_is_a_uuid_made_once_before_retries(sleeps: list[float]) -> None:
    gw = Gateway(reply(503, text="busy"), httpx.ConnectError("refused"), default=OK)
    async with client_for(gw) as cc:
        result = await cc.invalidate("doc:1")
    assert result.ok
    assert result.attempts == 3
    hashes = {body["new_hash"] for body in gw.bodies()}
    assert len(hashes) == 1, "a retry must resend the same version"
    assert hashes == {result.new_hash}
    assert uuid.UUID(hex=result.new_hash).hex == result.new_hash
    assert len(sleeps) == 2


async def test_each_call_without_hash_gets_a_fresh_version() -> None:
    gw = Gateway(default=OK)
    async with client_for(gw) as cc:
        first = await cc.invalidate("a")
        second = await cc.invalidate("a")
    assert first.new_hash != second.new_hash


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("eof"),
        reply(502, text="bad gateway"),
        reply(503, text="unavailable"),
        reply(504, text="timeout"),
        reply(429, text="slow down"),
    ],
)
async def test_transient_failures_are_retried(failure: object, sleeps: list[float]) -> None:
    gw = Gateway(failure, failure, default=OK)  # type: ignore[arg-type]
    async with client_for(gw) as cc:
        result = await cc.invalidate("a", new_hash="b")
    assert result.ok
    assert result.attempts == 3
    assert len(gw.requests) == 3
    assert len(sleeps) == 2
    assert all(0 < s <= 8.0 for s in sleeps)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 500, 501])
async def test_other_answers_are_not_retried(status: int, sleeps: list[float]) -> None:
    gw = Gateway(default=reply(status, text="no"))
    async with client_for(gw) as cc:
        result = await cc.invalidate("a", new_hash="b")
    assert not result.ok
    assert result.status_code == status
    assert result.attempts == 1
    assert len(gw.requests) == 1
    assert sleeps == []


async def test_backoff_grows_with_jitter(sleeps: list[float]) -> None:
    gw = Gateway(default=reply(503, text="busy"))
    async with client_for(gw, max_retries=4) as cc:
        result = await cc.invalidate("a", new_hash="b")
    assert not result.ok
    assert result.attempts == 5
    assert len(sleeps) == 4
    for attempt, slept in enumerate(sleeps, start=1):
        ceiling = min(8.0, 0.25 * 2 ** (attempt - 1))
        assert ceiling / 2 <= slept <= ceiling


async def test_retry_after_is_honoured_in_seconds_and_dates(sleeps: list[float]) -> None:
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    gw = Gateway(
        reply(429, headers={"Retry-After": "2"}, text=""),
        reply(429, headers={"Retry-After": when}, text=""),
        default=OK,
    )
    async with client_for(gw) as cc:
        result = await cc.invalidate("a", new_hash="b")
    assert result.ok
    assert sleeps[0] == 2.0
    assert 15 < sleeps[1] <= 20


async def test_retry_after_is_capped(sleeps: list[float]) -> None:
    gw = Gateway(reply(429, headers={"Retry-After": "86400"}, text=""), default=OK)
    async with client_for(gw) as cc:
        assert (await cc.invalidate("a", new_hash="b")).ok
    assert sleeps == [30.0]


async def test_max_retries_zero_makes_one_attempt(sleeps: list[float]) -> None:
    gw = Gateway(default=reply(503, text="busy"))
    async with client_for(gw, max_retries=0) as cc:
        result = await cc.invalidate("a", new_hash="b")
    assert (result.ok, result.attempts, len(gw.requests), sleeps) == (False, 1, 1, [])


async def test_final_failure_is_reported_and_logged(
    sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="cachecore")
    gw = Gateway(default=httpx.ConnectError(f"refused while sending {TOKEN}"))
    async with client_for(gw, max_retries=2) as cc:
        result = await cc.invalidate("doc:9", new_hash="b")
    assert not result.ok
    assert result.attempts == 3
    assert result.status_code is None
    assert isinstance(result.exception, CachecoreConnectionError)
    assert isinstance(result.exception.__cause__, httpx.ConnectError)
    assert result.error is not None
    assert "could not reach the gateway" in result.error
    with pytest.raises(CachecoreConnectionError):
        result.raise_for_error()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "cachecore"]
    assert len(warnings) == 1
    assert warnings[0].getMessage().count("doc:9") == 1  # named once, however long
    assert "3 attempt" in warnings[0].getMessage()
    for text in (caplog.text, result.error, repr(result), str(result.exception)):
        assert TOKEN not in text


async def test_timeouts_become_timeout_errors(sleeps: list[float]) -> None:
    gw = Gateway(default=httpx.ReadTimeout("slow"))
    async with client_for(gw, max_retries=1) as cc:
        result = await cc.invalidate("a", new_hash="b")
    assert isinstance(result.exception, CachecoreTimeoutError)
    assert "timeout=" in (result.error or "")


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, CachecoreAuthError),
        (403, CachecoreAuthError),
        (429, CachecoreRateLimitError),
        (500, CachecoreStatusError),
    ],
)
async def test_gateway_answers_never_raise(status: int, kind: type, sleeps: list[float]) -> None:
    gw = Gateway(
        default=reply(status, json_body={"detail": f"echo {TOKEN}"}, headers={"X-Request-Id": "rq"})
    )
    async with client_for(gw, max_retries=1) as cc:
        result = await cc.invalidate("a", new_hash="b")
    assert not result.ok
    assert result.status_code == status
    assert isinstance(result.exception, kind)
    assert result.exception.request_id == "rq"  # type: ignore[union-attr]
    assert TOKEN not in (result.error or "")
    assert "[REDACTED]" in (result.error or "")


async def test_non_json_success_answer_counts() -> None:
    gw = Gateway(default=reply(204, text=""))
    async with client_for(gw) as cc:
        result = await cc.invalidate("a", new_hash="b")
    assert result.ok
    assert result.status_code == 204


@pytest.mark.parametrize("dep_id", ["", "bad\nid", 42, None])
async def test_bad_dep_ids_fail_before_sending(dep_id: object) -> None:
    gw = Gateway(default=OK)
    async with client_for(gw) as cc:
        with pytest.raises(CachecoreConfigError, match="dep_id"):
            await cc.invalidate(dep_id)  # type: ignore[arg-type]
        with pytest.raises(CachecoreConfigError, match="new_hash"):
            await cc.invalidate("ok", new_hash="")
    assert gw.requests == []


# -- invalidate_many ---------------------------------------------------------------


async def test_many_returns_one_result_per_dep_in_input_order() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        dep_id = request.read().decode()
        return httpx.Response(500 if "bad" in dep_id else 200, text="")

    gw = Gateway(default=answer)
    ids = ["table:products", "bad:one", "table:prices", "table:products", "z"]
    async with client_for(gw, max_retries=0) as cc:
        results = await cc.invalidate_many(ids, new_hash="2024-03-15")
    assert [r.dep_id for r in results] == ids
    assert [r.ok for r in results] == [True, False, True, True, True]
    assert {r.new_hash for r in results} == {"2024-03-15"}
    assert sorted(b["dep_id"] for b in gw.bodies()) == sorted(set(ids))


async def test_many_without_hash_gives_each_dep_its_own_version() -> None:
    gw = Gateway(default=OK)
    async with client_for(gw) as cc:
        results = await cc.invalidate_many(["a", "b", "c"])
    assert len({r.new_hash for r in results}) == 3
    assert {b["dep_id"]: b["new_hash"] for b in gw.bodies()} == {
        r.dep_id: r.new_hash for r in results
    }


async def test_many_empty_sends_nothing() -> None:
    gw = Gateway(default=OK)
    async with client_for(gw) as cc:
        assert await cc.invalidate_many([]) == []
    assert gw.requests == []


async def test_many_respects_max_concurrency() -> None:
    lock = threading.Lock()
    state = {"in_flight": 0, "peak": 0}

    async def answer(request: httpx.Request) -> httpx.Response:
        with lock:
            state["in_flight"] += 1
            state["peak"] = max(state["peak"], state["in_flight"])
        await async_sleep(0.03)
        with lock:
            state["in_flight"] -= 1
        return httpx.Response(200)

    cc = CachecoreClient(
        gateway_url=GATEWAY,
        tenant_jwt=TOKEN,
        max_concurrency=3,
        inner_transport=httpx.MockTransport(answer),
    )
    async with cc:
        results = await cc.invalidate_many([f"d{i}" for i in range(9)], new_hash="h")
    assert all(r.ok for r in results)
    assert state["peak"] == 3


@pytest.mark.parametrize(
    ("dep_ids", "message"),
    [
        ("table:products", "dep_ids must be a list"),
        (b"table", "dep_ids must be a list"),
        (None, "dep_ids must be a list"),
        (["ok", ""], r"dep_ids\[1\] must not be empty"),
        (["ok", 3], r"dep_ids\[1\] must be a string"),
        (["a\x00b"], "control character"),
    ],
)
async def test_many_rejects_bad_input_before_sending(dep_ids: object, message: str) -> None:
    gw = Gateway(default=OK)
    async with client_for(gw) as cc:
        with pytest.raises(CachecoreConfigError, match=message):
            await cc.invalidate_many(dep_ids)  # type: ignore[arg-type]
    assert gw.requests == []


async def test_timeout_reaches_the_request() -> None:
    gw = Gateway(default=OK)
    async with client_for(gw, timeout=3.5) as cc:
        await cc.invalidate("a", new_hash="b")
    assert gw.last.extensions["timeout"] == {"connect": 3.5, "read": 3.5, "write": 3.5, "pool": 3.5}


async def test_default_transport_invalidates_over_http(sleeps: list[float]) -> None:
    # respx patches httpcore: this runs the HTTP transport the client builds itself.
    with respx.mock(assert_all_called=True) as router:
        route = router.post(f"{GATEWAY}/v1/invalidate")
        route.side_effect = [httpx.ConnectError("refused"), httpx.Response(200, json={})]
        async with CachecoreClient(GATEWAY, TOKEN) as cc:
            result = await cc.invalidate("doc:1", new_hash="v2")
    assert (result.ok, result.attempts) == (True, 2)
    assert route.call_count == 2
    assert route.calls.last.request.headers["Authorization"] == f"Bearer {TOKEN}"


async def test_a_broken_token_callable_raises_the_same_error_in_both_twins() -> None:
    tokens = iter([TOKEN, ""])  # good at construction, empty afterwards
    gw = Gateway(default=OK)
    async with client_for(gw, tenant_jwt=lambda: next(tokens, "")) as cc:
        with pytest.raises(CachecoreConfigError, match="callable's result is empty"):
            await cc.invalidate_many(["a", "b", "c"], new_hash="h")
    assert gw.requests == []


async def test_a_closed_client_raises_instead_of_reporting_a_failure() -> None:
    gw = Gateway(default=OK)
    cc = client_for(gw)
    await cc.aclose()
    with pytest.raises(CachecoreClosedError, match="is closed"):
        await cc.invalidate("doc:1")
    with pytest.raises(CachecoreClosedError, match="is closed"):
        await cc.invalidate_many(["doc:1", "doc:2"])
    assert isinstance(CachecoreClosedError("x"), RuntimeError), "still a RuntimeError, as before"
    assert gw.requests == []


async def test_a_bug_propagates_instead_of_becoming_ok_false(sleeps: list[float]) -> None:
    # Only transport errors (the network failing) are retried and reported on the
    # result; anything else is a bug somewhere and must surface.
    gw = Gateway(ValueError("a bug in a custom transport"), default=OK)
    async with client_for(gw) as cc:
        with pytest.raises(ValueError, match="a bug in a custom transport"):
            await cc.invalidate("doc:1", new_hash="v2")
    assert len(gw.requests) == 1
    assert sleeps == []


async def test_an_os_error_counts_as_the_network_failing(sleeps: list[float]) -> None:
    gw = Gateway(ConnectionResetError("reset by peer"), default=OK)
    async with client_for(gw) as cc:
        result = await cc.invalidate("doc:1", new_hash="v2")
    assert (result.ok, result.attempts) == (True, 2)
