"""End to end: the real OpenAI SDK over our transport, to the reference gateway on loopback.

Written once for the async SDK; the sync twin in tests/_sync is generated. The
main run uses openai 3.x; ``nox -s openai_compat`` re-runs these on 1.x and 2.x,
where gateway errors reach the caller through ``typed_errors()``.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from cachecore import CachecoreClient, CacheStatus, Dep, _wire
from cachecore.errors import (
    CachecoreAPIError,
    CachecoreAuthError,
    CachecoreConfigError,
    CachecoreError,
    CachecoreRateLimitError,
    typed_errors,
)
from cachecore.testing import GatewayConfig, ReferenceGateway, mint_token, serve

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

OPENAI_MAJOR = int(openai.__version__.split(".")[0])
SECRET = "e2e-openai-secret-of-at-least-32-bytes"
MODEL = "gpt-5.4-mini"
CHAT_PATH = "/v1/chat/completions"
PROMPT = "What is the capital of France?"
PARAPHRASE = "What's the capital of France?"  # n-gram similarity about 0.91


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[ReferenceGateway, str]]:
    gw = ReferenceGateway(GatewayConfig(secret=SECRET))
    with serve(gw) as url:
        yield gw, url


@pytest.fixture
def gateway(served: tuple[ReferenceGateway, str]) -> tuple[ReferenceGateway, str]:
    """The shared loopback gateway, emptied: every test starts from a cold cache."""
    gw, _ = served
    gw.clear()
    gw.blocked_tenants.clear()
    return served


@pytest.fixture(scope="module")
def limited() -> Iterator[tuple[ReferenceGateway, str]]:
    """A gateway allowing one request per tenant every two seconds."""
    gw = ReferenceGateway(GatewayConfig(secret=SECRET, rate_limit=0.5, rate_burst=1))
    with serve(gw) as url:
        yield gw, url


def sdk_for(cc: CachecoreClient, url: str, api_key: str, **kwargs: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"{url}/v1",
        api_key=api_key,
        http_client=httpx.AsyncClient(transport=cc.transport),
        **kwargs,
    )


async def ask(sdk: openai.AsyncOpenAI, prompt: str) -> str:
    response = await sdk.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": prompt}]
    )
    return response.choices[0].message.content or ""


async def call(
    cc: CachecoreClient,
    sdk: openai.AsyncOpenAI,
    prompt: str,
    *,
    deps: list[Dep] | None = None,
    bypass: bool = False,
) -> tuple[CacheStatus, str]:
    """One chat call; its status read through the request-context handle."""
    with cc.request_context(deps=deps, bypass=bypass) as ctx:
        content = await ask(sdk, prompt)
    assert len(ctx) == 1
    assert ctx.last is not None
    return ctx.last, content


async def raises_typed(sdk: openai.AsyncOpenAI, error: type[CachecoreAPIError]) -> Any:
    """The typed error a refused call surfaces, by the path each openai major takes."""
    if OPENAI_MAJOR >= 3:
        # 3.x does not wrap what a transport raises: ours reaches the caller as is.
        with pytest.raises(error) as info:
            await ask(sdk, PROMPT)
    else:
        # 1.x/2.x get the gateway's answer back and raise their status error;
        # typed_errors() finds ours on it.
        with pytest.raises(error) as info, typed_errors():
            await ask(sdk, PROMPT)
        assert isinstance(info.value.__cause__, openai.APIStatusError)
        assert info.value.__cause__.status_code == info.value.status_code
    return info.value


def chat_requests(gw: ReferenceGateway) -> list[Any]:
    return [r for r in gw.requests if r.path == CHAT_PATH]


# -- caching -------------------------------------------------------------------------


async def test_l1_and_l2_hits(gateway: tuple[ReferenceGateway, str]) -> None:
    gw, url = gateway
    token = gw.mint_token("tenant-a")
    async with CachecoreClient(url, token) as cc, sdk_for(cc, url, token) as sdk:
        first, answer = await call(cc, sdk, PROMPT)
        exact, exact_answer = await call(cc, sdk, PROMPT)
        similar, similar_answer = await call(cc, sdk, PARAPHRASE)
    assert (first.status, exact.status, similar.status) == ("MISS", "HIT_L1", "HIT_L2")
    assert PROMPT in answer
    assert exact_answer == answer == similar_answer, "hits must replay the stored answer"
    assert 0.87 <= similar.similarity < 1.0
    assert exact.similarity == 0.0
    assert exact.age_seconds >= 0
    stats = gw.stats()
    assert (stats.misses, stats.hits_l1, stats.hits_l2, stats.upstream_calls) == (1, 1, 1, 1)


async def test_tenant_isolation_at_l1_and_l2(gateway: tuple[ReferenceGateway, str]) -> None:
    gw, url = gateway
    token_a, token_b = gw.mint_token("tenant-a"), gw.mint_token("tenant-b")
    async with (
        CachecoreClient(url, token_a) as cc_a,
        sdk_for(cc_a, url, token_a) as sdk_a,
        CachecoreClient(url, token_b) as cc_b,
        sdk_for(cc_b, url, token_b) as sdk_b,
    ):
        a_first, _ = await call(cc_a, sdk_a, PROMPT)
        b_exact, _ = await call(cc_b, sdk_b, PROMPT)  # A's exact prompt: L1 must not leak
        b_similar, _ = await call(cc_b, sdk_b, "Explain the difference between TCP and UDP.")
        a_similar, _ = await call(cc_a, sdk_a, "Explain the difference between UDP and TCP.")
        a_again, _ = await call(cc_a, sdk_a, PARAPHRASE)
    assert (a_first.status, b_exact.status) == ("MISS", "MISS")
    # B stored the TCP prompt; A's paraphrase of it must not be served from B's L2.
    assert (b_similar.status, a_similar.status) == ("MISS", "MISS")
    assert a_again.status == "HIT_L2", "A's own L2 still answers A"
    assert a_first.namespace_hint
    assert b_exact.namespace_hint
    assert a_first.namespace_hint != b_exact.namespace_hint
    assert (gw.entry_count("tenant-a"), gw.entry_count("tenant-b")) == (2, 2)
    tenants = [r.tenant_id for r in chat_requests(gw)]
    assert tenants == ["tenant-a", "tenant-b", "tenant-b", "tenant-a", "tenant-a"]


async def test_dep_invalidation_is_scoped_to_its_tenant(
    gateway: tuple[ReferenceGateway, str],
) -> None:
    gw, url = gateway
    token_a, token_b = gw.mint_token("tenant-a"), gw.mint_token("tenant-b")
    dep = [Dep("doc:contract-123")]
    async with (
        CachecoreClient(url, token_a) as cc_a,
        sdk_for(cc_a, url, token_a) as sdk_a,
        CachecoreClient(url, token_b) as cc_b,
        sdk_for(cc_b, url, token_b) as sdk_b,
    ):
        for cc, sdk in ((cc_a, sdk_a), (cc_b, sdk_b)):
            assert (await call(cc, sdk, "Summarise contract #123", deps=dep))[0].status == "MISS"
            assert (await call(cc, sdk, "Summarise contract #123", deps=dep))[0].status == "HIT_L1"
        await call(cc_a, sdk_a, "An untagged question")
        result = await cc_a.invalidate("doc:contract-123", new_hash="v2")
        assert (result.ok, result.dep_id, result.new_hash) == (True, "doc:contract-123", "v2")

        v2 = [Dep("doc:contract-123", hash="v2")]
        a_after, _ = await call(cc_a, sdk_a, "Summarise contract #123", deps=v2)
        a_v2, _ = await call(cc_a, sdk_a, "Summarise contract #123", deps=v2)
        b_after, _ = await call(cc_b, sdk_b, "Summarise contract #123", deps=dep)
        untagged, _ = await call(cc_a, sdk_a, "An untagged question")
    assert a_after.status == "MISS", "the invalidated entry must be gone"
    assert a_v2.status == "HIT_L1", "the answer rebuilt after the change is cached under v2"
    assert b_after.status == "HIT_L1", "another tenant's entry survives A's invalidation"
    assert untagged.status == "HIT_L1", "entries without the dep survive"
    assert gw.dep_version("tenant-a", "doc:contract-123") == "v2"
    assert gw.dep_version("tenant-b", "doc:contract-123") is None
    assert gw.stats().evicted_invalidate == 1


async def test_bypass_skips_the_cache(gateway: tuple[ReferenceGateway, str]) -> None:
    gw, url = gateway
    token = gw.mint_token("tenant-a")
    async with CachecoreClient(url, token) as cc, sdk_for(cc, url, token) as sdk:
        one, answer = await call(cc, sdk, "Generate a unique report ID", bypass=True)
        two, _ = await call(cc, sdk, "Generate a unique report ID", bypass=True)
        assert gw.entry_count("tenant-a") == 0, "a bypassed call stores nothing"
        cached, _ = await call(cc, sdk, "Generate a unique report ID")
    assert (one.status, two.status, cached.status) == ("BYPASS", "BYPASS", "MISS")
    assert answer
    sent = chat_requests(gw)
    assert all("x-cachecore-token" not in r.headers for r in sent[:2])
    assert "x-cachecore-token" in sent[2].headers
    assert gw.stats().upstream_calls == 3


async def test_streaming_is_cached_and_replayed(gateway: tuple[ReferenceGateway, str]) -> None:
    gw, url = gateway
    token = gw.mint_token("tenant-a")
    prompt = "Tell me a long story about a cache that never missed"
    runs: list[tuple[str, list[str]]] = []
    async with CachecoreClient(url, token) as cc, sdk_for(cc, url, token) as sdk:
        for _ in range(2):
            with cc.request_context() as ctx:
                stream = await sdk.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": prompt}], stream=True
                )
                pieces = [
                    chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices
                ]
            assert ctx.last is not None
            runs.append((ctx.last.status, pieces))
        plain, plain_answer = await call(cc, sdk, prompt)
    (first_status, first), (second_status, second) = runs
    assert (first_status, second_status) == ("MISS", "HIT_L1")
    assert len([p for p in first if p]) > 1, "the answer must arrive in several chunks"
    assert "".join(second) == "".join(first)
    # The stream and the plain call share one cache entry: delivery is not part of the key.
    assert plain.status == "HIT_L1"
    assert plain_answer == "".join(first)
    assert gw.stats().upstream_calls == 1


# -- errors --------------------------------------------------------------------------


async def test_401_surfaces_as_auth_error_after_one_request(
    gateway: tuple[ReferenceGateway, str],
) -> None:
    gw, url = gateway
    bad = mint_token("not-the-gateway-secret", "tenant-a")
    async with CachecoreClient(url, bad) as cc, sdk_for(cc, url, bad) as sdk:
        if OPENAI_MAJOR >= 3:
            with pytest.raises(CachecoreAuthError) as info:
                await ask(sdk, PROMPT)
            error = info.value
        else:
            # Without typed_errors(): openai's own 401 error, ours attached to it.
            with pytest.raises(openai.AuthenticationError) as raw:
                await ask(sdk, PROMPT)
            found = CachecoreError.find(raw.value)
            assert isinstance(found, CachecoreAuthError)
            error = found
    assert error.status_code == 401
    assert "bad_signature" in error.body
    sent = chat_requests(gw)
    assert len(sent) == 1, f"a 401 must not be retried; the gateway saw {len(sent)} requests"
    assert sent[0].status == 401


async def test_403_for_a_blocked_tenant(gateway: tuple[ReferenceGateway, str]) -> None:
    gw, url = gateway
    gw.blocked_tenants.add("blocked")
    token = gw.mint_token("blocked")
    async with CachecoreClient(url, token) as cc, sdk_for(cc, url, token) as sdk:
        error = await raises_typed(sdk, CachecoreAuthError)
    assert error.status_code == 403
    assert "tenant_blocked" in error.body
    assert [r.status for r in chat_requests(gw)] == [403], "a 403 must not be retried"


async def test_429_surfaces_as_rate_limit_error(limited: tuple[ReferenceGateway, str]) -> None:
    gw, url = limited
    tenant = f"limited-{uuid.uuid4().hex[:8]}"  # the limiter keeps its buckets across tests
    token = gw.mint_token(tenant)
    # max_retries=0 twice: openai 1.x/2.x would otherwise honour Retry-After and try
    # again, and under openai 3.x the transport would (test_429_is_retried_...).
    async with (
        CachecoreClient(url, token, max_retries=0) as cc,
        sdk_for(cc, url, token, max_retries=0) as sdk,
    ):
        assert (await call(cc, sdk, PROMPT))[0].status == "MISS"
        error = await raises_typed(sdk, CachecoreRateLimitError)
    assert isinstance(error, CachecoreRateLimitError)
    assert error.status_code == 429
    assert error.retry_after is not None
    assert 0 < error.retry_after <= 2
    statuses = [r.status for r in gw.requests if r.tenant_id == tenant]
    assert statuses == [200, 429]


def _bad_token(kind: str) -> str:
    if kind == "malformed":
        return "cc_test_local.this-is-not-a-jwt"
    if kind == "wrongly_signed":
        return mint_token("another-secret", "tenant-a")
    if kind == "alg_none":
        return mint_token(SECRET, "tenant-a", alg="none")
    assert kind == "expired"
    return mint_token(SECRET, "tenant-a", expires_in=-3600)


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("malformed", "malformed_token"),
        ("wrongly_signed", "bad_signature"),
        ("alg_none", "alg_none"),
        ("expired", "token_expired"),
    ],
)
async def test_bad_tokens_are_refused_with_auth_error(
    gateway: tuple[ReferenceGateway, str], kind: str, code: str
) -> None:
    gw, url = gateway
    token = _bad_token(kind)
    async with CachecoreClient(url, token) as cc, sdk_for(cc, url, token) as sdk:
        error = await raises_typed(sdk, CachecoreAuthError)
        result = await cc.invalidate("doc:1", new_hash="v2")
    assert error.status_code == 401
    assert code in error.body
    assert token not in str(error), "the token must never appear in an error"
    assert not result.ok
    assert isinstance(result.exception, CachecoreAuthError)
    assert gw.stats().misses == 0
    assert gw.stats().invalidations == 0


async def test_missing_token(
    gateway: tuple[ReferenceGateway, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    gw, url = gateway
    monkeypatch.delenv("CACHECORE_TOKEN", raising=False)
    # Client side: no token at all fails at construction, before any request.
    with pytest.raises(CachecoreConfigError, match="CACHECORE_TOKEN"):
        CachecoreClient(url)

    # Gateway side: a bypassed call sends no X-CacheCore-Token; with the SDK's
    # Authorization removed too, the gateway finds no token and answers 401.
    async def drop_authorization(request: httpx.Request) -> None:
        del request.headers["authorization"]

    token = gw.mint_token("tenant-a")
    async with (
        CachecoreClient(url, token) as cc,
        openai.AsyncOpenAI(
            base_url=f"{url}/v1",
            api_key=token,
            http_client=httpx.AsyncClient(
                transport=cc.transport, event_hooks={"request": [drop_authorization]}
            ),
        ) as sdk,
    ):
        with cc.request_context(bypass=True):
            error = await raises_typed(sdk, CachecoreAuthError)
    assert error.status_code == 401
    assert "missing_token" in error.body
    sent = chat_requests(gw)
    assert len(sent) == 1
    assert "authorization" not in sent[0].headers
    assert "x-cachecore-token" not in sent[0].headers


# -- openai's own default HTTP clients (httpx2 under openai 3.x) ----------------------


async def test_openai_default_client_on_our_transport(
    gateway: tuple[ReferenceGateway, str],
) -> None:
    """``DefaultAsyncHttpxClient`` is an httpx2 client under openai 3.x, httpx before."""
    gw, url = gateway
    token = gw.mint_token("tenant-default-client")
    async with CachecoreClient(url, token) as cc:
        http_client = openai.DefaultAsyncHttpxClient(transport=cc.transport)
        expected = "httpx2" if OPENAI_MAJOR >= 3 else "httpx"
        assert type(http_client).__mro__[1].__module__.split(".")[0] == expected
        async with openai.AsyncOpenAI(
            base_url=f"{url}/v1", api_key=token, http_client=http_client
        ) as sdk:
            first, answer = await call(cc, sdk, PROMPT, deps=[Dep("doc:default-client")])
            again, again_answer = await call(cc, sdk, PROMPT, deps=[Dep("doc:default-client")])
            with cc.request_context(deps=[Dep("doc:default-client")]):
                raw = await sdk.chat.completions.with_raw_response.create(
                    model=MODEL, messages=[{"role": "user", "content": PROMPT}]
                )
    assert (first.status, again.status) == ("MISS", "HIT_L1")
    assert again_answer == answer
    assert CacheStatus.from_headers(raw.headers).status == "HIT_L1"
    sent = [_wire.decode_deps(r.headers[_wire.DEPS_HEADER_LC]) for r in chat_requests(gw)[:2]]
    assert sent == [[("doc:default-client", "v1")]] * 2


async def test_cc_openai_is_wired_to_the_gateway(gateway: tuple[ReferenceGateway, str]) -> None:
    """``cc.openai()``: base URL, token and HTTP client set, other arguments passed on."""
    gw, url = gateway
    token = gw.mint_token("tenant-cc-openai")
    async with CachecoreClient(url, token) as cc:
        async with cc.openai(max_retries=0, default_headers={"X-App": "e2e"}) as sdk:
            assert str(sdk.base_url).rstrip("/") == f"{url}/v1"
            assert sdk.max_retries == 0
            first, answer = await call(cc, sdk, PROMPT, deps=[Dep("doc:cc-openai")])
            again, again_answer = await call(cc, sdk, PROMPT, deps=[Dep("doc:cc-openai")])
        assert (await cc.invalidate("doc:cc-openai")).ok, "closing the SDK leaves cc open"
        with pytest.raises(CachecoreConfigError, match="builds the HTTP client"):
            cc.openai(http_client=object())
    assert (first.status, again.status) == ("MISS", "HIT_L1")
    assert (again.request_id or "").startswith("req_"), "the gateway's request id is read"
    assert again_answer == answer
    sent = chat_requests(gw)[0]
    assert sent.headers[_wire.TOKEN_HEADER_LC] == token
    assert sent.headers["authorization"] == f"Bearer {token}"
    assert sent.headers["x-app"] == "e2e"


async def test_401_from_openai_default_client_is_typed(
    gateway: tuple[ReferenceGateway, str],
) -> None:
    gw, url = gateway
    token = mint_token("another-secret", "tenant-a")
    async with (
        CachecoreClient(url, token) as cc,
        openai.AsyncOpenAI(
            base_url=f"{url}/v1",
            api_key=token,
            http_client=openai.DefaultAsyncHttpxClient(transport=cc.transport),
        ) as sdk,
    ):
        error = await raises_typed(sdk, CachecoreAuthError)
    assert error.status_code == 401
    assert len(chat_requests(gw)) == 1, "a 401 is never retried"


async def test_429_is_retried_under_every_openai_major(
    limited: tuple[ReferenceGateway, str],
) -> None:
    """openai 1.x/2.x retry the returned 429 themselves; under 3.x the transport does.

    Either way the call succeeds after the gateway's ``Retry-After``, with one retry:
    never one by the SDK on top of one by the transport.
    """
    gw, url = limited
    tenant = f"retried-{uuid.uuid4().hex[:8]}"
    token = gw.mint_token(tenant)
    async with CachecoreClient(url, token) as cc, sdk_for(cc, url, token) as sdk:
        assert (await call(cc, sdk, PROMPT))[0].status == "MISS"
        status, answer = await call(cc, sdk, "Name three rivers of Kenya.")
    assert status.status == "MISS"
    assert "rivers of Kenya" in answer
    statuses = [r.status for r in gw.requests if r.tenant_id == tenant]
    assert statuses == [200, 429, 200]


async def test_a_gateway_that_is_down_is_named_in_the_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    async with (
        CachecoreClient(url, mint_token("any-secret", "tenant-down")) as cc,
        cc.openai(max_retries=0) as sdk,
    ):
        with pytest.raises(openai.APIConnectionError) as caught:
            await sdk.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": PROMPT}]
            )
    cause = caught.value.__cause__
    assert cause is not None
    assert f"cannot reach the Cachecore gateway at {url}" in str(cause)
    assert "ConnectError" in str(cause)
