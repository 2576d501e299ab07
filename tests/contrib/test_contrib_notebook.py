"""Notebooks: cells run inside the kernel's running event loop.

IPython compiles each cell with top-level ``await`` allowed and runs it in the
kernel's asyncio loop, on the loop's thread. So a plain sync call in a cell runs
*while a loop is running* in its thread: anything calling ``asyncio.run`` (or
``anyio.run``) inside the SDK would fail there. ``run_cell`` reproduces that.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import textwrap
from typing import Any

import anyio
import httpx
import pytest

openai = pytest.importorskip("openai")

from contrib_helpers import MODEL  # noqa: E402

from cachecore import CachecoreClient, SyncCachecoreClient  # noqa: E402
from cachecore.testing import ReferenceGateway  # noqa: E402
from shared_constants import GATEWAY_URL  # noqa: E402


async def run_cell(source: str, namespace: dict[str, Any]) -> None:
    """Run one cell as IPython does: top-level await allowed, inside the running loop."""
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    code = compile(textwrap.dedent(source), "<cell>", "exec", flags=flags)
    result = eval(code, namespace)
    if inspect.iscoroutine(result):
        await result


def run_kernel(
    cells: list[str], namespace: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def kernel() -> None:
        # From here on a nested event loop is an error, as in a real kernel.
        def no_nested_loop(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("the SDK started an event loop inside a running one")

        monkeypatch.setattr(asyncio, "run", no_nested_loop)
        monkeypatch.setattr(anyio, "run", no_nested_loop)
        for cell in cells:
            await run_cell(cell, namespace)

    asyncio.run(kernel())


def test_sync_client_in_a_cell_while_the_loop_runs(
    cachecore_gateway: ReferenceGateway,
    cachecore_token: str,
    cachecore_tenant: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cc = SyncCachecoreClient(
        gateway_url=GATEWAY_URL,
        tenant_jwt=cachecore_token,
        inner_transport=cachecore_gateway.transport(),
    )
    llm = openai.OpenAI(
        base_url=GATEWAY_URL + "/v1",
        api_key=cachecore_token,
        http_client=httpx.Client(transport=cc.transport),
        max_retries=0,
    )
    ns: dict[str, Any] = {"cc": cc, "llm": llm, "MODEL": MODEL, "asyncio": asyncio}
    cells = [
        """
        loop_was_running = asyncio.get_running_loop().is_running()
        statuses = []
        for _ in range(2):
            with cc.request_context(deps=["doc:nb"]) as handle:
                llm.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": "notebook question"}]
                )
            statuses.append(handle.last.status)
        """,
        """
        single = cc.invalidate("doc:nb")
        many = cc.invalidate_many(["doc:nb", "table:other"], new_hash="v9")
        with cc.request_context(deps=["doc:nb"]) as after:
            llm.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "notebook question"}]
            )
        """,
    ]
    run_kernel(cells, ns, monkeypatch)
    cc.close()
    assert ns["loop_was_running"] is True
    assert ns["statuses"] == ["MISS", "HIT_L1"]
    assert ns["single"].ok
    assert [(r.dep_id, r.ok) for r in ns["many"]] == [("doc:nb", True), ("table:other", True)]
    assert cachecore_gateway.dep_version(cachecore_tenant, "table:other") == "v9"
    assert ns["after"].last.status == "MISS"


def test_async_client_with_top_level_await(
    cachecore_gateway: ReferenceGateway,
    cachecore_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ns: dict[str, Any] = {
        "CachecoreClient": CachecoreClient,
        "AsyncOpenAI": openai.AsyncOpenAI,
        "httpx": httpx,
        "token": cachecore_token,
        "inner": cachecore_gateway.async_transport(),
        "URL": GATEWAY_URL,
        "MODEL": MODEL,
    }
    cells = [
        """
        acc = CachecoreClient(gateway_url=URL, tenant_jwt=token, inner_transport=inner)
        llm = AsyncOpenAI(base_url=URL + "/v1", api_key=token,
                          http_client=httpx.AsyncClient(transport=acc.transport), max_retries=0)
        """,
        """
        with acc.request_context(deps=["doc:async-nb"]) as first:
            await llm.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "async cell"}])
        """,
        """
        with acc.request_context(deps=["doc:async-nb"]) as second:
            await llm.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "async cell"}])
        result = await acc.invalidate("doc:async-nb")
        await acc.aclose()
        """,
    ]
    run_kernel(cells, ns, monkeypatch)
    assert ns["first"].last.status == "MISS"
    assert ns["second"].last.status == "HIT_L1"  # the handle outlives its cell
    assert ns["result"].ok
