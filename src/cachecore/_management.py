"""Invalidation calls: request shape, outcome and failure reporting (no I/O).

Both twins send the request and sleep between attempts; everything they
decide (what counts as success, what failed and why, what gets logged) is
here, so the two cannot drift apart.
"""

from __future__ import annotations

import logging
import uuid

import httpx

from . import _wire
from ._models import InvalidateResult
from .errors import (
    CachecoreConnectionError,
    CachecoreError,
    CachecoreTimeoutError,
    error_for_status,
    redact,
)

logger = logging.getLogger("cachecore")


def new_version() -> str:
    """A fresh dependency version: generated once per dep, before any retry."""
    return uuid.uuid4().hex


def auth_headers(token: str) -> dict[str, str]:
    return {_wire.TOKEN_HEADER: token, _wire.AUTHORIZATION_HEADER: f"Bearer {token}"}


def error_from_response(response: httpx.Response, dep_id: str, token: str) -> CachecoreError | None:
    """``None`` for any 2xx, else the typed error the answer stands for."""
    if response.is_success:
        return None
    return error_for_status(
        response.status_code,
        response.text,
        retry_after=_wire.parse_retry_after(response.headers.get(_wire.RETRY_AFTER_HEADER)),
        request_id=response.headers.get(_wire.REQUEST_ID_HEADER),
        what=f"invalidating {dep_id!r}",
        token=token,
    )


def error_from_exception(exc: Exception, dep_id: str, token: str) -> CachecoreError:
    """The typed error for a call that got no answer (or broke mid-way)."""
    detail = redact(str(exc) or type(exc).__name__, token)
    if isinstance(exc, httpx.TimeoutException):
        err: CachecoreError = CachecoreTimeoutError(
            f"invalidating {dep_id!r} timed out ({type(exc).__name__}: {detail}); "
            "raise timeout= if the gateway is slow"
        )
    elif isinstance(exc, (httpx.TransportError, OSError)):
        err = CachecoreConnectionError(
            f"invalidating {dep_id!r} could not reach the gateway ({type(exc).__name__}: {detail}); "
            "check gateway_url and the network"
        )
    else:
        err = CachecoreError(f"invalidating {dep_id!r} failed ({type(exc).__name__}: {detail})")
    err.__cause__ = exc
    return err


def succeeded(
    dep_id: str, new_hash: str, response: httpx.Response, attempts: int
) -> InvalidateResult:
    return InvalidateResult(
        dep_id=dep_id,
        ok=True,
        new_hash=new_hash,
        status_code=response.status_code,
        attempts=attempts,
    )


def failed(dep_id: str, new_hash: str, error: CachecoreError, attempts: int) -> InvalidateResult:
    """The result of an invalidation that finally failed, logged at WARNING: never silent."""
    status = getattr(error, "status_code", None)
    logger.warning(
        "cachecore: invalidation of %r failed after %d attempt(s): %s", dep_id, attempts, error
    )
    return InvalidateResult(
        dep_id=dep_id,
        ok=False,
        new_hash=new_hash,
        status_code=status,
        attempts=attempts,
        error=str(error),
        exception=error,
    )
