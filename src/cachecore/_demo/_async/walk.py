"""The demo's walk over the adoption ladder, written once for both twins.

``cachecore._demo`` plans the steps and prints the table; this module makes the
calls and hands each row to ``report`` as soon as its step completes, so the
table grows while the walk runs. Written once, async, in
``cachecore/_demo/_async/walk.py``; the sync walk is generated from it by
``codegen/make_sync.py``. It is a tree of its own so that the core
(``cachecore/_async``) never imports openai or the demo.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

import httpx
from openai import AsyncOpenAI

from cachecore._async import CachecoreClient
from cachecore._demo import _plan
from cachecore._demo._plan import Row
from cachecore._models import CacheStatus, Dep


async def walk(
    url: str, tokens: dict[str, str], flavour: str, report: Callable[[Row], None]
) -> list[Row]:
    """Run every step of the plan with the ``flavour`` ("async" or "sync") SDK and time it.

    ``report`` gets each row as its step completes; the rows are also returned.
    """
    rows: list[Row] = []

    def done(row: Row) -> None:
        rows.append(row)
        report(row)

    clients: dict[str, tuple[CachecoreClient, AsyncOpenAI]] = {}
    try:
        for step in _plan.plan():
            if step.plain:
                async with AsyncOpenAI(base_url=f"{url}/v1", api_key=tokens[step.tenant]) as plain:
                    started = time.perf_counter()
                    raw = await plain.chat.completions.with_raw_response.create(
                        model=_plan.MODEL,
                        messages=_plan.messages(step.prompt),  # type: ignore[arg-type]
                    )
                    status = CacheStatus.from_headers(raw)
                    done(_plan.row(step, flavour, status, started, raw.parse().usage))
                continue
            if step.tenant not in clients:
                cc = CachecoreClient(url, tokens[step.tenant])
                sdk = AsyncOpenAI(
                    base_url=f"{url}/v1",
                    api_key=tokens[step.tenant],
                    # openai 3.x types this as an httpx2 client and accepts httpx's too
                    http_client=cast(Any, httpx.AsyncClient(transport=cc.transport)),
                )
                clients[step.tenant] = (cc, sdk)
            cc, sdk = clients[step.tenant]
            started = time.perf_counter()
            if step.invalidate is not None:
                result = await cc.invalidate(*step.invalidate)
                done(_plan.row(step, flavour, "ok" if result.ok else "FAILED", started))
                continue
            deps = [Dep(dep_id, hash=h) for dep_id, h in step.deps]
            with cc.request_context(deps=deps, bypass=step.bypass) as ctx:
                answer = await sdk.chat.completions.create(
                    model=_plan.MODEL,
                    messages=_plan.messages(step.prompt),  # type: ignore[arg-type]
                )
            done(_plan.row(step, flavour, ctx.last or CacheStatus(), started, answer.usage))
    finally:
        for cc, sdk in clients.values():
            await sdk.close()
            await cc.aclose()
    return rows
