"""The transport: which requests get the token and deps, what reaches the SDK."""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import respx

from cachecore import CachecoreClient, Dep, _wire
from cachecore._async._transport import AsyncCachecoreTransport
from cachecore.errors import (
    RESPONSE_ERROR_EXTENSION,
    CachecoreAuthError,
    CachecoreError,
    CachecoreRateLimitError,
    typed_errors,
)

from ._helpers import GATEWAY, TOKEN, Gateway, hit, make_token, reply

pytestmark = pytest.mark.anyio

CHAT = "/v1/chat/completions"
BODY = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
OLD_OPENAI = {_wire.OPENAI_VERSION_HEADER: "2.54.0"}
CONTRACT_DEPS = "W3siZGVwX2lkIjoiZG9jOmNvbnRyYWN0LTEyMyIsImV4cGVjdGVkX2hhc2giOiJ2MSJ9XQ"


def client_for(gateway: Gateway, **kwargs: object) -> CachecoreClient:
    return CachecoreClient(
        gateway_url=GATEWAY,
        tenant_jwt=kwargs.pop("tenant_jwt", TOKEN),  # type: ignore[arg-type]
        inner_transport=gateway.transport(),
        **kwargs,  # type: ignore[arg-type]
    )


def http_for(cc: CachecoreClient, **kwargs: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=cc.transport, base_url=GATEWAY, **kwargs)  # type: ignore[arg-type]


# -- headers on gateway requests -------------------------------------------------


async def test_token_is_added_and_no_deps_outside_a_context() -> None:
    gw = Gateway()
    async with client_for(gw) as cc, http_for(cc) as http:
        response = await http.post(CHAT, json=BODY)
    assert response.status_code == 200
    sent = gw.last.headers
    assert sent[_wire.TOKEN_HEADER] == TOKEN
    assert _wire.DEPS_HEADER not in sent


async def test_deps_header_is_the_protocol_encoding() -> None:
    gw = Gateway()
    async with client_for(gw) as cc, http_for(cc) as http:
        with cc.request_context(deps=[Dep("doc:contract-123")]):
            await http.post(CHAT, json=BODY)
        await http.post(CHAT, json=BODY)
    assert gw.requests[0].headers[_wire.DEPS_HEADER] == CONTRACT_DEPS
    assert gw.requests[0].headers[_wire.TOKEN_HEADER] == TOKEN
    assert _wire.DEPS_HEADER not in gw.requests[1].headers, "deps leaked past the block"


async def test_deps_given_as_strings_and_hashes() -> None:
    gw = Gateway()
    async with client_for(gw) as cc, http_for(cc) as http:
        with cc.request_context(deps=["table:products", Dep("table:prices", hash="2024-03-15")]):
            await http.post(CHAT, json=BODY)
    assert gw.deps_of(gw.last) == [("table:products", "v1"), ("table:prices", "2024-03-15")]


async def test_bypass_omits_the_token_even_one_the_caller_set() -> None:
    gw = Gateway(default=hit("BYPASS"))
    async with client_for(gw) as cc, http_for(cc) as http:
        with cc.request_context(bypass=True) as ctx:
            await http.post(CHAT, json=BODY, headers={_wire.TOKEN_HEADER: TOKEN})
        await http.post(CHAT, json=BODY)
    assert _wire.TOKEN_HEADER not in gw.requests[0].headers
    assert gw.requests[1].headers[_wire.TOKEN_HEADER] == TOKEN
    assert ctx.last is not None
    assert ctx.last.status == "BYPASS"


async def test_bypass_with_deps_still_sends_the_deps() -> None:
    gw = Gateway()
    async with client_for(gw) as cc, http_for(cc) as http:
        with cc.request_context(deps=[Dep("a")], bypass=True):
            await http.post(CHAT, json=BODY)
    assert _wire.TOKEN_HEADER not in gw.last.headers
    assert gw.deps_of(gw.last) == [("a", "v1")]


async def test_a_401_on_a_bypassed_call_points_at_the_authorization_key() -> None:
    gw = Gateway(reply(401, text="bad key"), reply(401, text="bad token"))
    async with client_for(gw, gateway_errors="raise") as cc, http_for(cc) as http:
        with cc.request_context(bypass=True), pytest.raises(CachecoreAuthError) as bypassed:
            await http.post(CHAT, json=BODY)
        with pytest.raises(CachecoreAuthError) as steered:
            await http.post(CHAT, json=BODY)
    assert "Authorization key" in str(bypassed.value)
    assert "not the tenant token" in str(bypassed.value)
    assert "check the tenant token" in str(steered.value)


async def test_rotating_token_is_read_per_request() -> None:
    tokens = iter([make_token("t1"), make_token("t2"), make_token("t3")])
    current = {"token": next(tokens)}
    gw = Gateway()
    async with client_for(gw, tenant_jwt=lambda: current["token"]) as cc, http_for(cc) as http:
        await http.post(CHAT, json=BODY)
        current["token"] = next(tokens)
        await http.post(CHAT, json=BODY)
        assert cc.tenant_id == "t2"
    assert [r.headers[_wire.TOKEN_HEADER] for r in gw.requests] == [
        make_token("t1"),
        make_token("t2"),
    ]


# -- the token stays with the gateway's origin -------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://other.test/v1/chat/completions",
        "https://gw.test/v1/chat/completions",
        "http://gw.test:8080/v1/chat/completions",
        "http://sub.gw.test/v1/chat/completions",
        "http://gw.test.evil.example/v1/chat/completions",
    ],
)
async def test_other_origins_never_get_token_or_deps(url: str) -> None:
    gw = Gateway()
    async with client_for(gw) as cc, httpx.AsyncClient(transport=cc.transport) as http:
        with cc.request_context(deps=[Dep("secret:dep")]):
            await http.post(
                url, json=BODY, headers={_wire.TOKEN_HEADER: TOKEN, _wire.DEPS_HEADER: "x"}
            )
    assert gw.last.url == httpx.URL(url)
    assert _wire.TOKEN_HEADER not in gw.last.headers
    assert _wire.DEPS_HEADER not in gw.last.headers


async def test_explicit_default_port_is_the_same_origin() -> None:
    gw = Gateway()
    async with client_for(gw) as cc, httpx.AsyncClient(transport=cc.transport) as http:
        await http.post("http://gw.test:80/v1/chat/completions", json=BODY)
    assert gw.last.headers[_wire.TOKEN_HEADER] == TOKEN


async def test_redirect_away_from_the_gateway_strips_token_and_deps() -> None:
    gw = Gateway(
        reply(302, headers={"Location": "http://elsewhere.test/landing"}, text=""),
        reply(200, text="ok"),
    )
    async with client_for(gw) as cc, http_for(cc, follow_redirects=True) as http:
        with cc.request_context(deps=[Dep("doc:1")]):
            response = await http.get("/v1/models")
    assert response.status_code == 200
    first, second = gw.requests
    assert first.headers[_wire.TOKEN_HEADER] == TOKEN
    assert second.url.host == "elsewhere.test"
    assert _wire.TOKEN_HEADER not in second.headers
    assert _wire.DEPS_HEADER not in second.headers


async def test_redirect_within_the_gateway_keeps_the_token() -> None:
    gw = Gateway(reply(307, headers={"Location": "/v1/other"}, text=""))
    async with client_for(gw) as cc, http_for(cc, follow_redirects=True) as http:
        await http.get("/v1/models")
    assert [r.url.path for r in gw.requests] == ["/v1/models", "/v1/other"]
    assert gw.requests[1].headers[_wire.TOKEN_HEADER] == TOKEN


async def test_default_inner_transport_sends_over_http() -> None:
    # respx patches httpcore, so this exercises the transport the client builds itself.
    with respx.mock(assert_all_called=True) as router:
        route = router.post(f"{GATEWAY}{CHAT}").respond(200, headers={"X-Cache": "HIT_L2"})
        async with (
            CachecoreClient(gateway_url=GATEWAY, tenant_jwt=TOKEN) as cc,
            http_for(cc) as http,
        ):
            with cc.request_context(deps=["d"]) as ctx:
                await http.post(CHAT, json=BODY)
    sent = route.calls.last.request.headers
    assert sent[_wire.TOKEN_HEADER] == TOKEN
    assert _wire.decode_deps(sent[_wire.DEPS_HEADER]) == [("d", "v1")]
    assert ctx.last is not None
    assert ctx.last.status == "HIT_L2"


async def test_default_inner_transport_passes_gateway_errors_back_to_old_openai() -> None:
    with respx.mock(assert_all_called=True) as router:
        router.post(f"{GATEWAY}{CHAT}").respond(401, json={"error": "expired"})
        async with (
            CachecoreClient(gateway_url=GATEWAY, tenant_jwt=TOKEN) as cc,
            http_for(cc) as http,
        ):
            response = await http.post(CHAT, json=BODY, headers=OLD_OPENAI)
    assert response.status_code == 401
    assert response.json() == {"error": "expired"}
    assert isinstance(response.extensions[RESPONSE_ERROR_EXTENSION], CachecoreAuthError)


# -- streaming -------------------------------------------------------------------


class AsyncChunks(httpx.AsyncByteStream):
    """A response body that counts how much of it has been pulled."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks
        self.pulled = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.pulled += 1
            yield chunk

    async def aclose(self) -> None:
        self.closed = True


async def test_streaming_bodies_pass_through_unbuffered() -> None:
    stream = AsyncChunks(b"data: 1\n\n", b"data: 2\n\n", b"data: [DONE]\n\n")
    sse = {"X-Cache": "MISS", "Content-Type": "text/event-stream"}
    gw = Gateway(default=lambda request: httpx.Response(200, headers=sse, stream=stream))
    async with client_for(gw) as cc:
        request = httpx.Request("POST", f"{GATEWAY}{CHAT}", json=BODY)
        with cc.request_context() as ctx:
            response = await cc.transport.handle_async_request(request)
        assert response.stream is stream, "the body was wrapped or buffered"
        assert stream.pulled == 0
        assert ctx.last is not None
        assert ctx.last.status == "MISS"
        chunks = [chunk async for chunk in response.stream]
    assert chunks == [b"data: 1\n\n", b"data: 2\n\n", b"data: [DONE]\n\n"]


async def test_streamed_response_is_usable_before_the_body_is_read() -> None:
    stream = AsyncChunks(b"a", b"b")
    gw = Gateway(
        default=lambda request: httpx.Response(200, headers={"X-Cache": "MISS"}, stream=stream)
    )
    async with (
        client_for(gw) as cc,
        http_for(cc) as http,
        http.stream("POST", CHAT, json=BODY) as response,
    ):
        assert response.status_code == 200
        assert stream.pulled == 0
    assert stream.closed


# -- gateway errors ----------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_refusals_raise_cachecore_auth_error(status: int) -> None:
    gw = Gateway(
        default=reply(status, json_body={"error": "nope"}, headers={"X-Request-Id": "r-1"})
    )
    async with client_for(gw) as cc, http_for(cc) as http:
        with pytest.raises(CachecoreAuthError) as caught:
            await http.post(CHAT, json=BODY)
    err = caught.value
    assert err.status_code == status
    assert err.request_id == "r-1"
    assert "nope" in err.body
    assert not isinstance(err, httpx.RequestError)
    assert not isinstance(err, httpx.HTTPError)
    assert len(gw.requests) == 1


async def test_rate_limit_carries_retry_after_seconds() -> None:
    gw = Gateway(default=reply(429, headers={"Retry-After": "7"}, json_body={"error": "slow"}))
    async with client_for(gw, max_retries=0) as cc, http_for(cc) as http:
        with pytest.raises(CachecoreRateLimitError) as caught:
            await http.post(CHAT, json=BODY)
    assert caught.value.retry_after == 7.0
    assert caught.value.status_code == 429
    assert not isinstance(caught.value, httpx.RequestError)


async def test_rate_limit_carries_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    gw = Gateway(default=reply(429, headers={"Retry-After": when}, json_body={}))
    async with client_for(gw, max_retries=0) as cc, http_for(cc) as http:
        with pytest.raises(CachecoreRateLimitError) as caught:
            await http.post(CHAT, json=BODY)
    assert caught.value.retry_after is not None
    assert 100 < caught.value.retry_after <= 120


async def test_rate_limit_without_retry_after_is_none() -> None:
    gw = Gateway(default=reply(429, json_body={}))
    async with client_for(gw, max_retries=0) as cc, http_for(cc) as http:
        with pytest.raises(CachecoreRateLimitError) as caught:
            await http.post(CHAT, json=BODY)
    assert caught.value.retry_after is None


@pytest.mark.parametrize("status", [400, 404, 500, 502])
async def test_other_error_statuses_reach_the_sdk_untouched(status: int) -> None:
    gw = Gateway(default=reply(status, json_body={"error": "upstream"}))
    async with client_for(gw) as cc, http_for(cc) as http:
        response = await http.post(CHAT, json=BODY)
    assert response.status_code == status
    assert response.json() == {"error": "upstream"}
    assert RESPONSE_ERROR_EXTENSION not in response.extensions


async def test_error_statuses_from_other_hosts_are_not_ours() -> None:
    gw = Gateway(default=reply(401, json_body={"error": "their auth"}))
    async with client_for(gw) as cc, httpx.AsyncClient(transport=cc.transport) as http:
        response = await http.get("http://other.test/api")
    assert response.status_code == 401
    assert RESPONSE_ERROR_EXTENSION not in response.extensions


async def test_auto_mode_returns_the_answer_to_openai_1_and_2() -> None:
    gw = Gateway(default=reply(401, json_body={"error": "expired"}))
    async with client_for(gw) as cc, http_for(cc) as http:
        response = await http.post(CHAT, json=BODY, headers=OLD_OPENAI)
        assert response.status_code == 401
        assert response.json() == {"error": "expired"}
        attached = response.extensions[RESPONSE_ERROR_EXTENSION]
        assert isinstance(attached, CachecoreAuthError)
        with pytest.raises(CachecoreAuthError) as caught, typed_errors():
            response.raise_for_status()
    assert caught.value is attached
    assert isinstance(caught.value.__cause__, httpx.HTTPStatusError)
    assert len(gw.requests) == 1, "one attempt, no retries"


async def test_auto_mode_rate_limit_for_old_openai_is_found_by_find() -> None:
    gw = Gateway(default=reply(429, headers={"Retry-After": "3"}, json_body={}))
    async with client_for(gw) as cc, http_for(cc) as http:
        response = await http.post(
            CHAT, json=BODY, headers={_wire.OPENAI_VERSION_HEADER: "1.109.1"}
        )
    assert response.status_code == 429
    with pytest.raises(httpx.HTTPStatusError) as caught:
        response.raise_for_status()
    found = CachecoreError.find(caught.value)
    assert isinstance(found, CachecoreRateLimitError)
    assert found.retry_after == 3.0


@pytest.mark.parametrize("version", ["3.57.0", "4.0.0", "not-a-version"])
async def test_auto_mode_raises_for_openai_3_and_unknown_clients(version: str) -> None:
    gw = Gateway(default=reply(403, json_body={}))
    async with client_for(gw) as cc, http_for(cc) as http:
        with pytest.raises(CachecoreAuthError):
            await http.post(CHAT, json=BODY, headers={_wire.OPENAI_VERSION_HEADER: version})


async def test_raise_mode_raises_even_for_old_openai() -> None:
    gw = Gateway(default=reply(401, json_body={}))
    async with client_for(gw, gateway_errors="raise") as cc, http_for(cc) as http:
        with pytest.raises(CachecoreAuthError):
            await http.post(CHAT, json=BODY, headers=OLD_OPENAI)


async def test_return_mode_always_returns() -> None:
    gw = Gateway(default=reply(429, headers={"Retry-After": "1"}, json_body={"e": 1}))
    async with client_for(gw, gateway_errors="return") as cc, http_for(cc) as http:
        response = await http.post(CHAT, json=BODY)
    assert response.status_code == 429
    assert response.json() == {"e": 1}
    assert isinstance(response.extensions[RESPONSE_ERROR_EXTENSION], CachecoreRateLimitError)


async def test_error_from_a_streamed_body_is_read_and_closed() -> None:
    stream = AsyncChunks(b'{"error": ', b'"expired"}')
    gw = Gateway(default=lambda request: httpx.Response(401, stream=stream))
    async with client_for(gw) as cc, http_for(cc) as http:
        with pytest.raises(CachecoreAuthError) as caught:
            await http.post(CHAT, json=BODY)
    assert '"expired"' in caught.value.body
    assert stream.closed


async def test_error_messages_never_show_the_token() -> None:
    echo = f"token {TOKEN} is expired"
    gw = Gateway(default=reply(401, text=echo))
    async with client_for(gw) as cc, http_for(cc) as http:
        with pytest.raises(CachecoreAuthError) as caught:
            await http.post(CHAT, json=BODY)
    err = caught.value
    assert "expired" in str(err)
    for text in (str(err), repr(err), err.body, err.message):
        assert TOKEN not in text
        assert TOKEN.rsplit(".", 1)[-1] not in text


# -- what the handle and the stats record --------------------------------------------


async def test_handle_records_each_status_and_nested_blocks_share_them() -> None:
    gw = Gateway(
        hit("MISS"),
        hit("HIT_L1"),
        reply(headers={"X-Cache": "HIT_L2", "X-Cache-Similarity": "0.93"}),
    )
    async with client_for(gw) as cc, http_for(cc) as http:
        with cc.request_context(deps=["a"]) as outer:
            assert outer.last is None
            await http.post(CHAT, json=BODY)
            with cc.request_context(deps=["b"]) as inner:
                await http.post(CHAT, json=BODY)
                await http.post(CHAT, json=BODY)
    assert [s.status for s in outer.statuses] == ["MISS", "HIT_L1", "HIT_L2"]
    assert [s.status for s in inner.statuses] == ["HIT_L1", "HIT_L2"]
    assert inner.last is not None
    assert inner.last.similarity == pytest.approx(0.93)
    assert (outer.hits, outer.misses, len(outer)) == (2, 1, 3)


async def test_stats_count_statuses_when_enabled() -> None:
    statuses = ["HIT_L1", "HIT_L1_STALE", "HIT_L2", "MISS", "MISS", "BYPASS", "WEIRD"]
    gw = Gateway(*[hit(s) for s in statuses])
    async with client_for(gw, collect_stats=True) as cc, http_for(cc) as http:
        for _ in statuses:
            await http.post(CHAT, json=BODY)
        stats = cc.stats
    assert (stats.requests, stats.hits_l1, stats.hits_l1_stale, stats.hits_l2) == (7, 1, 1, 1)
    assert (stats.misses, stats.bypasses, stats.unknown) == (2, 1, 1)
    assert stats.hits == 3
    assert stats.hit_rate == pytest.approx(3 / 5)


async def test_stats_off_says_how_to_turn_them_on() -> None:
    async with client_for(Gateway()) as cc:
        with pytest.raises(CachecoreError, match="collect_stats=True"):
            _ = cc.stats


async def test_deps_header_is_encoded_once_per_context(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = _wire.encode_deps

    def counting(deps: object) -> str:
        calls.append(1)
        return real(deps)  # type: ignore[arg-type]

    monkeypatch.setattr(_wire, "encode_deps", counting)
    gw = Gateway()
    async with client_for(gw) as cc, http_for(cc) as http:
        with cc.request_context(deps=["a", "b"]):
            for _ in range(5):
                await http.post(CHAT, json=BODY)
    assert len(calls) == 1
    assert len({r.headers[_wire.DEPS_HEADER] for r in gw.requests}) == 1


async def test_oversized_deps_fail_before_anything_is_sent() -> None:
    gw = Gateway()
    deps = [Dep(f"table:products:row:{i:06d}") for i in range(400)]
    async with client_for(gw) as cc, http_for(cc) as http:
        context = cc.request_context(deps=deps)
        with pytest.raises(CachecoreError, match="8192-byte limit"):
            context.__enter__()
        await http.post(CHAT, json=BODY)
    assert len(gw.requests) == 1
    assert _wire.DEPS_HEADER not in gw.last.headers, "the failed block stayed active"


async def test_nested_blocks_are_checked_against_the_limit_together() -> None:
    gw = Gateway()
    half = [Dep(f"table:products:row:{i:06d}") for i in range(60)]
    other = [Dep(f"table:prices:row:{i:06d}") for i in range(60)]
    async with client_for(gw) as cc, http_for(cc) as http:
        with cc.request_context(deps=half):
            await http.post(CHAT, json=BODY)
            inner = cc.request_context(deps=other)
            with pytest.raises(CachecoreError, match="declare fewer or coarser"):
                inner.__enter__()
            await http.post(CHAT, json=BODY)
    assert [len(gw.deps_of(r) or []) for r in gw.requests] == [60, 60]


async def test_debug_logs_status_lines_without_the_token(caplog: pytest.LogCaptureFixture) -> None:
    gw = Gateway(
        reply(headers={"X-Cache": "HIT_L1", "X-Cache-Age": "12", "X-Request-Id": "req_42"}),
        reply(401, text=TOKEN),
    )
    caplog.set_level(logging.DEBUG, logger="cachecore")
    async with client_for(gw, debug=True) as cc, http_for(cc) as http:
        with cc.request_context(deps=[Dep("doc:1"), Dep("table:t")]) as ctx:
            await http.post(CHAT, json=BODY)
        with pytest.raises(CachecoreAuthError):
            await http.post(CHAT, json=BODY)
    assert ctx.last is not None
    assert ctx.last.request_id == "req_42"
    lines = [r.getMessage() for r in caplog.records if r.name == "cachecore"]
    assert any(
        "HIT_L1" in line and "age=12" in line and "request_id=req_42" in line
        and "deps=doc:1,table:t" in line
        for line in lines
    )  # fmt: skip
    assert any("401" in line for line in lines)
    assert all(TOKEN not in line for line in caplog.text.splitlines())


async def test_transport_repr_hides_the_token() -> None:
    async with client_for(Gateway()) as cc:
        for text in (repr(cc.transport), str(cc.transport), repr(cc), str(cc)):
            assert TOKEN not in text
        assert "gw.test" in repr(cc.transport)


# -- lifecycle -----------------------------------------------------------------------


class AsyncTrackedTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        self.closed = True


async def test_a_callers_inner_transport_is_left_open() -> None:
    gw = Gateway()
    inner = AsyncTrackedTransport(gw.transport())
    cc = CachecoreClient(gateway_url=GATEWAY, tenant_jwt=TOKEN, inner_transport=inner)
    async with http_for(cc) as http:
        await http.post(CHAT, json=BODY)
    result = await cc.invalidate("a", new_hash="v2")
    await cc.aclose()
    assert result.ok
    assert len(gw.requests) == 2
    assert not inner.closed


async def test_standalone_transport_wraps_inner() -> None:
    gw = Gateway()
    transport = AsyncCachecoreTransport(
        gateway_url=GATEWAY, tenant_jwt=TOKEN, inner_transport=gw.transport()
    )
    async with httpx.AsyncClient(transport=transport) as http:
        await http.get("http://gw.test/v1/models")
        await http.get("http://other.test/")
    assert [_wire.TOKEN_HEADER in r.headers for r in gw.requests] == [True, False]


# -- look-alike hosts ----------------------------------------------------------------


async def test_a_loopback_alias_of_the_gateway_is_the_gateway() -> None:
    gw = Gateway(default=hit("HIT_L1"))
    cc = CachecoreClient("http://127.0.0.1:8080", TOKEN, inner_transport=gw.transport())
    async with cc, http_for(cc) as http:
        with cc.request_context(deps=[Dep("doc:1")]) as ctx:
            await http.post("http://localhost:8080/v1/chat/completions", json=BODY)
            await http.post("http://[::1]:8080/v1/chat/completions", json=BODY)
        await http.post("http://localhost:9999/v1/chat/completions", json=BODY)  # other port
    assert [r.headers.get(_wire.TOKEN_HEADER) for r in gw.requests] == [TOKEN, TOKEN, None]
    assert ctx.last is not None
    assert [s.status for s in ctx.statuses] == ["HIT_L1", "HIT_L1"]


async def test_an_llm_call_around_the_gateway_is_logged_once_per_host(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gw = Gateway()
    caplog.set_level(logging.WARNING, logger="cachecore")
    async with client_for(gw) as cc, http_for(cc) as http:
        for _ in range(3):
            await http.post("https://api.example.com/v1/chat/completions", json=BODY)
        await http.get("https://api.example.com/status")  # not an LLM call: no warning
        await http.get("https://cdn.example.com/logo.png")
    lines = [r.getMessage() for r in caplog.records if r.name == "cachecore"]
    assert len(lines) == 1, lines
    assert "https://api.example.com/v1/chat/completions goes around the cache" in lines[0]
    assert GATEWAY in lines[0]
    assert TOKEN not in caplog.text
    assert all(_wire.TOKEN_HEADER not in r.headers for r in gw.requests)
