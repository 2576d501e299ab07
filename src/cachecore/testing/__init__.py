"""The Cachecore reference gateway, for tests, demos and offline use (PROTOCOL.md section 6).

One core with two faces: in-process httpx transports (no sockets) and an ASGI
app served on loopback by uvicorn (``serve``, extra ``cachecore-python[gateway]``)::

    secret = secrets.token_urlsafe(32)  # GatewayConfig wants at least 32 bytes
    gateway = ReferenceGateway(GatewayConfig(secret=secret))
    token = mint_token(secret, "tenant-a")
    client = httpx.Client(transport=gateway.transport(), base_url="http://cachecore.test")

Neither uvicorn nor numpy is imported until a server or an L2 index needs it.
"""

from __future__ import annotations

from cachecore.testing._config import GatewayConfig
from cachecore.testing._embed import Embedder, NgramEmbedder
from cachecore.testing._faults import Fault, FaultHook
from cachecore.testing._gateway import GatewayStats, RecordedRequest, ReferenceGateway
from cachecore.testing._http import IN_PROCESS_URL, GatewayRequest, GatewayResponse
from cachecore.testing._jwt import Claims, TokenRejected, mint_token, verify_token
from cachecore.testing._limits import ServerLimits
from cachecore.testing._server import serve
from cachecore.testing._upstream import HTTPUpstream, OfflineModel, Upstream, UpstreamError

__all__ = [
    "IN_PROCESS_URL",
    "Claims",
    "Embedder",
    "Fault",
    "FaultHook",
    "GatewayConfig",
    "GatewayRequest",
    "GatewayResponse",
    "GatewayStats",
    "HTTPUpstream",
    "NgramEmbedder",
    "OfflineModel",
    "RecordedRequest",
    "ReferenceGateway",
    "ServerLimits",
    "TokenRejected",
    "Upstream",
    "UpstreamError",
    "mint_token",
    "serve",
    "verify_token",
]
