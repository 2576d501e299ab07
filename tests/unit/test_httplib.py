"""``_httplib`` and the transport's construction checks, outside any client."""

from __future__ import annotations

import sys

import httpx
import pytest

from cachecore import AsyncCachecoreTransport, CachecoreConfigError, SyncCachecoreTransport
from cachecore._httplib import decoded_response, read_body, translate_error

try:
    import httpx2
except ImportError:  # declared by the test extra for 3.11+ only: missing there is a failure
    if sys.version_info >= (3, 11):
        raise
    httpx2 = None  # type: ignore[assignment]

LIBRARIES = [httpx] if httpx2 is None else [httpx, httpx2]

GATEWAY = "http://gw.test"
TOKEN = "cc_live_k1.httplib-token"


def test_a_transport_of_the_wrong_kind_is_refused_at_construction() -> None:
    with pytest.raises(CachecoreConfigError, match=r"handle_request\(\); got AsyncHTTPTransport"):
        SyncCachecoreTransport(
            gateway_url=GATEWAY, tenant_jwt=TOKEN, inner_transport=httpx.AsyncHTTPTransport()
        )
    with pytest.raises(CachecoreConfigError, match=r"handle_async_request\(\); got HTTPTransport"):
        AsyncCachecoreTransport(
            gateway_url=GATEWAY, tenant_jwt=TOKEN, inner_transport=httpx.HTTPTransport()
        )


class TheirConnectError(httpx.ConnectError):
    """A custom transport's own subclass of a transport error."""


@pytest.mark.parametrize("to", LIBRARIES, ids=lambda lib: lib.__name__)
def test_a_subclass_of_a_transport_error_becomes_the_nearest_class(to: object) -> None:
    request = to.Request("GET", GATEWAY)  # type: ignore[attr-defined]
    original = TheirConnectError("refused", request=httpx.Request("GET", GATEWAY))
    translated = translate_error(original, to, request)  # type: ignore[arg-type]
    assert type(translated) is to.ConnectError  # type: ignore[attr-defined]
    assert translated.__cause__ is original


def test_anything_else_is_returned_unchanged() -> None:
    original = ValueError("a bug")
    assert translate_error(original, httpx, httpx.Request("GET", GATEWAY)) is original


@pytest.mark.parametrize("to", LIBRARIES, ids=lambda lib: lib.__name__)
def test_a_read_response_is_rebuilt_from_its_decoded_bytes(to: object) -> None:
    import gzip

    response = httpx.Response(
        200, headers={"content-encoding": "gzip"}, content=gzip.compress(b"hello")
    )
    assert read_body(response) == b"hello", "already read: its decoded body"
    rebuilt = decoded_response(response, to, b"hello")  # type: ignore[arg-type]
    assert "content-encoding" not in rebuilt.headers
    assert rebuilt.headers["content-length"] == "5"
    assert rebuilt.content == b"hello"
    streaming = httpx.Response(200, stream=httpx.ByteStream(b"x"))
    assert read_body(streaming) is None, "not read yet: the stream is still there to pass on"
