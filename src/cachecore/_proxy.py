"""What the transport decides about a proxied call, shared by both twins (no I/O).

The twins' ``handle_*request`` methods only move bytes; which headers to set,
which answers become typed errors and what to count is decided here.
"""

from __future__ import annotations

import logging
import threading
from typing import ClassVar, Literal

import httpx

from . import _wire
from ._models import CacheStats
from .errors import RESPONSE_ERROR_EXTENSION, CachecoreAPIError, error_for_status

logger = logging.getLogger("cachecore")

GatewayErrors = Literal["auto", "raise", "return"]

#: Gateway answers on a proxied call that become typed errors.
ERROR_STATUSES = frozenset({401, 403, 429})

#: A header as httpx stores it: (name as sent, lower-cased name, value), all bytes.
HeaderEntry = tuple[bytes, bytes, bytes]


def header_entry(name: str, value: str) -> HeaderEntry:
    raw = name.encode("ascii")
    return (raw, raw.lower(), value.encode("ascii"))


def steer_headers(
    headers: httpx.Headers, put: tuple[HeaderEntry, ...], drop: frozenset[bytes]
) -> None:
    """Remove every header whose lower-cased name is in ``drop``, then add ``put``.

    The transport's hot path: ``headers[name] = value`` re-encodes the name and
    value and scans the list for every header set (about 1 µs each), so this
    edits httpx's entry list directly, once, with pre-encoded entries (benchmark
    1 in docs/performance.md). Every name in ``put`` must be in ``drop``. Falls
    back to the public API if httpx ever stores headers differently.
    """
    entries = getattr(headers, "_list", None)
    if type(entries) is not list:
        for name in drop:
            key = name.decode("latin-1")
            if key in headers:
                del headers[key]
        for raw, _, value in put:
            headers[raw.decode("latin-1")] = value.decode("latin-1")
        return
    i, n = 0, len(entries)
    while i < n:
        if entries[i][1] in drop:
            del entries[i]
            n -= 1
        else:
            i += 1
    entries.extend(put)


def should_raise(mode: str, request: httpx.Request) -> bool:
    """Raise the typed error from the transport, or hand the answer back to the SDK?

    ``auto`` raises, except for requests made by openai 1.x/2.x: those SDKs wrap
    and retry any transport exception three times, while a returned 401/403 is
    raised once as ``openai.AuthenticationError`` (and a 429 retried honouring
    ``Retry-After``); the typed error then rides on the response, where
    ``cachecore.errors.typed_errors()`` finds it.
    """
    if mode != "auto":
        return mode == "raise"
    major = _wire.openai_major_version(request.headers.get(_wire.OPENAI_VERSION_HEADER))
    return major is None or major >= 3


def gateway_error(
    request: httpx.Request, status_code: int, headers: httpx.Headers, raw: bytes, token: str | None
) -> CachecoreAPIError:
    """The typed error for a 401/403/429 answer to a proxied call."""
    text = httpx.Response(status_code, headers=headers, content=raw).text if raw else ""
    return error_for_status(
        status_code,
        text,
        retry_after=_wire.parse_retry_after(headers.get(_wire.RETRY_AFTER_HEADER)),
        request_id=headers.get(_wire.REQUEST_ID_HEADER),
        what=f"{request.method} {request.url.path}",
        token=token,
    )


def passthrough(
    request: httpx.Request, response: httpx.Response, raw: bytes, error: CachecoreAPIError
) -> httpx.Response:
    """A fresh response carrying the already-read body, with the typed error attached.

    ``request`` is passed in: a response fresh from a transport (``HTTPTransport``
    included) has none yet, and reading ``response.request`` would raise.
    """
    return httpx.Response(
        response.status_code,
        headers=response.headers,
        stream=httpx.ByteStream(raw),
        request=request,
        extensions={**response.extensions, RESPONSE_ERROR_EXTENSION: error},
    )


class StatsRecorder:
    """Thread-safe running counts of cache statuses."""

    _FIELDS: ClassVar[dict[str, str]] = {
        "HIT_L1": "hits_l1",
        "HIT_L1_STALE": "hits_l1_stale",
        "HIT_L2": "hits_l2",
        "MISS": "misses",
        "BYPASS": "bypasses",
    }

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys((*self._FIELDS.values(), "unknown", "requests"), 0)

    def observe(self, status: str) -> None:
        field = self._FIELDS.get(status, "unknown")
        with self._lock:
            self._counts[field] += 1
            self._counts["requests"] += 1

    def snapshot(self) -> CacheStats:
        with self._lock:
            return CacheStats(**self._counts)

    def reset(self) -> None:
        with self._lock:
            for key in self._counts:
                self._counts[key] = 0


def log_response(request: httpx.Request, response: httpx.Response) -> None:
    """The ``debug=True`` line: method, path, status and cache headers; never the token."""
    headers = response.headers
    logger.debug(
        "cachecore %s %s -> %s cache=%s similarity=%s age=%s",
        request.method,
        request.url.path,
        response.status_code,
        headers.get(_wire.CACHE_HEADER, "-"),
        headers.get(_wire.SIMILARITY_HEADER, "-"),
        headers.get(_wire.AGE_HEADER, "-"),
    )
