"""A scripted stand-in for the gateway, plugged in as an ``httpx.MockTransport`` handler."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import httpx

from cachecore import _wire

GATEWAY = "http://gw.test"


def _libraries() -> list[ModuleType]:
    """httpx, and httpx2 (openai 3.x's HTTP library) wherever it is installed.

    The test extra declares it for Python 3.11+, where a missing one must fail,
    not skip; on 3.10 it comes with openai 3.x when that installs, and the floors
    session runs without it.
    """
    if sys.version_info < (3, 11):
        try:
            import httpx2
        except ImportError:
            return [httpx]
        return [httpx, httpx2]
    import httpx2

    return [httpx, httpx2]


#: The HTTP libraries the transport is tested under.
LIBRARIES = _libraries()

Step = Callable[[httpx.Request], httpx.Response] | BaseException


def b64url(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def make_token(
    tenant_id: str | None = "tenant-a", prefix: str = "cc_live_k1", **claims: Any
) -> str:
    """A tenant token the SDK can read (the signature is never checked client-side)."""
    payload = {"tenant_id": tenant_id, **claims} if tenant_id is not None else dict(claims)
    jwt = f"{b64url({'alg': 'HS256', 'typ': 'JWT'})}.{b64url(payload)}.c2lnbmF0dXJlLWZvci10ZXN0cw"
    return f"{prefix}.{jwt}" if prefix else jwt


TOKEN = make_token()


def chat_completion(content: str = "hello") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-test",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }


def reply(
    status: int = 200,
    *,
    headers: dict[str, str] | None = None,
    json_body: Any = None,
    text: str | None = None,
) -> Callable[[httpx.Request], httpx.Response]:
    """A step answering with a fresh response each time it runs."""

    def step(request: httpx.Request) -> httpx.Response:
        if text is not None:
            return httpx.Response(status, headers=headers, text=text)
        body = chat_completion() if json_body is None else json_body
        return httpx.Response(status, headers=headers, json=body)

    return step


def hit(status: str = "HIT_L1") -> Callable[[httpx.Request], httpx.Response]:
    return reply(headers={_wire.CACHE_HEADER: status})


class Gateway:
    """Records every request it gets and answers from a script, then from ``default``."""

    def __init__(self, *script: Step, default: Step | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.script = list(script)
        self.default = default if default is not None else hit("MISS")

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.script.pop(0) if self.script else self.default
        if isinstance(step, BaseException):
            raise step
        return step(request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def deps_of(self, request: httpx.Request) -> list[tuple[str, str]] | None:
        value = request.headers.get(_wire.DEPS_HEADER)
        return None if value is None else _wire.decode_deps(value)

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) for r in self.requests]
