"""httpx and httpx2 side by side: which library a request belongs to, and bridges between them.

openai 3.x and anthropic are built on ``httpx2`` (pydantic's fork of httpx);
most other SDKs, and openai 1.x/2.x, on ``httpx``. The two libraries have the
same public API but separate classes, and each one's transports assert that
they get their own library's request and stream types. One Cachecore transport
serves both:

- It **dispatches on the request's library.** A request is answered in the
  library it came in: the outgoing copy that carries our headers is built with
  that library's ``Request``, and the default connection pool for it is that
  library's ``HTTPTransport``. ``httpx2`` is never imported here: if a request is
  an ``httpx2.Request``, the module is already loaded, so ``sys.modules`` has it.
- It **bridges** where a caller's ``inner_transport`` is from the other library
  (the in-process reference gateway is an httpx transport, and openai 3.x sends
  httpx2 requests through it): the request is rebuilt in the inner transport's
  library, its answer rebuilt in the caller's, and the inner library's transport
  errors re-raised as the caller's library's class of the same name, so the SDK
  on top (openai's retry on ``httpx2.ConnectError``, say) sees what it expects.

A second generated twin per library was the alternative; it would double the
generated code for two libraries whose public API is the same, and still need
the bridge for a caller-supplied inner transport. Only public API of both
libraries is used: ``Request``/``Response`` constructors, ``headers.raw``,
``url.netloc``, ``.stream``, ``.extensions`` and the exception classes.
No I/O of its own: the bridged streams only pass chunks through.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from functools import cache
from types import ModuleType
from typing import Any

import httpx

__all__ = [
    "bridge_request",
    "bridge_response",
    "decoded_response",
    "library_of",
    "library_of_transport",
    "read_body",
    "translate_error",
]

#: The import name of the fork; looked up in ``sys.modules``, never imported here.
HTTPX2 = "httpx2"


def _httpx2() -> ModuleType | None:
    return sys.modules.get(HTTPX2)


def _library(obj: object, class_name: str) -> ModuleType | None:
    if isinstance(obj, getattr(httpx, class_name)):
        return httpx
    fork = _httpx2()
    if fork is not None and isinstance(obj, getattr(fork, class_name)):
        return fork
    return None


def library_of(request: object) -> ModuleType:
    """``httpx`` or ``httpx2``: the library whose client built ``request``."""
    if type(request) is httpx.Request:  # the common case, first
        return httpx
    lib = _library(request, "Request")
    if lib is not None:
        return lib
    raise TypeError(
        f"the Cachecore transport got a {type(request).__module__}.{type(request).__qualname__}: "
        "it works under httpx and httpx2 clients only (httpx.Client/AsyncClient, "
        "httpx2.Client/AsyncClient, openai's DefaultHttpxClient/DefaultAsyncHttpxClient)"
    )


def library_of_transport(transport: object) -> ModuleType | None:
    """The library a transport takes requests of, or ``None`` for a duck-typed one.

    A transport that subclasses neither library's base classes is handed each
    request as it comes, in the caller's library.
    """
    if isinstance(transport, (httpx.BaseTransport, httpx.AsyncBaseTransport)):
        return httpx
    fork = _httpx2()
    if fork is not None and isinstance(transport, (fork.BaseTransport, fork.AsyncBaseTransport)):
        return fork
    return None


def translate_error(exc: Exception, to: ModuleType, request: Any) -> Exception:
    """``exc``, an error of the other library, as ``to``'s class of the same name.

    Transport errors (``ConnectError``, ``ReadTimeout``, …) exist under the same
    names in both libraries; a subclass of one (a custom transport's own error)
    becomes the nearest class ``to`` has. Anything else is returned unchanged.
    """
    for base in type(exc).__mro__:
        cls = getattr(to, base.__name__, None)
        if isinstance(cls, type) and issubclass(cls, to.RequestError):
            new: Exception = cls(str(exc), request=request)
            new.__cause__ = exc
            return new
    return exc


@cache
def _stream_class(lib: ModuleType) -> type[Any]:
    """A byte stream of ``lib`` that passes through the chunks of another library's stream.

    It is both a sync and an async stream, as ``ByteStream`` is: the transport
    twin decides which side is used. Errors of the source library raised while
    reading are re-raised as ``lib``'s (see ``translate_error``).
    """
    sync_base: type[Any] = lib.SyncByteStream
    async_base: type[Any] = lib.AsyncByteStream

    class BridgedStream(sync_base, async_base):  # type: ignore[misc]
        def __init__(self, source: Any, source_lib: ModuleType | None, request: Any) -> None:
            self._source = source
            self._source_lib = source_lib
            self._request = request

        def _translated(self, exc: Exception) -> Exception:
            src = self._source_lib
            if src is not None and isinstance(exc, src.RequestError):
                return translate_error(exc, lib, self._request)
            return exc

        def __iter__(self) -> Iterator[bytes]:
            try:
                yield from self._source
            except Exception as exc:
                new = self._translated(exc)
                if new is exc:
                    raise
                raise new from exc

        async def __aiter__(self) -> AsyncIterator[bytes]:
            try:
                async for chunk in self._source:
                    yield chunk
            except Exception as exc:
                new = self._translated(exc)
                if new is exc:
                    raise
                raise new from exc

        def close(self) -> None:
            close = getattr(self._source, "close", None)
            if close is not None:
                close()

        async def aclose(self) -> None:
            aclose = getattr(self._source, "aclose", None)
            if aclose is not None:
                await aclose()

    BridgedStream.__qualname__ = f"BridgedStream[{lib.__name__}]"
    return BridgedStream


def bridge_request(request: Any, to: ModuleType) -> Any:
    """``request`` rebuilt as a ``to.Request``: same method, URL, headers, body and extensions."""
    if isinstance(request, to.Request):
        return request
    return to.Request(
        request.method,
        str(request.url),
        headers=request.headers.raw,
        stream=_stream_class(to)(request.stream, None, None),
        extensions=request.extensions,
    )


#: Headers that describe the body on the wire, wrong for a body already decoded.
_WIRE_HEADERS = frozenset({b"content-encoding", b"content-length", b"transfer-encoding"})


def read_body(response: Any) -> bytes | None:
    """The decoded body if whoever produced ``response`` already read it, else ``None``.

    An inner transport may read the response before returning it (to log it, or
    a test double). Its stream is then spent, its connection back in the pool:
    iterating it again would wait for a read timeout. ``content`` is the public
    way to tell, and the only copy of the body left.
    """
    lib = _library(response, "Response")
    if lib is None:
        return None
    try:
        content: bytes = response.content
    except lib.ResponseNotRead:
        return None
    return content


def decoded_response(response: Any, to: ModuleType, body: bytes) -> Any:
    """A ``to.Response`` with ``response``'s status and headers and an already decoded ``body``."""
    headers = [(k, v) for k, v in response.headers.raw if k.lower() not in _WIRE_HEADERS]
    return to.Response(
        response.status_code, headers=headers, content=body, extensions=response.extensions
    )


def bridge_response(response: Any, to: ModuleType, request: Any) -> Any:
    """``response`` (from the inner transport's library) rebuilt as a ``to.Response``.

    The body is not read: chunks pass through as the caller reads them (unless
    the inner transport had read it already: then its bytes are handed over).
    """
    if isinstance(response, to.Response):
        return response
    body = read_body(response)
    if body is not None:
        return decoded_response(response, to, body)
    return to.Response(
        response.status_code,
        headers=response.headers.raw,
        stream=_stream_class(to)(response.stream, _library(response, "Response"), request),
        extensions=response.extensions,
    )
