"""Cachecore: tenant-scoped LLM caching for any OpenAI-compatible SDK.

``CachecoreClient`` (async) and ``SyncCachecoreClient`` (sync) give you a
transport to plug under the SDK, ``request_context`` to declare deps or bypass
the cache per call, and ``invalidate``/``invalidate_many`` for when data changes.
"""

from __future__ import annotations

from ._async import AsyncCachecoreTransport, CachecoreClient
from ._auth import TokenInfo
from ._compat import CacheCoreTransport
from ._context import RequestContext, RequestHandle
from ._models import CacheStats, CacheStatus, Dep, InvalidateResult
from ._retry import RetryPolicy
from ._sync import SyncCachecoreClient, SyncCachecoreTransport
from .errors import (
    CachecoreAPIError,
    CacheCoreAuthError,
    CachecoreAuthError,
    CachecoreClosedError,
    CachecoreConfigError,
    CachecoreConnectionError,
    CacheCoreError,
    CachecoreError,
    CacheCoreRateLimitError,
    CachecoreRateLimitError,
    CachecoreStatusError,
    CachecoreTimeoutError,
    typed_errors,
)

__version__ = "0.2.0"

# 0.1.0 names keep working.
CacheCoreClient = CachecoreClient
DepDeclaration = Dep

__all__ = [
    "AsyncCachecoreTransport",
    "CacheStats",
    "CacheStatus",
    "CachecoreAPIError",
    "CachecoreAuthError",
    "CachecoreClosedError",
    "CachecoreClient",
    "CachecoreConfigError",
    "CachecoreConnectionError",
    "CachecoreError",
    "CachecoreRateLimitError",
    "CachecoreStatusError",
    "CachecoreTimeoutError",
    "Dep",
    "InvalidateResult",
    "RequestContext",
    "RequestHandle",
    "RetryPolicy",
    "SyncCachecoreClient",
    "SyncCachecoreTransport",
    "TokenInfo",
    "__version__",
    "typed_errors",
    # 0.1.0 names
    "CacheCoreAuthError",
    "CacheCoreClient",
    "CacheCoreError",
    "CacheCoreRateLimitError",
    "CacheCoreTransport",
    "DepDeclaration",
]
