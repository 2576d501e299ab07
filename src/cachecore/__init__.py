"""Cachecore: tenant-scoped LLM caching for any OpenAI-compatible SDK.

``CachecoreClient`` (async) and ``SyncCachecoreClient`` (sync) give you a
transport to plug under the SDK, ``request_context`` to declare deps or bypass
the cache per call, and ``invalidate``/``invalidate_many`` for when data changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._async import AsyncCachecoreTransport, CachecoreClient
from ._auth import TokenInfo
from ._context import RequestContext, RequestHandle
from ._deprecation import deprecated_names
from ._models import CacheStats, CacheStatus, Dep, InvalidateResult, PingCheck, PingResult
from ._retry import RetryPolicy
from ._sync import SyncCachecoreClient, SyncCachecoreTransport
from .errors import (
    CachecoreAPIError,
    CachecoreAuthError,
    CachecoreClosedError,
    CachecoreConfigError,
    CachecoreConnectionError,
    CachecoreError,
    CachecoreRateLimitError,
    CachecoreStatusError,
    CachecoreTimeoutError,
    typed_errors,
)

__version__ = "0.2.0"

if TYPE_CHECKING:  # type checkers see the 0.1.0 names; at run time __getattr__ serves them
    from ._compat import CacheCoreTransport as CacheCoreTransport

    CacheCoreClient = CachecoreClient
    DepDeclaration = Dep
    CacheCoreError = CachecoreError
    CacheCoreAuthError = CachecoreAuthError
    CacheCoreRateLimitError = CachecoreRateLimitError


def _transport_0_1_0() -> object:
    from ._compat import CacheCoreTransport

    return CacheCoreTransport


#: 0.1.0 name -> its replacement. They keep working, with a DeprecationWarning.
__getattr__ = deprecated_names(
    __name__,
    {
        "CacheCoreClient": ("CachecoreClient", lambda: CachecoreClient),
        "CacheCoreTransport": ("CachecoreClient(...).transport", _transport_0_1_0),
        "DepDeclaration": ("Dep", lambda: Dep),
        "CacheCoreError": ("CachecoreError", lambda: CachecoreError),
        "CacheCoreAuthError": ("CachecoreAuthError", lambda: CachecoreAuthError),
        "CacheCoreRateLimitError": ("CachecoreRateLimitError", lambda: CachecoreRateLimitError),
    },
)

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
    "PingCheck",
    "PingResult",
    "RequestContext",
    "RequestHandle",
    "RetryPolicy",
    "SyncCachecoreClient",
    "SyncCachecoreTransport",
    "TokenInfo",
    "__version__",
    "typed_errors",
]
