"""Names and call forms of ``cachecore-python`` 0.1.0, kept so 0.1.0 code runs."""

from __future__ import annotations

import warnings

import httpx

from ._async._transport import AsyncCachecoreTransport


class CacheCoreTransport(AsyncCachecoreTransport):
    """The 0.1.0 transport, kept so 0.1.0 code runs: ``CacheCoreTransport(jwt, wrapped=...)``.

    Without ``gateway_url`` it sends the token to every host, as 0.1.0 did; prefer
    ``CachecoreClient(...).transport``, which sends it to the gateway only.
    """

    def __init__(
        self,
        jwt: str,
        *,
        wrapped: httpx.AsyncBaseTransport | None = None,
        debug: bool = False,
        gateway_url: str | None = None,
    ) -> None:
        super().__init__(
            gateway_url=gateway_url or "http://0.1.0-compat.invalid",
            tenant_jwt=jwt,
            inner_transport=wrapped,
            debug=debug,
        )
        if gateway_url is None:
            warnings.warn(
                "CacheCoreTransport without gateway_url sends the tenant token to every host; "
                "use CachecoreClient(gateway_url=..., tenant_jwt=...).transport instead",
                DeprecationWarning,
                stacklevel=2,
            )
            self._origin = None
