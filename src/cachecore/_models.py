"""Pydantic models shared by both twins: ``Dep``, ``CacheStatus``, ``InvalidateResult``.

They are values: frozen, hashable where it makes sense, validated on
construction so that a bad dependency id fails where it is written, not when
a request is sent.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import _wire
from .errors import CachecoreConfigError, CachecoreError

__all__ = ["CacheStats", "CacheStatus", "Dep", "InvalidateResult", "PingCheck", "PingResult"]


class Dep(BaseModel):
    """A data dependency a cached answer was built from.

    ``Dep("doc:contract-123")`` or ``Dep("table:prices", hash="2024-03-15")``.
    When the dependency is later invalidated with a ``new_hash`` different from
    ``hash``, every entry that declared it is evicted.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    dep_id: str
    expected_hash: str = _wire.DEFAULT_DEP_HASH

    def __init__(
        self,
        dep_id: str | None = None,
        hash: str | None = None,
        **data: Any,
    ) -> None:
        if dep_id is not None:
            data["dep_id"] = dep_id
        if hash is not None:
            data["expected_hash"] = hash
        try:
            super().__init__(**data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'Dep'} {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            )
            raise CachecoreConfigError(f"invalid Dep: {problems}") from None

    @field_validator("dep_id", "expected_hash", mode="before")
    @classmethod
    def _check_identifier(cls, value: object) -> object:
        reason = _wire.bad_identifier_reason(value)
        if reason is not None:
            raise ValueError(reason)
        return value

    @property
    def hash(self) -> str:
        """The version of the dependency this entry was built from (``expected_hash``)."""
        return self.expected_hash

    def __repr__(self) -> str:
        if self.expected_hash == _wire.DEFAULT_DEP_HASH:
            return f"Dep({self.dep_id!r})"
        return f"Dep({self.dep_id!r}, hash={self.expected_hash!r})"

    __str__ = __repr__


class CacheStatus(BaseModel):
    """What the gateway said about one response (PROTOCOL.md section 2)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    status: _wire.CacheStatusName = "UNKNOWN"
    similarity: float = 0.0
    age_seconds: int = 0
    namespace_hint: str | None = None
    #: The gateway's id for the call (``X-Request-Id``): quote it when asking why it missed.
    request_id: str | None = None

    @classmethod
    def from_headers(cls, headers: Any) -> CacheStatus:
        """Parse ``X-Cache``, ``X-Cache-Similarity``, ``X-Cache-Age``, ``X-Request-Id``.

        Accepts ``httpx.Headers``, ``httpx2`` headers, a plain mapping (looked up
        case-insensitively), or a response object with ``.headers`` (httpx,
        httpx2, openai's ``with_raw_response``). Never raises on malformed values.
        """
        return cls.model_construct(
            status=_wire.parse_cache_status(_wire.header_value(headers, _wire.CACHE_HEADER)),
            similarity=_wire.parse_similarity(_wire.header_value(headers, _wire.SIMILARITY_HEADER)),
            age_seconds=_wire.parse_age(_wire.header_value(headers, _wire.AGE_HEADER)),
            namespace_hint=_wire.header_value(headers, _wire.NAMESPACE_HINT_HEADER),
            request_id=_wire.header_value(headers, _wire.REQUEST_ID_HEADER),
        )

    from_response = from_headers

    @property
    def hit(self) -> bool:
        """True for any cache hit (L1, stale L1 or L2)."""
        return self.status in ("HIT_L1", "HIT_L1_STALE", "HIT_L2")


class InvalidateResult(BaseModel):
    """The outcome of invalidating one dependency. Never raised: read ``ok``.

    When ``ok`` is False, ``error`` says why and ``exception`` holds the typed
    error (``raise_for_error()`` raises it).
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, defer_build=True)

    dep_id: str
    ok: bool
    new_hash: str
    status_code: int | None = None
    attempts: int = 1
    error: str | None = None
    exception: CachecoreError | None = Field(default=None, repr=False, exclude=True)

    def raise_for_error(self) -> InvalidateResult:
        """Raise the typed error when the invalidation failed, else return ``self``."""
        if self.exception is not None:
            raise self.exception
        return self


class CacheStats(BaseModel):
    """Running counts of what the gateway answered through one client's transport."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    requests: int = 0
    hits_l1: int = 0
    hits_l1_stale: int = 0
    hits_l2: int = 0
    misses: int = 0
    bypasses: int = 0
    unknown: int = 0

    @property
    def hits(self) -> int:
        return self.hits_l1 + self.hits_l1_stale + self.hits_l2

    @property
    def hit_rate(self) -> float:
        """Hits over hits plus misses (0.0 before the first cacheable answer)."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class PingCheck(BaseModel):
    """One line of ``ping()`` / ``cachecore doctor``: what was checked, and how it went."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    name: str
    ok: bool
    detail: str


class PingResult(BaseModel):
    """What ``ping()`` found: ``ok`` only if every check passed. Never holds the token."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    gateway_url: str
    ok: bool
    checks: tuple[PingCheck, ...]
    latency_ms: float | None = None
    tenant_id: str | None = None

    def __str__(self) -> str:
        return "\n".join(
            f"{'ok  ' if c.ok else 'FAIL'}  {c.name:<10}  {c.detail}" for c in self.checks
        )
