"""Names and call forms of ``cachecore-python`` 0.1.0, kept so 0.1.0 code runs."""

from __future__ import annotations

import warnings
from typing import Any

import httpx

from ._async._transport import AsyncCachecoreTransport


class CacheCoreTransport(httpx.AsyncBaseTransport):
    """The 0.1.0 transport, kept so 0.1.0 code runs: ``CacheCoreTransport(jwt, wrapped=...)``.

    Without ``gateway_url`` it sends the token to every host, as 0.1.0 did; prefer
    ``CachecoreClient(...).transport``, which sends it to the gateway only.

    It wraps ``AsyncCachecoreTransport`` through its public constructor: with
    ``gateway_url``, one transport for that gateway; without, one per origin it is
    asked to reach, each built with that origin as its gateway, so every host gets
    the token (0.1.0's behaviour). It owns ``wrapped`` and closes it once.
    """

    def __init__(
        self,
        jwt: str,
        *,
        wrapped: httpx.AsyncBaseTransport | None = None,
        debug: bool = False,
        gateway_url: str | None = None,
    ) -> None:
        self._jwt = jwt
        self._wrapped = wrapped
        self._debug = debug
        self._closed = False
        self._gateway_url = gateway_url
        self._gateway: AsyncCachecoreTransport | None = None
        self._per_origin: dict[str, AsyncCachecoreTransport] = {}
        if gateway_url is not None:
            self._gateway = self._steering(gateway_url)
        else:
            warnings.warn(
                "CacheCoreTransport without gateway_url sends the tenant token to every host; "
                "use CachecoreClient(gateway_url=..., tenant_jwt=...).transport instead",
                DeprecationWarning,
                stacklevel=2,
            )

    def _steering(self, gateway_url: str) -> AsyncCachecoreTransport:
        return AsyncCachecoreTransport(
            gateway_url=gateway_url,
            tenant_jwt=self._jwt,
            inner_transport=self._wrapped,
            debug=self._debug,
        )

    def _for(self, url: Any) -> AsyncCachecoreTransport:
        if self._gateway is not None:
            return self._gateway
        origin = f"{url.scheme}://{url.netloc.decode('ascii')}"
        transport = self._per_origin.get(origin)
        if transport is None:
            transport = self._per_origin.setdefault(origin, self._steering(origin))
        return transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed: make a new one")
        return await self._for(request.url).handle_async_request(request)

    async def aclose(self) -> None:
        """Close ``wrapped`` (once), or the default pools when there is none."""
        self._closed = True
        if self._wrapped is not None:
            # Every steering transport was handed ``wrapped`` and holds nothing else:
            # close it once here rather than once per origin.
            await self._wrapped.aclose()
            return
        steering = [*self._per_origin.values()]
        if self._gateway is not None:
            steering.append(self._gateway)
        for transport in steering:
            await transport.aclose()

    def __repr__(self) -> str:
        where = self._gateway_url if self._gateway_url is not None else "every host"
        return f"CacheCoreTransport(token to {where!r})"
