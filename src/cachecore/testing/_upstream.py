"""Where cache misses and bypassed calls go: an offline model or a real API.

Upstreams return a complete ``chat.completion`` object even when the caller
streams; the gateway caches that object and streams it itself. This keeps the
upstream interface narrow and makes a streamed miss cacheable.

An upstream may also have ``async def acomplete(request)``: the async faces
(the ASGI server, ``async_transport()``) then await it on the event loop, so a
hundred slow misses cost a hundred sockets, not a hundred threads. Without it, a
``blocking`` upstream's ``complete`` runs in a worker thread (at most
``GatewayConfig.upstream_concurrency`` at once) and a non-blocking one inline.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from typing import Any, Protocol

import anyio.to_thread
import httpx

from cachecore._concurrency import AsyncPerLoop
from cachecore._wire import AUTHORIZATION_HEADER
from cachecore.testing._openai_format import DELIVERY_FIELDS, last_user_text, prompt_text


class UpstreamError(Exception):
    """The upstream failed; the gateway answers 502 with this message."""


class Upstream(Protocol):
    """What the gateway calls on a miss or in bypass mode (``acomplete`` optional, above)."""

    #: True when ``complete`` does network I/O: async faces then call it in a thread
    #: (unless the upstream also has ``acomplete``).
    blocking: bool
    #: Seconds the faces wait before answering a call that reached this upstream.
    latency: float

    def complete(self, request: dict[str, Any]) -> dict[str, Any]: ...


class OfflineModel:
    """A deterministic stand-in for an LLM: same request, same answer, no network.

    The answer quotes the last user message and a short digest of the whole
    prompt, so different prompts give visibly different answers. ``calls``
    counts invocations: tests use it to prove a hit never reached the model.
    """

    blocking = False

    def __init__(self, latency: float = 0.0) -> None:
        if latency < 0:
            raise ValueError("latency must be >= 0 seconds")
        self.latency = latency
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self.calls = 0

    def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
            serial = next(self._counter)
        prompt = prompt_text(request)
        digest = hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:8]
        answer = f"Offline answer {digest} to: {last_user_text(request)[:200]}"
        prompt_tokens = len(prompt.split())
        completion_tokens = len(answer.split())
        return {
            "id": f"chatcmpl-offline-{digest}-{serial}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


class HTTPUpstream:
    """Forward to a real OpenAI-compatible API (``base_url`` ends in ``/v1``).

    Always asks non-streaming (see the module docstring). The sync faces use an
    ``httpx.Client``; the async faces an ``httpx.AsyncClient`` per event loop
    (``acomplete``), so waiting on the API never takes a thread. ``transport`` and
    ``async_transport`` let tests point it at another in-process gateway (with
    ``transport`` alone, the async faces call ``complete`` in a worker thread).
    """

    blocking = True
    latency = 0.0

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 120.0,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._url = f"{self.base_url}/chat/completions"
        self._headers = {AUTHORIZATION_HEADER: f"Bearer {api_key}"}
        self._timeout = timeout
        self._client = httpx.Client(timeout=timeout, transport=transport, headers=self._headers)
        self._async_transport = async_transport
        self._sync_only = transport is not None
        self._async_clients: AsyncPerLoop[httpx.AsyncClient] = AsyncPerLoop(
            self._new_async_client, _aclose
        )

    def _new_async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self._timeout, transport=self._async_transport, headers=self._headers
        )

    def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._client.post(self._url, json=_upstream_body(request))
        except httpx.HTTPError as exc:
            raise UpstreamError(f"upstream unreachable: {type(exc).__name__}") from None
        return _completion_of(response)

    async def acomplete(self, request: dict[str, Any]) -> dict[str, Any]:
        if self._async_transport is None and self._sync_only:
            # Only a sync ``transport`` was given: honour it, from a worker thread.
            return await anyio.to_thread.run_sync(self.complete, request)
        client = self._async_clients.get()
        try:
            response = await client.post(self._url, json=_upstream_body(request))
        except httpx.HTTPError as exc:
            raise UpstreamError(f"upstream unreachable: {type(exc).__name__}") from None
        return _completion_of(response)

    def close(self) -> None:
        self._client.close()

    async def aclose(self) -> None:
        """Close the running event loop's client (others close when their loops end)."""
        await self._async_clients.aclose()


async def _aclose(client: httpx.AsyncClient) -> None:
    await client.aclose()


def _upstream_body(request: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in request.items() if k not in DELIVERY_FIELDS}


def _completion_of(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        raise UpstreamError(f"upstream answered HTTP {response.status_code}")
    try:
        completion = response.json()
    except ValueError:
        raise UpstreamError("upstream answered something that is not JSON") from None
    if not isinstance(completion, dict) or not isinstance(completion.get("choices"), list):
        raise UpstreamError("upstream answered JSON that is not a chat.completion")
    return completion
