"""The real OpenAI SDK through the transport (openai 3.x here; nox re-runs on 1.x/2.x)."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from cachecore import CachecoreClient, CacheStatus, Dep, _wire
from cachecore.errors import (
    CachecoreAuthError,
    CachecoreError,
    CachecoreRateLimitError,
    typed_errors,
)

from ._helpers import GATEWAY, TOKEN, Gateway, chat_completion, hit, reply

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

OPENAI_MAJOR = int(openai.__version__.split(".")[0])
MESSAGES = [{"role": "user", "content": "Summarise contract #123"}]


def sdk_for(cc: CachecoreClient, **kwargs: object) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"{GATEWAY}/v1",
        api_key=TOKEN,
        http_client=httpx.AsyncClient(transport=cc.transport),
        **kwargs,  # type: ignore[arg-type]
    )


async def test_chat_completion_carries_token_and_deps() -> None:
    gw = Gateway(hit("MISS"), hit("HIT_L1"))
    async with CachecoreClient(
        GATEWAY, TOKEN, inner_transport=gw.transport(), collect_stats=True
    ) as cc:
        async with sdk_for(cc) as sdk:
            with cc.request_context(deps=[Dep("doc:contract-123")]) as ctx:
                first = await sdk.chat.completions.create(model="gpt-test", messages=MESSAGES)  # type: ignore[arg-type]
                await sdk.chat.completions.create(model="gpt-test", messages=MESSAGES)  # type: ignore[arg-type]
        stats = cc.stats
    assert first.choices[0].message.content == "hello"
    sent = gw.requests[0]
    assert sent.url.path == "/v1/chat/completions"
    assert sent.headers[_wire.TOKEN_HEADER] == TOKEN
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert _wire.decode_deps(sent.headers[_wire.DEPS_HEADER]) == [("doc:contract-123", "v1")]
    assert json.loads(sent.content)["messages"] == MESSAGES
    assert [s.status for s in ctx.statuses] == ["MISS", "HIT_L1"]
    assert (stats.misses, stats.hits_l1, stats.requests) == (1, 1, 2)


async def test_bypass_through_the_sdk() -> None:
    gw = Gateway(default=hit("BYPASS"))
    async with (
        CachecoreClient(GATEWAY, TOKEN, inner_transport=gw.transport()) as cc,
        sdk_for(cc) as sdk,
    ):
        with cc.request_context(bypass=True) as ctx:
            await sdk.chat.completions.create(model="gpt-test", messages=MESSAGES)  # type: ignore[arg-type]
    assert _wire.TOKEN_HEADER not in gw.last.headers
    assert ctx.last is not None
    assert ctx.last.status == "BYPASS"


async def test_raw_response_headers_parse_into_a_cache_status() -> None:
    headers = {"X-Cache": "HIT_L2", "X-Cache-Similarity": "0.91", "X-Cache-Age": "42"}
    gw = Gateway(default=reply(headers=headers))
    async with (
        CachecoreClient(GATEWAY, TOKEN, inner_transport=gw.transport()) as cc,
        sdk_for(cc) as sdk,
    ):
        raw = await sdk.chat.completions.with_raw_response.create(
            model="gpt-test", messages=MESSAGES
        )  # type: ignore[arg-type]
    for source in (raw, raw.headers):
        status = CacheStatus.from_headers(source)
        assert (status.status, status.age_seconds) == ("HIT_L2", 42)
        assert status.similarity == pytest.approx(0.91)


async def test_streaming_through_the_sdk() -> None:
    def sse(request: httpx.Request) -> httpx.Response:
        chunk = chat_completion("hel")
        chunk["object"] = "chat.completion.chunk"
        chunk["choices"] = [{"index": 0, "delta": {"content": "hel"}, "finish_reason": None}]
        tail = dict(
            chunk, choices=[{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]
        )
        body = "".join(f"data: {json.dumps(c)}\n\n" for c in (chunk, tail)) + "data: [DONE]\n\n"
        return httpx.Response(
            200, headers={"X-Cache": "MISS", "Content-Type": "text/event-stream"}, text=body
        )

    gw = Gateway(default=sse)
    async with (
        CachecoreClient(GATEWAY, TOKEN, inner_transport=gw.transport()) as cc,
        sdk_for(cc) as sdk,
    ):
        with cc.request_context(deps=["doc:1"]) as ctx:
            stream = await sdk.chat.completions.create(
                model="gpt-test", messages=MESSAGES, stream=True
            )  # type: ignore[arg-type]
            parts = [c.choices[0].delta.content async for c in stream]
    assert "".join(p or "" for p in parts) == "hello"
    assert ctx.last is not None
    assert ctx.last.status == "MISS"
    assert _wire.decode_deps(gw.last.headers[_wire.DEPS_HEADER]) == [("doc:1", "v1")]


async def test_a_401_reaches_the_caller_once_on_every_openai_major() -> None:
    """openai 3.x lets ``except CachecoreAuthError`` catch it directly; 1.x/2.x raise their
    own ``AuthenticationError`` (after one attempt) with ours behind it."""
    gw = Gateway(default=reply(401, json_body={"error": {"message": "expired"}}))
    async with (
        CachecoreClient(GATEWAY, TOKEN, inner_transport=gw.transport()) as cc,
        sdk_for(cc) as sdk,
    ):
        try:
            await sdk.chat.completions.create(model="gpt-test", messages=MESSAGES)  # type: ignore[arg-type]
        except Exception as exc:
            caught: BaseException | None = exc
        else:
            caught = None
    if OPENAI_MAJOR >= 3:
        assert isinstance(caught, CachecoreAuthError)
    else:
        assert isinstance(caught, openai.AuthenticationError)
    found = CachecoreError.find(caught)
    assert isinstance(found, CachecoreAuthError)
    assert found.status_code == 401
    assert len(gw.requests) == 1, "no SDK retries of a refused token"


async def test_typed_errors_give_the_auth_error_on_every_openai_major() -> None:
    gw = Gateway(default=reply(401, json_body={"error": {"message": "expired"}}))
    async with (
        CachecoreClient(GATEWAY, TOKEN, inner_transport=gw.transport()) as cc,
        sdk_for(cc) as sdk,
    ):
        with pytest.raises(CachecoreAuthError) as caught, typed_errors():
            await sdk.chat.completions.create(model="gpt-test", messages=MESSAGES)  # type: ignore[arg-type]
    assert caught.value.status_code == 401
    assert TOKEN not in str(caught.value)
    assert len(gw.requests) == 1, "a 401 is never retried"
    if OPENAI_MAJOR < 3:
        assert isinstance(caught.value.__cause__, openai.AuthenticationError)


async def test_typed_errors_give_the_rate_limit_error_on_every_openai_major() -> None:
    gw = Gateway(
        default=reply(429, headers={"Retry-After": "5"}, json_body={"error": {"message": "slow"}})
    )
    async with (
        CachecoreClient(GATEWAY, TOKEN, inner_transport=gw.transport(), max_retries=0) as cc,
        sdk_for(cc, max_retries=0) as sdk,
    ):
        with pytest.raises(CachecoreRateLimitError) as caught, typed_errors():
            await sdk.chat.completions.create(model="gpt-test", messages=MESSAGES)  # type: ignore[arg-type]
    assert caught.value.retry_after == 5.0
    assert len(gw.requests) == 1
