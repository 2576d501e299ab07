"""Every example of the user's document (shared/seed/python-client-docs.txt), as written.

The examples are copied here verbatim (the document lost its indentation, so it
is restored); only the hosted gateway URL and the placeholder token are swapped
for a reference gateway on loopback and a token it accepts. They run in order in
one namespace, as a reader would paste them into a notebook, with the real
OpenAI SDK over our transport.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import io
import types
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from cachecore.testing import GatewayConfig, ReferenceGateway, serve

pytestmark = pytest.mark.e2e

SECRET = "seed-examples-secret-of-at-least-32-bytes"
HOSTED = "https://api.cachecore.it"
PLACEHOLDER = "cc_live_xxxxx.eyJ..."

QUICK_START = """
import asyncio
import httpx
from openai import AsyncOpenAI
from cachecore import CachecoreClient
async def main():
    cc = CachecoreClient(
        gateway_url="https://api.cachecore.it",
        tenant_jwt="cc_live_xxxxx.eyJ...",
    )
    openai = AsyncOpenAI(
        base_url="https://api.cachecore.it/v1",
        api_key="cc_live_xxxxx.eyJ...",
        http_client=httpx.AsyncClient(transport=cc.transport),
    )
    response = await openai.chat.completions.create(
        model="gpt-5.4-mini",
        messages=[{"role": "user", "content": "Summarise contract #123"}],
    )
    print(response.choices[0].message.content)
    await cc.aclose()
asyncio.run(main())
"""

RUNG_1 = """
from openai import OpenAI
client = OpenAI(
    base_url="https://api.cachecore.it/v1",
    api_key="cc_live_xxxxx.eyJ..."
)
"""

RUNG_2 = """
from cachecore import CachecoreClient
import httpx
from openai import AsyncOpenAI
cc = CachecoreClient(
    gateway_url="https://api.cachecore.it",
    tenant_jwt=user.cachecore_token,
)
openai = AsyncOpenAI(
    base_url="https://api.cachecore.it/v1",
    api_key=user.cachecore_token,
    http_client=httpx.AsyncClient(transport=cc.transport),
)
"""

RUNG_3 = """
from cachecore import CachecoreClient, Dep
import httpx
from openai import AsyncOpenAI
cc = CachecoreClient(
    gateway_url="https://api.cachecore.it",
    tenant_jwt="cc_live_xxxxx.eyJ...",
)
openai = AsyncOpenAI(
    base_url="https://api.cachecore.it/v1",
    api_key="cc_live_xxxxx.eyJ...",
    http_client=httpx.AsyncClient(transport=cc.transport),
)
# Tag the response with a dependency
with cc.request_context(deps=[Dep("doc:contract-123")]):
    response = await openai.chat.completions.create(
        model="gpt-5.4-mini",
        messages=[{"role": "user", "content": "Summarise contract #123"}],
    )
# When contract #123 changes:
result = await cc.invalidate("doc:contract-123", new_hash="v2")
print(result.ok) # True
"""

BYPASS = """
with cc.request_context(bypass=True):
    response = await openai.chat.completions.create(
        model="gpt-5.4-mini",
        messages=[{"role": "user", "content": "Generate a unique report ID"}],
    )
"""

BULK = """
results = await cc.invalidate_many(
    dep_ids=["table:products", "table:prices"],
    new_hash="2024-03-15",
)
for r in results:
    print(r.dep_id, r.ok)
"""

ASYNC_WITH = """
async with CachecoreClient(
    gateway_url="https://api.cachecore.it",
    tenant_jwt="cc_live_xxxxx.eyJ...",
) as cc:
    # ... use cc
    pass # aclose() called automatically on exit
"""

STATUS = """
from cachecore import CacheStatus
# Parse cache metadata from the httpx response headers
status = CacheStatus.from_headers(httpx_response.headers)
print(status.status) # "HIT_L1", "HIT_L2", "MISS", etc. (from X-Cache)
print(status.similarity) # 0.0-1.0 (from X-Cache-Similarity)
print(status.age_seconds) # seconds since entry was written (from X-Cache-Age)
"""

# The document writes the call as `create(...)`; the reader fills in the arguments.
ERRORS = """
from cachecore.errors import CachecoreAuthError, CachecoreRateLimitError
try:
    response = await openai.chat.completions.create(...)
except CachecoreAuthError:
    # JWT is invalid or expired (401/403)
    pass
except CachecoreRateLimitError as e:
    # 429 Too Many Requests
    if e.retry_after:
        await asyncio.sleep(e.retry_after)
"""
CALL_ARGS = 'model="gpt-5.4-mini", messages=[{"role": "user", "content": "Hello"}]'

OPENAI_MAJOR = int(openai.__version__.split(".")[0])


def error_snippet() -> str:
    """The error-handling example with its call filled in.

    openai 1.x/2.x wrap what a transport raises, so there the documented form adds
    ``with typed_errors():`` around the call (docs/errors.md); 3.x needs nothing.
    """
    snippet = ERRORS.replace("(...)", f"({CALL_ARGS})")
    if OPENAI_MAJOR < 3:
        call = f"    response = await openai.chat.completions.create({CALL_ARGS})"
        snippet = snippet.replace(
            call,
            "    from cachecore.errors import typed_errors\n    with typed_errors():\n    " + call,
        )
    return snippet


class Notebook:
    """Runs snippets in one namespace; top-level ``await`` works, as in IPython."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self.ns: dict[str, Any] = {"__name__": "__seed__", "asyncio": asyncio}
        self.loop = asyncio.new_event_loop()

    def run(self, snippet: str, **replace: str) -> str:
        source = snippet
        for old, new in replace.items():
            source = source.replace(old, new)
        source = source.replace(HOSTED, self.url).replace(PLACEHOLDER, self.token)
        code = compile(source, "<seed>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            result = eval(code, self.ns)
            if asyncio.iscoroutine(result):
                self.loop.run_until_complete(result)
        return out.getvalue()

    def close(self) -> None:
        """Cancel what is left (the SDK's pool watchers close their pools), then close,
        as ``asyncio.run`` does; a loop closed with pending tasks warns when they are
        garbage-collected."""
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.wait(pending))
        self.loop.close()


@pytest.fixture(scope="module")
def gateway() -> Iterator[tuple[ReferenceGateway, str]]:
    gw = ReferenceGateway(GatewayConfig(secret=SECRET))
    with serve(gw) as url:
        yield gw, url


@pytest.fixture
def notebook(gateway: tuple[ReferenceGateway, str]) -> Iterator[Notebook]:
    gw, url = gateway
    nb = Notebook(url, gw.mint_token("seed-tenant"))
    yield nb
    nb.close()


def test_quick_start_prints_the_answer(notebook: Notebook) -> None:
    out = notebook.run(QUICK_START)
    assert out.strip(), "the quick start printed no answer"
    assert "contract #123" in out or len(out.strip()) > 5


def test_rung_1_base_url_swap(notebook: Notebook) -> None:
    notebook.run(RUNG_1)
    client = notebook.ns["client"]
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-5.4-mini", messages=[{"role": "user", "content": "rung one"}]
    )
    assert raw.status_code == 200
    # No X-CacheCore-Token: the gateway answers in BYPASS mode (PROTOCOL.md section 1).
    assert raw.headers["x-cache"] == "BYPASS"
    assert raw.parse().choices[0].message.content


def test_rung_2_tenant_isolation(notebook: Notebook, gateway: tuple[ReferenceGateway, str]) -> None:
    gw, _ = gateway
    notebook.ns["user"] = types.SimpleNamespace(cachecore_token=gw.mint_token("rung2-user"))
    notebook.run(RUNG_2)
    cc = notebook.ns["cc"]
    assert cc.tenant_id == "rung2-user"
    ask = 'r = await openai.chat.completions.with_raw_response.create(model="m", messages=[{"role": "user", "content": "rung two"}])\nprint(r.headers["x-cache"])'
    assert notebook.run(ask).strip() == "MISS"
    assert notebook.run(ask).strip() == "HIT_L1"
    assert gw.entry_count("rung2-user") >= 1


def test_rung_3_bypass_bulk_and_async_with(
    notebook: Notebook, gateway: tuple[ReferenceGateway, str]
) -> None:
    gw, _ = gateway
    assert notebook.run(RUNG_3).strip() == "True"
    assert gw.dep_version("seed-tenant", "doc:contract-123") == "v2"

    before = gw.entry_count("seed-tenant")
    notebook.run(BYPASS)
    assert gw.entry_count("seed-tenant") == before, "a bypassed call must store nothing"

    out = notebook.run(BULK)
    assert out.split("\n")[:2] == ["table:products True", "table:prices True"]
    assert gw.dep_version("seed-tenant", "table:prices") == "2024-03-15"

    notebook.run(ASYNC_WITH)
    assert notebook.ns["cc"].is_closed, "async with must close the client"


def test_reading_cache_status(notebook: Notebook) -> None:
    notebook.run(RUNG_3)
    ask = 'httpx_response = await openai.chat.completions.with_raw_response.create(model="m", messages=[{"role": "user", "content": "status please"}])'
    notebook.run(ask)
    notebook.run(ask)
    lines = notebook.run(STATUS).split()
    assert lines[0] == "HIT_L1"
    assert float(lines[1]) == 0.0
    assert int(lines[2]) >= 0


def test_error_handling_catches_auth_error(notebook: Notebook) -> None:
    # A token the gateway refuses: well formed, but signed with another secret.
    from cachecore.testing import mint_token

    bad = mint_token("not-the-gateway-secret", "seed-tenant")
    notebook.ns["user"] = types.SimpleNamespace(cachecore_token=bad)
    notebook.run(RUNG_2)
    notebook.ns["caught"] = None
    snippet = error_snippet().replace(
        "    # JWT is invalid or expired (401/403)\n    pass",
        "    # JWT is invalid or expired (401/403)\n    caught = 'auth'",
    )
    notebook.run(snippet)
    assert notebook.ns["caught"] == "auth"


def test_error_handling_catches_rate_limit() -> None:
    gw = ReferenceGateway(GatewayConfig(secret=SECRET, rate_limit=1.0, rate_burst=1))
    with serve(gw) as url:
        nb = Notebook(url, gw.mint_token("limited"))
        try:
            # 1.x/2.x retry a returned 429 after Retry-After (1 s here), and under 3.x
            # the transport does: by then the bucket has refilled, so the error only
            # shows when the limit outlasts the retries; here, with no retries.
            nb.run(RUNG_3, **{"    tenant_jwt=": "    max_retries=0,\n    tenant_jwt="})
            if OPENAI_MAJOR < 3:
                nb.ns["openai"] = nb.ns["openai"].with_options(max_retries=0)
            nb.ns["caught"] = None
            snippet = error_snippet().replace(
                "    if e.retry_after:", "    caught = e.retry_after\n    if e.retry_after:"
            )
            nb.run(snippet)
            assert nb.ns["caught"] is not None
            assert 0 < nb.ns["caught"] <= 2
        finally:
            nb.close()
