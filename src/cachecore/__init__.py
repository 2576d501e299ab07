"""Cachecore: tenant-scoped LLM caching for any OpenAI-compatible SDK.

``CachecoreClient`` (async) and ``SyncCachecoreClient`` (sync) give you a
transport to plug under the SDK, ``request_context`` to declare deps or bypass
the cache per call, and ``invalidate``/``invalidate_many`` for when data changes.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from ._async import AsyncCachecoreTransport, CachecoreClient
from ._context import RequestContext, RequestHandle
from ._models import CacheStats, CacheStatus, Dep, InvalidateResult
from ._retry import RetryPolicy
from ._sync import SyncCachecoreClient, SyncCachecoreTransport
from ._tokens import TokenInfo
from .errors import (
    CachecoreAPIError,
    CachecoreAuthError,
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

#: 0.1.0 name -> its replacement. They keep working, with a DeprecationWarning.
_DEPRECATED = {
    "CacheCoreClient": "CachecoreClient",
    "CacheCoreTransport": "CachecoreClient(...).transport",
    "DepDeclaration": "Dep",
    "CacheCoreError": "CachecoreError",
    "CacheCoreAuthError": "CachecoreAuthError",
    "CacheCoreRateLimitError": "CachecoreRateLimitError",
}


def __getattr__(name: str) -> Any:
    replacement = _DEPRECATED.get(name)
    if replacement is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"cachecore.{name} is the 0.1.0 name, deprecated: use cachecore.{replacement} "
        "(docs/migration.md)",
        DeprecationWarning,
        stacklevel=2,
    )
    if name == "CacheCoreTransport":
        from ._compat import CacheCoreTransport

        return CacheCoreTransport
    return globals()[replacement]


__all__ = [
    "AsyncCachecoreTransport",
    "CacheStats",
    "CacheStatus",
    "CachecoreAPIError",
    "CachecoreAuthError",
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
]
