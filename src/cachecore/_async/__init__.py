"""The hand-written async core. ``cachecore/_sync`` is generated from it: edit here."""

from ._client import CachecoreClient
from ._transport import AsyncCachecoreTransport

__all__ = ["AsyncCachecoreTransport", "CachecoreClient"]
