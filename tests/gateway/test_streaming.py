"""SSE answers: cached when streamed, replayed as a stream or as JSON."""

from __future__ import annotations

import json
from typing import Any

import httpx
from gateway_helpers import body

from cachecore._wire import CACHE_HEADER, CHAT_COMPLETIONS_PATH, TOKEN_HEADER
from cachecore.testing import ReferenceGateway

QUESTION = "Tell me a short story about a lighthouse keeper"


def _stream(http: httpx.Client, token: str, **extra: Any) -> tuple[httpx.Response, list[Any]]:
    events: list[Any] = []
    request = body(QUESTION, stream=True, **extra)
    with http.stream(
        "POST", CHAT_COMPLETIONS_PATH, json=request, headers={TOKEN_HEADER: token}
    ) as response:
        for line in response.iter_lines():
            if line:
                assert line.startswith("data: ")
                data = line[len("data: ") :]
                events.append(data if data == "[DONE]" else json.loads(data))
    return response, events


def _text(events: list[Any]) -> str:
    return "".join(
        e["choices"][0]["delta"].get("content") or ""
        for e in events
        if e != "[DONE]" and e["choices"]
    )


def test_streamed_miss_is_cached_and_replayed(http: httpx.Client, gw: ReferenceGateway) -> None:
    token = gw.mint_token("t")
    miss, miss_events = _stream(http, token)
    hit, hit_events = _stream(http, token)
    as_json = http.post(CHAT_COMPLETIONS_PATH, json=body(QUESTION), headers={TOKEN_HEADER: token})
    assert miss.headers["content-type"] == "text/event-stream"
    assert (miss.headers[CACHE_HEADER], hit.headers[CACHE_HEADER]) == ("MISS", "HIT_L1")
    assert miss_events[-1] == hit_events[-1] == "[DONE]"
    assert len(miss_events) > 4
    assert all(e["object"] == "chat.completion.chunk" for e in miss_events[:-1])
    assert miss_events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert miss_events[-2]["choices"][0]["finish_reason"] == "stop"
    assert _text(hit_events) == _text(miss_events)
    assert as_json.headers[CACHE_HEADER] == "HIT_L1"
    assert as_json.json()["choices"][0]["message"]["content"] == _text(miss_events)


def test_json_miss_replayed_as_stream_with_usage(http: httpx.Client, gw: ReferenceGateway) -> None:
    token = gw.mint_token("t")
    first = http.post(CHAT_COMPLETIONS_PATH, json=body(QUESTION), headers={TOKEN_HEADER: token})
    hit, events = _stream(http, token, stream_options={"include_usage": True})
    assert hit.headers[CACHE_HEADER] == "HIT_L1"
    assert _text(events) == first.json()["choices"][0]["message"]["content"]
    usage_chunk = events[-2]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == first.json()["usage"]
