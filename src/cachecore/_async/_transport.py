"""The httpx transport that steers the gateway on every LLM call.

Plugged under any OpenAI-compatible SDK's HTTP client, ``httpx`` or ``httpx2``
(``httpx.AsyncClient(transport=cc.transport)``, openai 3.x's
``DefaultAsyncHttpxClient(transport=cc.transport)``), it adds the tenant token
and the active context's deps to requests for the gateway's origin, keeps them
off every other request (other hosts, cross-origin redirects), and turns the
gateway's 401/403/429 into typed errors. Response bodies are never buffered:
streams pass straight through.

How it stays invisible to the client above it:

- **Both libraries.** It dispatches on the request's library (``_httplib``): the
  copy it sends, the default connection pool, the answer and its errors are all
  of the library the request came in. A caller's ``inner_transport`` of the other
  library is bridged. Why dispatch rather than a second twin: ``_httplib``.
- **The caller's request is never written into.** Our headers go on a copy that
  only the inner transport sees; httpx's redirects, event hooks and
  ``response.request`` see the caller's request as it was.
- **Lifecycle as every httpx wrapper.** A transport built directly owns the
  inner transport it was given and forwards ``aclose`` and ``async with`` to it.
  ``cc.transport`` is shared by every client built on it, so closing those
  clients leaves it open; ``cc.aclose()`` closes it (``AsyncSharedCachecoreTransport``).
- **Event loops.** The default pools are per running loop (``AsyncPerLoop``), so
  a client made at module level works from every ``asyncio.run``.
- **429 under openai 3.x.** openai 1.x/2.x get the gateway's 429 back and retry
  it themselves; when the transport raises instead (openai 3.x, or
  ``gateway_errors="raise"``), it first retries the call itself, honouring
  ``Retry-After`` per the ``RetryPolicy``, so no SDK loses the retry it had.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from types import ModuleType, TracebackType
from typing import Any, cast

import httpx

from .. import _httplib, _steering, _wire
from .._auth import Origin, TokenProvider, TokenSource
from .._concurrency import AsyncPerLoop, async_sleep
from .._config import GatewayErrors, check_gateway_errors, check_retry_policy, resolve_gateway_url
from .._context import current_frame
from .._retry import RetryPolicy
from .._stats import StatsRecorder
from ..errors import (
    CachecoreAPIError,
    CachecoreClosedError,
    CachecoreConfigError,
    CachecoreRateLimitError,
)

__all__ = ["AsyncCachecoreTransport", "AsyncSharedCachecoreTransport"]


class AsyncCachecoreTransport(httpx.AsyncBaseTransport):
    """Adds Cachecore headers to gateway requests.

    ``CachecoreClient.transport`` is the usual way to get one. Built directly,
    it owns ``inner_transport`` (default: a pooled HTTP transport per library
    and event loop) and closes it when it is closed.
    """

    def __init__(
        self,
        *,
        gateway_url: str | httpx.URL,
        tenant_jwt: TokenSource | TokenProvider | None = None,
        inner_transport: httpx.AsyncBaseTransport | None = None,
        gateway_errors: GatewayErrors = "auto",
        retry_policy: RetryPolicy | None = None,
        stats: StatsRecorder | None = None,
        debug: bool = False,
        http2: bool = False,
    ) -> None:
        url = (
            gateway_url if isinstance(gateway_url, httpx.URL) else resolve_gateway_url(gateway_url)
        )
        self._origin = Origin.of(url)
        self._warned: set[bytes] = set()  # hosts already warned about (look-alike calls)
        self._token = (
            tenant_jwt if isinstance(tenant_jwt, TokenProvider) else TokenProvider(tenant_jwt)
        )
        method = "handle_async_request"
        if inner_transport is not None and not callable(getattr(inner_transport, method, None)):
            raise CachecoreConfigError(
                f"inner_transport must be a transport of this client's kind, with {method}(); "
                f"got {type(inner_transport).__name__}"
            )
        self._inner = inner_transport
        self._inner_lib = _httplib.library_of_transport(inner_transport)
        self._owns_inner = True
        self._http2 = http2
        self._pools: dict[str, AsyncPerLoop[Any]] = {}  # library name -> its pools
        self._closed = False
        self._errors = check_gateway_errors(gateway_errors)
        self._retry = check_retry_policy(retry_policy)
        self._stats = stats
        self._debug = debug
        static = self._token.static
        self._token_item: _steering.HeaderItem | None = (
            None if static is None else (_wire.TOKEN_HEADER, static)
        )

    # -- one request ------------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        lib = _httplib.library_of(request)
        if not self._origin.matches(request.url) and not self._origin.is_alias(request.url):
            # Another host, or a redirect away from the gateway: nothing of ours goes there.
            _steering.warn_if_meant_for_gateway(request.url, self._origin, self._warned)
            if _steering.carries_ours(request):
                request = _steering.outgoing(request, lib, (), _steering.OUR_HEADERS)
            return cast(httpx.Response, await self._send(request, lib))

        frame = current_frame()
        token = self._token_item or (_wire.TOKEN_HEADER, self._token.current())
        bypassed = frame is not None and frame.bypass  # no token at all
        put: tuple[_steering.HeaderItem, ...] = () if bypassed else (token,)
        drop = _steering.TOKEN_ONLY if bypassed else _steering.NOTHING
        if frame is not None and frame.deps_item is not None:
            put = (*put, frame.deps_item)
        response = await self._send_to_gateway(_steering.outgoing(request, lib, put, drop), lib)

        attempt = 1
        while response.status_code in _wire.ERROR_STATUSES:
            answer, raw, error = await self._gateway_error(request, response, lib, token, bypassed)
            if not _steering.should_raise(self._errors, request):
                return cast(httpx.Response, _steering.passthrough(request, answer, lib, raw, error))
            delay = self._retry_delay(request, error, attempt)
            if delay is None:
                raise error
            body = _steering.replayable_body(request, lib)
            if body is None:
                if self._errors == "auto":  # an upload: the SDK rebuilds the body if it retries
                    return cast(
                        httpx.Response, _steering.passthrough(request, answer, lib, raw, error)
                    )
                raise error
            await async_sleep(delay)
            attempt += 1
            outgoing = _steering.outgoing(request, lib, put, drop, body)
            response = await self._send_to_gateway(outgoing, lib)

        if frame is not None:
            frame.record(response.headers)  # parsed into a CacheStatus when the handle is read
        if self._stats is not None:
            self._stats.observe(_wire.parse_cache_status(response.headers.get(_wire.CACHE_HEADER)))
        if self._debug:
            _steering.log_response(request, response, () if frame is None else frame.deps)
        return cast(httpx.Response, response)

    async def _send_to_gateway(self, request: Any, lib: ModuleType) -> Any:
        """``_send``; a failure to connect names the gateway (the SDK shows it as the cause)."""
        try:
            return await self._send(request, lib)
        except (lib.ConnectError, lib.ConnectTimeout) as exc:
            raise _steering.unreachable(exc, lib, request, self._origin) from exc

    async def _send(self, request: Any, lib: ModuleType) -> Any:
        if self._closed:
            raise CachecoreClosedError(
                f"{self!r} is closed (closed directly, by an HTTP client it owned, "
                "or by its CachecoreClient): make a new one"
            )
        inner = self._inner
        if inner is None:
            return await self._pool(lib).get().handle_async_request(request)
        return await send_through(inner, self._inner_lib, request, lib)

    def _pool(self, lib: ModuleType) -> AsyncPerLoop[Any]:
        pools = self._pools.get(lib.__name__)
        if pools is None:
            http2 = self._http2
            pools = self._pools.setdefault(
                lib.__name__,
                AsyncPerLoop(lambda: lib.AsyncHTTPTransport(http2=http2), _close_transport),
            )
        return pools

    async def _gateway_error(
        self,
        request: Any,
        response: Any,
        lib: ModuleType,
        token: _steering.HeaderItem,
        bypassed: bool,
    ) -> tuple[Any, bytes, CachecoreAPIError]:
        """The answer to hand back (body read), its body, and the typed error it means."""
        body = _httplib.read_body(response)
        if body is not None:  # the inner transport read it: its stream is spent
            response = _httplib.decoded_response(response, lib, body)
        else:
            try:
                # The raw bytes, still content-encoded, as the headers say.
                body = b"".join([c async for c in cast(AsyncIterable[bytes], response.stream)])
            finally:
                await response.aclose()
        if self._debug:
            _steering.log_response(request, response)
        error = _steering.gateway_error(request, response, lib, body, token[1], bypassed)
        return response, body, error

    def _retry_delay(self, request: Any, error: CachecoreAPIError, attempt: int) -> float | None:
        """Seconds to wait before retrying a raised 429, or ``None`` to raise it now.

        openai 1.x/2.x retry what they get (the 429 returned, or the raised error,
        as a connection error): a retry here would multiply theirs. A
        ``Retry-After`` above ``RetryPolicy.max_retry_after`` is raised at once, as
        openai does above its own maximum: retrying sooner than the gateway asked
        would only be refused again, and the caller should decide whether to wait.
        A body that cannot be replayed (an upload, a generator) is the caller's
        next question (``_steering.replayable_body``).
        """
        if not isinstance(error, CachecoreRateLimitError) or _steering.sdk_retries(request):
            return None
        if error.retry_after is not None and error.retry_after > self._retry.max_retry_after:
            return None
        return self._retry.delay(error, attempt)

    # -- lifecycle ---------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the inner transport (when this transport owns it) and the default pools."""
        if self._owns_inner and self._inner is not None:
            await self._inner.aclose()  # every transport has it (httpx's BaseTransport)
        await self._close_pools()

    async def _close_pools(self) -> None:
        self._closed = True
        for pools in list(self._pools.values()):
            await pools.aclose()

    async def __aenter__(self) -> AsyncCachecoreTransport:
        # getattr: an inner transport that only has handle_async_request and
        # aclose (no base class) is accepted too.
        enter = getattr(self._inner, "__aenter__", None) if self._owns_inner else None
        if enter is not None:
            await enter()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        exit_ = getattr(self._inner, "__aexit__", None) if self._owns_inner else None
        if exit_ is not None:
            await exit_(exc_type, exc_value, traceback)
        elif self._owns_inner and self._inner is not None:
            await self._inner.aclose()
        await self._close_pools()

    def __repr__(self) -> str:
        where = str(self._origin)
        return f"{type(self).__name__}(gateway={where!r})"


class AsyncSharedCachecoreTransport(AsyncCachecoreTransport):
    """``CachecoreClient.transport``: shared by every HTTP client built on it.

    An httpx client closes its transport when it is closed or leaves
    ``async with``; one client closing must not break ``cc`` nor the other
    clients on the same transport. So ``aclose`` and ``async with`` do nothing
    here, and ``cc.aclose()`` calls ``shutdown()``. An ``inner_transport`` given
    to the client is borrowed: whoever made it closes it.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._owns_inner = False

    async def aclose(self) -> None:
        """Nothing: ``cc.aclose()`` closes the shared transport."""

    async def __aenter__(self) -> AsyncSharedCachecoreTransport:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        """Nothing: ``cc.aclose()`` closes the shared transport."""

    async def shutdown(self) -> None:
        """Close the pools this transport opened (called by ``cc.aclose()``)."""
        await super().aclose()


async def send_through(
    inner: Any, inner_lib: ModuleType | None, request: Any, lib: ModuleType
) -> Any:
    """Hand ``request`` (of ``lib``) to ``inner``, bridging libraries where they differ."""
    if inner_lib is None or inner_lib is lib:
        return await inner.handle_async_request(request)
    try:
        response = await inner.handle_async_request(_httplib.bridge_request(request, inner_lib))
    except inner_lib.RequestError as exc:
        translated = _httplib.translate_error(exc, lib, request)
        if translated is exc:
            raise
        raise translated from exc
    return _httplib.bridge_response(response, lib, request)


async def _close_transport(transport: Any) -> None:
    await transport.aclose()
