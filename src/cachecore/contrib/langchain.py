"""LangChain: ``ChatOpenAI`` routed through Cachecore, with cache status it would hide.

LangChain returns messages, not HTTP responses, so ``X-Cache`` never reaches
your code. Run the call inside ``request_context`` and read the handle instead::

    from cachecore.contrib.langchain import chat_openai

    llm = chat_openai(sync_client=cc, async_client=acc, model="gpt-4o-mini",
                      api_key=token)
    with cc.request_context(deps=["doc:42"]) as handle:
        llm.invoke("Summarise doc 42")
    handle.last.status   # "MISS", then "HIT_L1" on the next identical call

``invoke`` goes through ``sync_client``'s transport and ``ainvoke`` through
``async_client``'s; either may be omitted if you only use one side. The same
``request_context`` works for both (a plain ``with``, also around ``await``).
``chat_openai_kwargs`` gives the keyword arguments alone, for ``ChatOpenAI``
subclasses or the plain ``openai`` SDK (drop ``http_async_client`` there).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from cachecore import CachecoreClient, SyncCachecoreClient
from cachecore.contrib import missing_extra
from cachecore.errors import CachecoreConfigError

if TYPE_CHECKING:
    from langchain_openai import ChatOpenAI

__all__ = ["chat_openai", "chat_openai_kwargs"]


def chat_openai_kwargs(
    sync_client: SyncCachecoreClient | None = None,
    async_client: CachecoreClient | None = None,
    *,
    api_key: str | Callable[[], str] | None = None,
) -> dict[str, Any]:
    """``base_url``, ``http_client`` / ``http_async_client`` (and ``api_key``) for ``ChatOpenAI``.

    The httpx clients own no connections of their own: closing the Cachecore
    client(s) closes everything. ``api_key`` is what the OpenAI SDK sends as
    ``Authorization: Bearer``; for Cachecore that is usually the tenant token too
    (a callable works with ``ChatOpenAI`` for rotating tokens).
    """
    if sync_client is None and async_client is None:
        raise CachecoreConfigError(
            "chat_openai_kwargs needs sync_client= (for invoke), async_client= (for ainvoke), or both"
        )
    urls = {c.gateway_url for c in (sync_client, async_client) if c is not None}
    if len(urls) > 1:
        raise CachecoreConfigError(
            f"sync_client and async_client point at different gateways ({', '.join(sorted(urls))}); "
            "give both the same gateway_url"
        )
    kwargs: dict[str, Any] = {"base_url": urls.pop() + "/v1"}
    if sync_client is not None:
        kwargs["http_client"] = httpx.Client(transport=sync_client.transport)
    if async_client is not None:
        kwargs["http_async_client"] = httpx.AsyncClient(transport=async_client.transport)
    if api_key is not None:
        kwargs["api_key"] = api_key
    return kwargs


def chat_openai(
    sync_client: SyncCachecoreClient | None = None,
    async_client: CachecoreClient | None = None,
    *,
    api_key: str | Callable[[], str] | None = None,
    **kwargs: Any,
) -> ChatOpenAI:
    """A ``langchain_openai.ChatOpenAI`` whose calls go through the Cachecore client(s).

    ``kwargs`` go to ``ChatOpenAI`` (``model=``, ``temperature=``, ...).
    """
    try:
        from langchain_openai import ChatOpenAI
    except ImportError as exc:
        raise missing_extra("langchain-openai", "langchain", exc) from exc
    options = chat_openai_kwargs(sync_client, async_client, api_key=api_key)
    options.update(kwargs)
    return ChatOpenAI(**options)
