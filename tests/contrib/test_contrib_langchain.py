"""LangChain's ChatOpenAI through Cachecore: the handle shows the status LangChain hides."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

pytest.importorskip("langchain_openai")

from contrib_helpers import MODEL, AsyncRecorder, Recorder

from cachecore import CachecoreClient, Dep, SyncCachecoreClient
from cachecore.contrib.langchain import chat_openai, chat_openai_kwargs
from cachecore.errors import CachecoreConfigError
from cachecore.testing import ReferenceGateway
from shared_constants import GATEWAY_URL


@pytest.fixture
def anyio_backend() -> str:
    """LangChain's async path runs on asyncio only (it calls asyncio directly), not trio."""
    return "asyncio"


@pytest.fixture
def recorder(cachecore_gateway: ReferenceGateway) -> Recorder:
    return Recorder(cachecore_gateway.transport())


@pytest.fixture
def cc(recorder: Recorder, cachecore_token: str) -> Iterator[SyncCachecoreClient]:
    with SyncCachecoreClient(
        gateway_url=GATEWAY_URL, tenant_jwt=cachecore_token, inner_transport=recorder
    ) as client:
        yield client


@pytest.fixture
async def acc(
    cachecore_gateway: ReferenceGateway, cachecore_token: str
) -> AsyncIterator[CachecoreClient]:
    async with CachecoreClient(
        gateway_url=GATEWAY_URL,
        tenant_jwt=cachecore_token,
        inner_transport=AsyncRecorder(cachecore_gateway.async_transport()),
    ) as client:
        yield client


def test_invoke_reports_miss_then_hit_through_the_handle(
    cc: SyncCachecoreClient, recorder: Recorder, cachecore_token: str
) -> None:
    llm = chat_openai(cc, api_key=cachecore_token, model=MODEL, max_retries=0)
    answers, statuses = [], []
    for _ in range(2):
        with cc.request_context(deps=[Dep("doc:42")]) as handle:
            answers.append(llm.invoke("Summarise doc 42").content)
        assert handle.last is not None
        statuses.append(handle.last.status)
    assert statuses == ["MISS", "HIT_L1"]
    assert answers[0] == answers[1]
    assert [s.deps for s in recorder.seen] == [("doc:42",), ("doc:42",)]
    # The invalidation evicts it; LangChain's next call misses again.
    assert cc.invalidate("doc:42").ok
    with cc.request_context(deps=[Dep("doc:42")]) as handle:
        llm.invoke("Summarise doc 42")
    assert [s.status for s in handle.statuses] == ["MISS"]


@pytest.mark.anyio
async def test_ainvoke_reports_miss_then_hit_through_the_handle(
    acc: CachecoreClient, cachecore_token: str
) -> None:
    llm = chat_openai(async_client=acc, api_key=cachecore_token, model=MODEL, max_retries=0)
    with acc.request_context(deps=["doc:7"]) as outer:
        for _ in range(2):
            with acc.request_context() as inner:  # nested: inherits doc:7
                await llm.ainvoke("Summarise doc 7")
            assert inner.deps == (Dep("doc:7"),)
    assert [s.status for s in outer.statuses] == ["MISS", "HIT_L1"]
    assert outer.hits == 1
    assert outer.misses == 1


def test_one_model_object_serves_invoke_and_ainvoke(
    cc: SyncCachecoreClient, cachecore_token: str, cachecore_gateway: ReferenceGateway
) -> None:
    import anyio

    acc = CachecoreClient(
        gateway_url=GATEWAY_URL,
        tenant_jwt=cachecore_token,
        inner_transport=cachecore_gateway.async_transport(),
    )
    llm = chat_openai(cc, acc, api_key=cachecore_token, model=MODEL, max_retries=0)
    with cc.request_context(deps=["doc:1"]) as handle:
        llm.invoke("shared prompt")

    async def second() -> str:
        with acc.request_context(deps=["doc:1"]) as h:
            await llm.ainvoke("shared prompt")
        await acc.aclose()
        assert h.last is not None
        return h.last.status

    assert [s.status for s in handle.statuses] == ["MISS"]
    assert anyio.run(second) == "HIT_L1"  # the sync call's entry serves the async one


def test_kwargs_helper_checks_its_input(cc: SyncCachecoreClient) -> None:
    kwargs = chat_openai_kwargs(cc)
    assert kwargs["base_url"] == GATEWAY_URL + "/v1"
    assert isinstance(kwargs["http_client"], httpx.Client)
    assert "http_async_client" not in kwargs
    assert "api_key" not in kwargs
    with pytest.raises(CachecoreConfigError, match="sync_client"):
        chat_openai_kwargs()
    other = CachecoreClient(gateway_url="http://elsewhere.test", tenant_jwt="t")
    with pytest.raises(CachecoreConfigError, match="different gateways"):
        chat_openai_kwargs(cc, other)
