"""The gateway's two faces answer alike: in-process transport and loopback server.

One scripted sequence through the real OpenAI SDK, run against a fresh gateway
on each face; statuses, similarities, answers and errors must match.
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from cachecore import CachecoreClient, Dep
from cachecore.errors import CachecoreAuthError, typed_errors
from cachecore.testing import IN_PROCESS_URL, GatewayConfig, ReferenceGateway, mint_token

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

MODEL = "gpt-5.4-mini"


def in_process_face(gw: ReferenceGateway) -> httpx.AsyncBaseTransport:
    """The in-process transport matching this file's flavour.

    The generated sync twin reads ``httpx.BaseTransport`` here; the gateway's
    ``transport``/``async_transport`` names do not follow the ``Async`` prefix
    rule, so the face is picked by type.
    """
    face: object = gw.async_transport()
    if not isinstance(face, httpx.AsyncBaseTransport):
        face = gw.transport()
    assert isinstance(face, httpx.AsyncBaseTransport)
    return face


async def script(gw: ReferenceGateway, url: str, inner: httpx.AsyncBaseTransport | None) -> Any:
    """Every kind of answer, in order: what the caller could observe of each."""
    seen: list[tuple[Any, ...]] = []
    tokens = {t: gw.mint_token(t) for t in ("tenant-a", "tenant-b")}
    tokens["bad"] = mint_token("wrong-secret", "tenant-a")
    clients = {
        name: CachecoreClient(url, token, inner_transport=inner) for name, token in tokens.items()
    }
    sdks = {
        name: openai.AsyncOpenAI(
            base_url=f"{url}/v1",
            api_key=tokens[name],
            http_client=httpx.AsyncClient(transport=cc.transport),
        )
        for name, cc in clients.items()
    }
    steps: list[tuple[str, str, list[Dep], bool]] = [
        ("tenant-a", "What is the capital of France?", [], False),
        ("tenant-a", "What is the capital of France?", [], False),
        ("tenant-a", "What's the capital of France?", [], False),
        ("tenant-b", "What is the capital of France?", [], False),
        ("tenant-a", "Summarise contract #123", [Dep("doc:123")], False),
        ("tenant-a", "Summarise contract #123", [Dep("doc:123")], False),
        ("invalidate", "doc:123", [], False),
        ("tenant-a", "Summarise contract #123", [Dep("doc:123", hash="v2")], False),
        ("tenant-a", "Generate a unique report ID", [], True),
        ("stream", "Tell me a story", [], False),
        ("stream", "Tell me a story", [], False),
        ("bad", "What is the capital of France?", [], False),
    ]
    try:
        for who, text, deps, bypass in steps:
            if who == "invalidate":
                result = await clients["tenant-a"].invalidate(text, new_hash="v2")
                seen.append(("invalidate", result.ok))
                continue
            cc = clients["tenant-a" if who == "stream" else who]
            sdk = sdks["tenant-a" if who == "stream" else who]
            messages: Any = [{"role": "user", "content": text}]
            with cc.request_context(deps=deps, bypass=bypass) as ctx:
                if who == "bad":
                    with pytest.raises(CachecoreAuthError) as info, typed_errors():
                        await sdk.chat.completions.create(model=MODEL, messages=messages)
                    seen.append(("error", info.value.status_code, len(ctx)))
                    continue
                if who == "stream":
                    stream = await sdk.chat.completions.create(
                        model=MODEL, messages=messages, stream=True
                    )
                    parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
                    content = "".join(parts)
                else:
                    response = await sdk.chat.completions.create(model=MODEL, messages=messages)
                    content = response.choices[0].message.content or ""
            status = ctx.last
            assert status is not None
            seen.append((who, status.status, round(status.similarity, 4), content))
    finally:
        for name, cc in clients.items():
            await sdks[name].close()
            await cc.aclose()
    stats = gw.stats()
    return seen, (stats.hits_l1, stats.hits_l2, stats.misses, stats.bypasses, stats.upstream_calls)


async def test_in_process_and_loopback_faces_answer_alike(
    cachecore_gateway: ReferenceGateway, cachecore_server: str, cachecore_secret: str
) -> None:
    # The loopback face: the pytest plugin's gateway, served by its cachecore_server.
    over_network = await script(cachecore_gateway, cachecore_server, None)
    local_gw = ReferenceGateway(GatewayConfig(secret=cachecore_secret))
    in_process = await script(local_gw, IN_PROCESS_URL, in_process_face(local_gw))

    assert in_process == over_network
    statuses = [step[1] for step in over_network[0] if step[0] not in ("invalidate", "error")]
    assert statuses == [
        "MISS", "HIT_L1", "HIT_L2", "MISS", "MISS", "HIT_L1", "MISS", "BYPASS", "MISS", "HIT_L1",
    ]  # fmt: skip
    assert ("invalidate", True) in over_network[0]
    assert over_network[0][-1] == ("error", 401, 0)
    assert over_network[1] == (3, 1, 5, 1, 6)  # L1, L2, misses, bypasses, upstream
