"""The httpx transport that steers the gateway on every LLM call.

Plugged under any OpenAI-compatible SDK (``httpx.AsyncClient(transport=cc.transport)``)
it adds the tenant token and the active context's deps to requests for the
gateway's origin, strips them from every other request (other hosts,
cross-origin redirects), and turns the gateway's 401/403/429 into typed errors.
Response bodies are never buffered: streams pass straight through.
"""

from __future__ import annotations

import httpx

from .. import _proxy, _wire
from .._config import Origin, TokenProvider, TokenSource, check_gateway_errors, resolve_gateway_url
from .._context import current_frame

__all__ = ["AsyncCachecoreTransport"]

_DROP_TOKEN = frozenset({_wire.TOKEN_HEADER_LC.encode("ascii")})
_DROP_BOTH = frozenset(
    {_wire.TOKEN_HEADER_LC.encode("ascii"), _wire.DEPS_HEADER_LC.encode("ascii")}
)


class AsyncCachecoreTransport(httpx.AsyncBaseTransport):
    """Adds Cachecore headers to gateway requests; made by ``CachecoreClient.transport``."""

    def __init__(
        self,
        *,
        gateway_url: str | httpx.URL,
        tenant_jwt: TokenSource | TokenProvider | None = None,
        inner_transport: httpx.AsyncBaseTransport | None = None,
        gateway_errors: _proxy.GatewayErrors = "auto",
        stats: _proxy.StatsRecorder | None = None,
        debug: bool = False,
        http2: bool = False,
    ) -> None:
        url = (
            gateway_url if isinstance(gateway_url, httpx.URL) else resolve_gateway_url(gateway_url)
        )
        self._origin: Origin | None = Origin.of(url)
        self._token = (
            tenant_jwt if isinstance(tenant_jwt, TokenProvider) else TokenProvider(tenant_jwt)
        )
        self._owns_inner = inner_transport is None
        self._inner = inner_transport or httpx.AsyncHTTPTransport(http2=http2)
        self._errors = check_gateway_errors(gateway_errors)
        self._stats = stats
        self._debug = debug
        static = self._token.static
        self._token_entry = (
            None if static is None else _proxy.header_entry(_wire.TOKEN_HEADER, static)
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        headers = request.headers
        if self._origin is not None and not self._origin.matches(request.url):
            # Another host, or a redirect away from the gateway: nothing of ours goes there.
            _proxy.steer_headers(headers, (), _DROP_BOTH)
            return await self._inner.handle_async_request(request)

        frame = current_frame()
        token_entry = self._token_entry
        if token_entry is None:  # a rotating token: ask for the current one
            token_entry = _proxy.header_entry(_wire.TOKEN_HEADER, self._token.current())
        if frame is None:
            _proxy.steer_headers(headers, (token_entry,), _DROP_TOKEN)
        else:
            put = () if frame.bypass else (token_entry,)  # bypass: no token at all
            if frame.deps_entry is None:
                _proxy.steer_headers(headers, put, _DROP_TOKEN)
            else:
                _proxy.steer_headers(headers, (*put, frame.deps_entry), _DROP_BOTH)

        response = await self._inner.handle_async_request(request)

        if response.status_code in _proxy.ERROR_STATUSES:
            return await self._gateway_error(request, response, token_entry[2].decode("ascii"))
        if frame is not None:
            frame.record(response.headers)  # parsed into a CacheStatus when the handle is read
        if self._stats is not None:
            self._stats.observe(_wire.parse_cache_status(response.headers.get(_wire.CACHE_HEADER)))
        if self._debug:
            _proxy.log_response(request, response)
        return response

    async def _gateway_error(
        self, request: httpx.Request, response: httpx.Response, token: str
    ) -> httpx.Response:
        try:
            stream = response.stream  # raw bytes, even if the inner transport read them
            assert isinstance(stream, httpx.AsyncByteStream)
            raw = b"".join([chunk async for chunk in stream])
        finally:
            await response.aclose()
        error = _proxy.gateway_error(request, response.status_code, response.headers, raw, token)
        if self._debug:
            _proxy.log_response(request, response)
        if _proxy.should_raise(self._errors, request):
            raise error
        return _proxy.passthrough(request, response, raw, error)

    async def aclose(self) -> None:
        if self._owns_inner:
            await self._inner.aclose()

    def __repr__(self) -> str:
        origin = self._origin
        where = f"{origin.scheme}://{origin.host}:{origin.port}" if origin else "any origin"
        return f"{type(self).__name__}(gateway={where!r})"
