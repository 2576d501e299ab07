"""The reference gateway's settings, checked once at construction."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from cachecore._invalidation import new_version
from cachecore.testing._embed import Embedder
from cachecore.testing._jwt import secret_problem
from cachecore.testing._upstream import Upstream

#: The least ``max_dep_chars``: ``invalidate()``'s default new hash (a UUID's hex) fits.
MIN_DEP_CHARS = len(new_version())

#: The largest ``exp`` leeway allowed: more would make expiry meaningless.
MAX_LEEWAY_SECONDS = 300.0


@dataclass(frozen=True)
class GatewayConfig:
    """How a ``ReferenceGateway`` behaves.

    - ``secret``: the HS256 secret tenant tokens are signed with: at least 32 bytes
      (RFC 7518 section 3.2), not only whitespace. Make one with
      ``python -c "import secrets; print(secrets.token_urlsafe(32))"``.
    - ``l2_threshold``: minimum cosine similarity for an L2 hit; ``None`` turns L2 off.
    - ``rate_limit``: requests per second per tenant (token bucket); 0 turns it off.
      ``rate_burst`` is the bucket size (default: the rate rounded up, at least 1).
    - ``max_entries``: entries kept per tenant; the least recently used go first.
      Dep versions recorded by invalidations are bounded by the same number.
    - ``max_tenant_bytes``: bytes one tenant's entries and dep versions may hold
      (an estimate: completion JSON, key, deps, vector, overhead); LRU eviction.
    - ``max_total_bytes``: the same across all tenants, ``None`` for no global cap;
      over it, the tenant holding the most bytes loses its least recently used entry.
    - ``ttl``: seconds an entry is served after it was written; ``None``: until evicted.
    - ``max_prompt_chars``: longest prompt text (role and content of every message)
      embedded for L2; longer prompts in cache mode get 413 (turn L2 off to cache them).
    - ``max_model_chars``, ``max_dep_chars``, ``max_deps``: longest model name, longest
      dep id or hash, most deps per request; more gets 400. ``max_dep_chars`` is at
      least ``MIN_DEP_CHARS`` (32): the SDK's default new hash is 32 characters.
    - ``cpu_workers``: threads for CPU-heavy work (embedding long prompts, parsing
      large bodies) in the async faces, so it never runs on the event loop.
    - ``upstream_concurrency``: upstream calls in flight at once through a blocking
      upstream (one without ``acomplete``), each in a worker thread.
    - ``max_body_bytes``: larger request bodies are refused with 413.
    - ``jwt_leeway``: seconds of clock skew tolerated on ``exp`` (0 to 300).
    - ``max_token_lifetime``: tokens expiring further than this many seconds from now
      (plus the leeway) are refused; ``None`` (default): no limit.
    - ``upstream``: where misses go (default: a fresh ``OfflineModel``).
    - ``embedder``: text to vector for L2 (default: ``NgramEmbedder()``).
    - ``blocked_tenants``: tenants whose valid tokens get 403.
    - ``use_numpy``: force (True) or forbid (False) numpy for L2; ``None`` picks it when installed.
    - ``clock``: seconds, monotonic; used for ``X-Cache-Age`` and the rate limiter,
      replaceable so tests can move time without sleeping.
    """

    secret: str | bytes
    l2_threshold: float | None = 0.87
    rate_limit: float = 0.0
    rate_burst: int | None = None
    max_entries: int = 10_000
    max_body_bytes: int = 1024 * 1024
    max_tenant_bytes: int = 64 * 1024 * 1024
    max_total_bytes: int | None = 512 * 1024 * 1024
    ttl: float | None = None
    max_prompt_chars: int = 200_000
    max_model_chars: int = 256
    max_dep_chars: int = 512
    max_deps: int = 64
    cpu_workers: int = 2
    upstream_concurrency: int = 64
    jwt_leeway: float = 30.0
    max_token_lifetime: float | None = None
    upstream: Upstream | None = None
    embedder: Embedder | None = None
    blocked_tenants: frozenset[str] = frozenset()
    use_numpy: bool | None = None
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        problem = secret_problem(self.secret)
        if problem is not None:
            raise ValueError(f"GatewayConfig.secret: {problem}")
        if self.max_token_lifetime is not None and not (
            math.isfinite(self.max_token_lifetime) and self.max_token_lifetime > 0
        ):
            raise ValueError("max_token_lifetime must be a positive number of seconds, or None")
        if self.l2_threshold is not None and not 0.0 < self.l2_threshold <= 1.0:
            raise ValueError("l2_threshold must be in (0, 1], or None to turn L2 off")
        if not math.isfinite(self.rate_limit) or self.rate_limit < 0:
            raise ValueError("rate_limit must be >= 0 requests per second (0 turns it off)")
        if self.rate_burst is not None and self.rate_burst < 1:
            raise ValueError("rate_burst must be >= 1")
        for name in (
            "max_entries",
            "max_body_bytes",
            "max_tenant_bytes",
            "max_prompt_chars",
            "max_model_chars",
            "max_dep_chars",
            "max_deps",
            "cpu_workers",
            "upstream_concurrency",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        if self.max_dep_chars < MIN_DEP_CHARS:
            raise ValueError(
                f"max_dep_chars must be >= {MIN_DEP_CHARS}, got {self.max_dep_chars}: the"
                f" SDK's default new hash for an invalidation is {MIN_DEP_CHARS} characters"
            )
        if self.max_total_bytes is not None and self.max_total_bytes < self.max_tenant_bytes:
            raise ValueError(
                "max_total_bytes must be >= max_tenant_bytes (or None for no global cap)"
            )
        if self.ttl is not None and not (math.isfinite(self.ttl) and self.ttl > 0):
            raise ValueError("ttl must be > 0 seconds, or None to keep entries until evicted")
        if not 0.0 <= self.jwt_leeway <= MAX_LEEWAY_SECONDS:
            raise ValueError(f"jwt_leeway must be between 0 and {MAX_LEEWAY_SECONDS:g} seconds")

    @property
    def burst(self) -> int:
        return self.rate_burst or max(1, math.ceil(self.rate_limit))
