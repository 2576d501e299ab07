"""One invalidation, attempt after attempt, as a sans-I/O generator both twins drive.

Modelled on psycopg's ``generators.py``/``waiting.py``: ``attempts()`` decides
everything (the request, what counts as success, which failures are retried and
after how long, the result and its WARNING) and yields what it needs done:

- ``Send``: post this body with these headers; the driver sends back the
  ``httpx.Response``, or the transport error (``TRANSPORT_ERRORS``) it got;
- ``Wait``: sleep this many seconds, then send back ``None``.

It returns the ``InvalidateResult``. The twins' loops only do the I/O, so they
cannot drift apart; any exception other than a transport error (a bug, a closed
client) propagates from the driver instead of becoming ``ok=False``::

    steps = _invalidation.attempts(dep_id, new_hash, token, policy)
    step = next(steps)
    while True:
        if isinstance(step, _invalidation.Wait):
            await async_sleep(step.seconds)
            step = steps.send(None)
            continue
        try:
            answer = await http.post(..., json=step.body, headers=step.headers)
        except _invalidation.TRANSPORT_ERRORS as exc:
            answer = exc
        step = steps.send(answer)   # StopIteration carries the result
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import httpx

from . import _wire
from ._models import InvalidateResult
from ._retry import RetryPolicy
from .errors import (
    CachecoreConnectionError,
    CachecoreError,
    CachecoreTimeoutError,
    error_for_status,
    redact,
)

logger = logging.getLogger("cachecore")

#: What a driver catches around the send: the network failing, nothing else.
#: (An httpx2 inner transport's errors arrive as httpx's: ``_httplib`` translates them.)
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (httpx.TransportError, OSError)


@dataclass(frozen=True, slots=True)
class Send:
    """Post ``body`` to the gateway's invalidation path with ``headers``."""

    path: str
    body: dict[str, str]
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Wait:
    """Sleep ``seconds`` before the next attempt."""

    seconds: float


Step = Send | Wait
Answer = httpx.Response | Exception | None


def new_version() -> str:
    """A fresh dependency version: generated once per dep, before any retry."""
    return uuid.uuid4().hex


def attempts(
    dep_id: str, new_hash: str, token: Callable[[], str], policy: RetryPolicy
) -> Generator[Step, Answer, InvalidateResult]:
    """Invalidate ``dep_id`` to ``new_hash``; ``token()`` is asked before each attempt."""
    body = _wire.invalidate_body(dep_id, new_hash)
    path = _wire.INVALIDATE_PATH.lstrip("/")
    attempt = 0
    while True:
        attempt += 1
        current = token()
        answer = yield Send(path, body, _auth_headers(current))
        if isinstance(answer, httpx.Response):
            if answer.is_success:
                return InvalidateResult(
                    dep_id=dep_id,
                    ok=True,
                    new_hash=new_hash,
                    status_code=answer.status_code,
                    attempts=attempt,
                )
            error = _error_from_response(answer, dep_id, current)
        elif isinstance(answer, TRANSPORT_ERRORS):
            error = _error_from_exception(answer, dep_id, current)
        else:
            raise TypeError(f"an invalidation step got {answer!r}: send a response or an error")
        delay = policy.delay(error, attempt)
        if delay is None:
            return _failed(dep_id, new_hash, error, attempt)
        yield Wait(delay)


def _auth_headers(token: str) -> dict[str, str]:
    return {_wire.TOKEN_HEADER: token, _wire.AUTHORIZATION_HEADER: f"Bearer {token}"}


def _error_from_response(response: httpx.Response, dep_id: str, token: str) -> CachecoreError:
    return error_for_status(
        response.status_code,
        response.text,
        retry_after=_wire.parse_retry_after(response.headers.get(_wire.RETRY_AFTER_HEADER)),
        request_id=response.headers.get(_wire.REQUEST_ID_HEADER),
        what=f"invalidating {dep_id!r}",
        token=token,
    )


def _error_from_exception(exc: Exception, dep_id: str, token: str) -> CachecoreError:
    """The typed error for a call that got no answer (or broke mid-way)."""
    detail = redact(str(exc) or type(exc).__name__, token)
    err: CachecoreError
    if isinstance(exc, httpx.TimeoutException):
        err = CachecoreTimeoutError(
            f"invalidating {dep_id!r} timed out ({type(exc).__name__}: {detail}); "
            "raise timeout= if the gateway is slow"
        )
    else:
        err = CachecoreConnectionError(
            f"invalidating {dep_id!r} could not reach the gateway ({type(exc).__name__}: {detail}); "
            "check gateway_url and the network"
        )
    err.__cause__ = exc
    return err


def _failed(dep_id: str, new_hash: str, error: CachecoreError, attempts: int) -> InvalidateResult:
    """The result of an invalidation that finally failed, logged at WARNING: never silent."""
    status: Any = getattr(error, "status_code", None)
    # The error names the dep ("invalidating 'doc:7' ..."): said once, however long it is.
    logger.warning("cachecore: %s (after %d attempt(s))", error, attempts)
    return InvalidateResult(
        dep_id=dep_id,
        ok=False,
        new_hash=new_hash,
        status_code=status,
        attempts=attempts,
        error=str(error),
        exception=error,
    )
