"""What the transport decides about each proxied call: shared by both twins, no I/O.

The twins' ``handle_*request`` methods only move bytes. Which headers go on the
copy that is sent (public httpx/httpx2 API only: a copied ``Headers``, its
setters, a new ``Request``), whether a body can be replayed, whether a gateway
answer is raised as a typed error or handed back, and the ``debug=True`` log
line are decided here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from . import _wire
from ._doctor import scheme_hint
from ._models import Dep
from .errors import RESPONSE_ERROR_EXTENSION, CachecoreAPIError, error_for_status

logger = logging.getLogger("cachecore")

#: A header to set: ``(name, value)``, the value checked ASCII and encoded once per context.
HeaderItem = tuple[str, str]

#: The headers only the transport may set.
OUR_HEADERS = (_wire.TOKEN_HEADER, _wire.DEPS_HEADER)
TOKEN_ONLY = (_wire.TOKEN_HEADER,)
NOTHING: tuple[str, ...] = ()


def carries_ours(request: Any) -> bool:
    """Does the caller's request itself carry a Cachecore header (its own default headers)?"""
    headers = request.headers
    return _wire.TOKEN_HEADER in headers or _wire.DEPS_HEADER in headers


def outgoing(
    request: Any,
    lib: ModuleType,
    put: tuple[HeaderItem, ...],
    drop: tuple[str, ...],
    stream: Any = None,
) -> Any:
    """A copy of ``request`` (a ``lib.Request``) with ``put`` set and ``drop`` removed.

    The caller's request is never written into: httpx copies its headers onto
    redirects, shows it to event hooks and as ``response.request``, so our
    headers go only on this copy, which only the inner transport sees. Same
    method, URL, body stream (or ``stream``, for a replay) and extensions.
    Setting a header replaces any value the caller gave it, so only names not
    in ``put`` need dropping.
    """
    headers = lib.Headers(request.headers)
    for name in drop:
        if name in headers:
            del headers[name]
    for name, value in put:
        headers[name] = value
    return lib.Request(
        request.method,
        request.url,
        headers=headers,
        stream=request.stream if stream is None else stream,
        extensions=request.extensions,
    )


def replayable_body(request: Any, lib: ModuleType) -> Any:
    """A fresh stream of the request's body for a retry, or ``None`` if it cannot be replayed.

    A body given as bytes (what the LLM SDKs send for JSON) is held by the
    request; a streamed body (a generator, a multipart upload) was consumed by
    the first attempt, and replaying a file could send it truncated.
    """
    try:
        content = request.content
    except lib.RequestNotRead:
        return None
    return lib.ByteStream(content)


def should_raise(mode: str, request: Any) -> bool:
    """Raise the typed error from the transport, or hand the answer back to the SDK?

    ``auto`` raises, except for requests made by openai 1.x/2.x: those SDKs wrap
    and retry any transport exception three times, while a returned 401/403 is
    raised once as ``openai.AuthenticationError`` (and a 429 retried honouring
    ``Retry-After``); the typed error then rides on the response, where
    ``cachecore.errors.typed_errors()`` finds it.
    """
    if mode != "auto":
        return mode == "raise"
    return not sdk_retries(request)


def sdk_retries(request: Any) -> bool:
    """Was ``request`` made by an SDK that retries 429s and transport errors itself?

    openai 1.x/2.x (``X-Stainless-Package-Version``) do: the transport must not
    retry on top of them.
    """
    major = _wire.openai_major_version(request.headers.get(_wire.OPENAI_VERSION_HEADER))
    return major is not None and major < 3


def gateway_error(
    request: Any,
    response: Any,
    lib: ModuleType,
    raw: bytes,
    token: str | None,
    bypassed: bool = False,
) -> CachecoreAPIError:
    """The typed error for a 401/403/429 answer to a proxied call (``raw``: its body)."""
    status_code = response.status_code
    headers = response.headers
    text = lib.Response(status_code, headers=headers.raw, content=raw).text if raw else ""
    return error_for_status(
        status_code,
        text,
        retry_after=_wire.parse_retry_after(headers.get(_wire.RETRY_AFTER_HEADER)),
        request_id=headers.get(_wire.REQUEST_ID_HEADER),
        what=f"{request.method} {request.url.path}",
        token=token,
        bypassed=bypassed,
    )


def passthrough(
    request: Any, response: Any, lib: ModuleType, raw: bytes, error: CachecoreAPIError
) -> Any:
    """A fresh ``lib.Response`` carrying the already-read body, with the typed error attached.

    ``request`` is passed in: a response fresh from a transport (``HTTPTransport``
    included) has none yet, and reading ``response.request`` would raise.
    """
    return lib.Response(
        response.status_code,
        headers=response.headers.raw,
        stream=lib.ByteStream(raw),
        request=request,
        extensions={**response.extensions, RESPONSE_ERROR_EXTENSION: error},
    )


def log_response(request: Any, response: Any, deps: Sequence[Dep] = ()) -> None:
    """The ``debug=True`` line: method, path, status, cache headers, request id and the
    declared dep ids; never the token."""
    headers = response.headers
    logger.debug(
        "cachecore %s %s -> %s cache=%s similarity=%s age=%s request_id=%s deps=%s",
        request.method,
        request.url.path,
        response.status_code,
        headers.get(_wire.CACHE_HEADER, "-"),
        headers.get(_wire.SIMILARITY_HEADER, "-"),
        headers.get(_wire.AGE_HEADER, "-"),
        headers.get(_wire.REQUEST_ID_HEADER, "-"),
        ",".join(dep.dep_id for dep in deps) or "-",
    )


#: Paths of OpenAI-style LLM calls: a request for one of them to a host that is not
#: the gateway most likely meant the gateway (a base_url typo, another host name).
_LLM_PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses")


def warn_if_meant_for_gateway(url: Any, gateway: object, warned: set[bytes]) -> None:
    """Log once per host, at WARNING, an LLM call that goes around the gateway.

    Such a call is sent as it is (never with the token) and is never cached: say so
    rather than let every status read ``None`` and every stat stay zero.
    """
    if url.netloc in warned or not url.path.startswith(_LLM_PATHS):
        return
    warned.add(url.netloc)
    logger.warning(
        "cachecore: %s://%s%s goes around the cache: the gateway is %s, so no tenant "
        "token or deps are sent and nothing is cached; point the SDK's base_url at %s/v1",
        url.scheme,
        url.netloc.decode("ascii", "replace"),
        url.path,
        gateway,
        gateway,
    )


def unreachable(exc: Exception, lib: ModuleType, request: Any, gateway: object) -> Exception:
    """``exc`` (a connect error or timeout of ``lib``) again, its message naming the gateway.

    The same class, so the SDK above retries and wraps it as it would the original
    (openai: ``APIConnectionError``/``APITimeoutError``, with this as the cause).
    """
    cls = lib.ConnectTimeout if isinstance(exc, lib.ConnectTimeout) else lib.ConnectError
    detail = str(exc) or type(exc).__name__
    hint = scheme_hint(request.url.scheme, detail)
    hint = f"; {hint}" if hint else ""
    error: Exception = cls(
        f"cannot reach the Cachecore gateway at {gateway} ({type(exc).__name__}: {detail}{hint}); "
        "is it running, and is gateway_url right? `cachecore doctor` checks",
        request=request,
    )
    return error
