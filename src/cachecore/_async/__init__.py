"""The core's clients and transports: async written by hand, sync generated from it.

Edit only the async tree; ``codegen/make_sync.py`` writes the sync one (docs/architecture.md).
"""

from ._client import CachecoreClient
from ._transport import AsyncCachecoreTransport

__all__ = ["AsyncCachecoreTransport", "CachecoreClient"]
