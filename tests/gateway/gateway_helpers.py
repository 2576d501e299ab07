"""Helpers shared by the gateway tests (a uniquely named module, not conftest)."""

from __future__ import annotations

from typing import Any

import httpx

from cachecore._wire import TOKEN_HEADER
from cachecore.testing import GatewayConfig, ReferenceGateway
from shared_constants import SECRET


class FakeClock:
    """A monotonic clock tests move by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_gateway(**kwargs: Any) -> ReferenceGateway:
    return ReferenceGateway(GatewayConfig(secret=SECRET, **kwargs))


def body(content: str, model: str = "gpt-4o-mini", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def chat(
    client: httpx.Client,
    token: str | None,
    content: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> httpx.Response:
    """POST a one-message chat request in cache mode (``token=None``: no token header)."""
    sent = dict(headers or {})
    if token is not None:
        sent[TOKEN_HEADER] = token
    return client.post("/v1/chat/completions", json=body(content, **extra), headers=sent)


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The OpenAI-style error object; fails unless the body has that shape."""
    assert response.headers["content-type"] == "application/json"
    err = response.json()["error"]
    assert isinstance(err["message"], str)
    assert err["message"]
    assert isinstance(err["type"], str)
    assert isinstance(err["code"], str)
    return dict(err)
