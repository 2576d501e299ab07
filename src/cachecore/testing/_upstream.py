"""Where cache misses and bypassed calls go: an offline model or a real API.

Upstreams return a complete ``chat.completion`` object even when the caller
streams; the gateway caches that object and streams it itself. This keeps the
upstream interface one method wide and makes a streamed miss cacheable.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from typing import Any, Protocol

import httpx

from cachecore._wire import AUTHORIZATION_HEADER
from cachecore.testing._openai_format import DELIVERY_FIELDS, last_user_text, prompt_text


class UpstreamError(Exception):
    """The upstream failed; the gateway answers 502 with this message."""


class Upstream(Protocol):
    """What the gateway calls on a miss or in bypass mode."""

    #: True when ``complete`` does network I/O: async faces then call it in a thread.
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

    Always asks non-streaming (see the module docstring); ``transport`` lets
    tests point it at another in-process gateway.
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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            timeout=timeout,
            transport=transport,
            headers={AUTHORIZATION_HEADER: f"Bearer {api_key}"},
        )

    def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in request.items() if k not in DELIVERY_FIELDS}
        try:
            response = self._client.post(f"{self.base_url}/chat/completions", json=body)
        except httpx.HTTPError as exc:
            raise UpstreamError(f"upstream unreachable: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise UpstreamError(f"upstream answered HTTP {response.status_code}")
        try:
            completion = response.json()
        except ValueError:
            raise UpstreamError("upstream answered something that is not JSON") from None
        if not isinstance(completion, dict) or not isinstance(completion.get("choices"), list):
            raise UpstreamError("upstream answered JSON that is not a chat.completion")
        return completion

    def close(self) -> None:
        self._client.close()
