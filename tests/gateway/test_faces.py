"""The same core behind three faces: sync transport, async transport, uvicorn on loopback.

Also the real ``openai`` SDK parsing the gateway's answers, streamed and not.
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from gateway_helpers import body, make_gateway

from cachecore._wire import (
    CACHE_HEADER,
    CHAT_COMPLETIONS_PATH,
    HEALTH_PATH,
    REQUEST_ID_HEADER,
    TOKEN_HEADER,
)
from cachecore.testing import IN_PROCESS_URL, ReferenceGateway, serve

VOLATILE = {REQUEST_ID_HEADER.lower(), "date", "server", "content-length", "transfer-encoding"}


def _script(token: str) -> list[tuple[str, str, dict[str, Any] | None, dict[str, str]]]:
    auth = {TOKEN_HEADER: token}
    return [
        ("GET", HEALTH_PATH, None, {}),
        ("POST", CHAT_COMPLETIONS_PATH, body("What is the capital of France?"), auth),
        ("POST", CHAT_COMPLETIONS_PATH, body("What is the capital of France?"), auth),
        ("POST", CHAT_COMPLETIONS_PATH, body("What's the capital of France?", stream=True), auth),
        ("POST", CHAT_COMPLETIONS_PATH, body("hi"), {TOKEN_HEADER: "bad"}),
        ("GET", "/nope", None, {}),
    ]


def _summary(response: httpx.Response) -> tuple[int, dict[str, str], str]:
    headers = {k: v for k, v in response.headers.items() if k not in VOLATILE}
    text = response.text
    return response.status_code, headers, text


def _run_sync(client: httpx.Client, token: str) -> list[tuple[int, dict[str, str], str]]:
    return [_summary(client.request(m, p, json=j, headers=h)) for m, p, j, h in _script(token)]


@pytest.fixture
def fixed_clock_gateways() -> list[ReferenceGateway]:
    return [make_gateway(clock=lambda: 5.0) for _ in range(3)]


@pytest.mark.anyio
async def test_three_faces_answer_the_same(fixed_clock_gateways: list[ReferenceGateway]) -> None:
    sync_gw, async_gw, server_gw = fixed_clock_gateways
    token = sync_gw.mint_token("t")
    with httpx.Client(transport=sync_gw.transport(), base_url=IN_PROCESS_URL) as client:
        via_sync = _run_sync(client, token)
    async with httpx.AsyncClient(
        transport=async_gw.async_transport(), base_url=IN_PROCESS_URL
    ) as aclient:
        via_async = [
            _summary(await aclient.request(m, p, json=j, headers=h))
            for m, p, j, h in _script(token)
        ]
    with serve(server_gw) as url, httpx.Client(base_url=url) as client:
        via_server = _run_sync(client, token)
    statuses = [s for s, _, _ in via_sync]
    caches = [h.get(CACHE_HEADER.lower()) for _, h, _ in via_sync]
    assert statuses == [200, 200, 200, 200, 401, 404]
    assert caches == [None, "MISS", "HIT_L1", "HIT_L2", None, None]

    def comparable(rows: list[tuple[int, dict[str, str], str]]) -> list[Any]:
        # completions carry a creation time; everything else must match exactly
        return [(s, h, t.split('"created"')[0]) for s, h, t in rows]

    assert comparable(via_async) == comparable(via_sync)
    assert comparable(via_server) == comparable(via_sync)


def test_server_survives_bad_input_and_shuts_down() -> None:
    gw = make_gateway(max_body_bytes=100)
    token = gw.mint_token("t")
    with serve(gw) as url, httpx.Client(base_url=url) as client:
        assert url.startswith("http://127.0.0.1:")
        big = client.post(
            CHAT_COMPLETIONS_PATH, content=b"x" * 10_000, headers={TOKEN_HEADER: token}
        )
        garbage = client.post(CHAT_COMPLETIONS_PATH, content=b"{", headers={TOKEN_HEADER: token})
        health = client.get(HEALTH_PATH)
    assert big.status_code == 413
    assert garbage.status_code == 400
    assert health.json() == {"status": "ok"}
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + HEALTH_PATH, timeout=1)


def _openai_sync(gw: ReferenceGateway, token: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=IN_PROCESS_URL + "/v1",
        api_key=token,
        http_client=httpx.Client(transport=gw.transport()),
        default_headers={TOKEN_HEADER: token},
    )


def test_openai_sdk_parses_answers(gw: ReferenceGateway) -> None:
    token = gw.mint_token("t")
    client = _openai_sync(gw, token)
    messages: Any = [{"role": "user", "content": "What is the capital of France?"}]
    first = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert first.object == "chat.completion"
    assert first.choices[0].message.role == "assistant"
    assert first.choices[0].finish_reason == "stop"
    assert first.usage is not None
    assert first.usage.total_tokens > 0
    assert raw.headers[CACHE_HEADER] == "HIT_L1"
    assert raw.parse().choices[0].message.content == first.choices[0].message.content
    assert streamed == first.choices[0].message.content


def test_openai_sdk_bypass_with_api_key_only(gw: ReferenceGateway) -> None:
    token = gw.mint_token("t")
    client = openai.OpenAI(
        base_url=IN_PROCESS_URL + "/v1",
        api_key=token,
        http_client=httpx.Client(transport=gw.transport()),
    )
    raw = client.chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": "hello"}]
    )
    assert raw.headers[CACHE_HEADER] == "BYPASS"
    assert gw.entry_count("t") == 0
    bad = openai.OpenAI(
        base_url=IN_PROCESS_URL + "/v1",
        api_key="not-a-token",
        http_client=httpx.Client(transport=gw.transport()),
        max_retries=0,
    )
    with pytest.raises(openai.AuthenticationError) as caught:
        bad.chat.completions.create(model="m", messages=[{"role": "user", "content": "hello"}])
    assert "not-a-token" not in str(caught.value)


@pytest.mark.anyio
async def test_async_openai_sdk_streams(gw: ReferenceGateway) -> None:
    token = gw.mint_token("t")
    client = openai.AsyncOpenAI(
        base_url=IN_PROCESS_URL + "/v1",
        api_key=token,
        http_client=httpx.AsyncClient(transport=gw.async_transport()),
        default_headers={TOKEN_HEADER: token},
    )
    messages: Any = [{"role": "user", "content": "Tell me about lighthouses"}]
    stream = await client.chat.completions.create(model="m", messages=messages, stream=True)
    parts = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
    again = await client.chat.completions.with_raw_response.create(model="m", messages=messages)
    assert again.headers[CACHE_HEADER] == "HIT_L1"
    assert "".join(parts) == again.parse().choices[0].message.content
    await client.close()


def test_openai_sdk_over_loopback(gw: ReferenceGateway) -> None:
    token = gw.mint_token("t")
    with serve(gw) as url:
        client = openai.OpenAI(
            base_url=url + "/v1", api_key=token, default_headers={TOKEN_HEADER: token}
        )
        messages: Any = [{"role": "user", "content": "Name three primes"}]
        stream = client.chat.completions.create(model="m", messages=messages, stream=True)
        streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        raw = client.chat.completions.with_raw_response.create(model="m", messages=messages)
        client.close()
    assert raw.headers[CACHE_HEADER] == "HIT_L1"
    assert streamed == raw.parse().choices[0].message.content
