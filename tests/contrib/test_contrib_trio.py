"""trio: the async client (anyio inside) and AsyncOpenAI under ``trio.run``."""

from __future__ import annotations

import httpx
import pytest

trio = pytest.importorskip("trio")
openai = pytest.importorskip("openai")

from contrib_helpers import MODEL, AsyncRecorder  # noqa: E402

from cachecore import CachecoreClient  # noqa: E402
from cachecore.testing import ReferenceGateway  # noqa: E402
from shared_constants import GATEWAY_URL  # noqa: E402

TASKS = 8


def openai_over(acc: CachecoreClient, token: str) -> openai.AsyncOpenAI:
    """An OpenAI client through ``acc``'s transport to the in-process gateway, no retries."""
    return openai.AsyncOpenAI(
        base_url=GATEWAY_URL + "/v1",
        api_key=token,
        http_client=httpx.AsyncClient(transport=acc.transport),
        max_retries=0,
    )


def test_trio_tasks_keep_their_own_deps(
    cachecore_gateway: ReferenceGateway, cachecore_token: str, cachecore_tenant: str
) -> None:
    recorder = AsyncRecorder(cachecore_gateway.async_transport())
    statuses: dict[int, list[str]] = {}

    async def ask(llm: openai.AsyncOpenAI, acc: CachecoreClient, i: int) -> None:
        with acc.request_context(deps=[f"doc:{i}"]) as handle:
            await trio.sleep(0)  # let the other tasks enter their own contexts first
            for _ in range(2):
                await llm.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": f"trio question {i}"}]
                )
        statuses[i] = [s.status for s in handle.statuses]

    async def main() -> list[bool]:
        async with CachecoreClient(
            gateway_url=GATEWAY_URL, tenant_jwt=cachecore_token, inner_transport=recorder
        ) as acc:
            llm = openai_over(acc, cachecore_token)
            async with trio.open_nursery() as nursery:
                for i in range(TASKS):
                    nursery.start_soon(ask, llm, acc, i)
            results = await acc.invalidate_many([f"doc:{i}" for i in range(TASKS)])
            return [r.ok for r in results]

    oks = trio.run(main)
    assert oks == [True] * TASKS
    assert statuses == {i: ["MISS", "HIT_L1"] for i in range(TASKS)}
    assert len(recorder.seen) == 2 * TASKS
    for seen in recorder.seen:
        i = seen.prompt.removeprefix("trio question ")
        assert seen.deps == (f"doc:{i}",)
    assert cachecore_gateway.entry_count(cachecore_tenant) == 0  # all evicted


@pytest.mark.anyio
async def test_async_client_on_each_anyio_backend(
    anyio_backend: str, cachecore_gateway: ReferenceGateway, cachecore_token: str
) -> None:
    """The root conftest runs this on asyncio and on trio."""
    async with CachecoreClient(
        gateway_url=GATEWAY_URL,
        tenant_jwt=cachecore_token,
        inner_transport=cachecore_gateway.async_transport(),
    ) as acc:
        llm = openai_over(acc, cachecore_token)
        seen = []
        for _ in range(2):
            with acc.request_context(deps=[f"backend:{anyio_backend}"]) as handle:
                await llm.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": f"on {anyio_backend}"}]
                )
            assert handle.last is not None
            seen.append(handle.last.status)
        assert seen == ["MISS", "HIT_L1"]
        assert (await acc.invalidate(f"backend:{anyio_backend}")).ok
