"""The transport under httpx and httpx2 clients, and invisible to them.

Each test runs with every installed HTTP library as the client's (httpx, and
httpx2 on Python 3.11+), and where it matters with the inner transport from
each library too: a request is answered in its own library's types, bridged
when the inner transport is the other library's. The caller's request object
is never written into, and closing follows what every httpx wrapper does.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import httpx
import pytest

from cachecore import CachecoreClient, Dep, _wire
from cachecore._async._transport import AsyncCachecoreTransport
from cachecore.errors import RESPONSE_ERROR_EXTENSION, CachecoreAuthError, CachecoreRateLimitError

from ._helpers import GATEWAY, LIBRARIES, TOKEN, chat_completion

pytestmark = pytest.mark.anyio

CHAT = f"{GATEWAY}/v1/chat/completions"
BODY = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
PAIRS = [(client, inner) for client in LIBRARIES for inner in LIBRARIES]


def ids(lib: ModuleType) -> str:
    return lib.__name__


def pair_ids(pair: tuple[ModuleType, ModuleType]) -> str:
    return f"{pair[0].__name__}-over-{pair[1].__name__}"


class Scripted:
    """A gateway stand-in as a MockTransport of ``lib``; answers from ``script``, then 200."""

    def __init__(self, lib: ModuleType, *script: tuple[int, dict[str, str]]) -> None:
        self.lib = lib
        self.script = list(script)
        self.requests: list[Any] = []
        self.closed = 0
        self.entered = 0

    def __call__(self, request: Any) -> Any:
        self.requests.append(request)
        status, headers = self.script.pop(0) if self.script else (200, {})
        body = chat_completion() if status == 200 else {"error": {"message": f"status {status}"}}
        return self.lib.Response(status, headers={_wire.CACHE_HEADER: "MISS", **headers}, json=body)

    def transport(self) -> Any:
        outer = self

        class Recording(self.lib.MockTransport):  # type: ignore[name-defined, misc]
            async def aclose(self) -> None:
                outer.closed += 1

            async def __aenter__(self) -> Any:
                outer.entered += 1
                return self

        return Recording(self)


def client_of(lib: ModuleType, transport: Any, **kwargs: Any) -> Any:
    return lib.AsyncClient(transport=transport, **kwargs)


# -- both libraries, both ways ---------------------------------------------------------


@pytest.mark.parametrize("pair", PAIRS, ids=pair_ids)
async def test_answers_come_back_in_the_clients_library(
    pair: tuple[ModuleType, ModuleType],
) -> None:
    lib, inner_lib = pair
    gw = Scripted(inner_lib)
    async with (
        CachecoreClient(GATEWAY, TOKEN, inner_transport=gw.transport()) as cc,
        client_of(lib, cc.transport) as http,
    ):
        with cc.request_context(deps=[Dep("doc:1")]) as ctx:
            response = await http.post(CHAT, json=BODY)
    assert type(response) is lib.Response
    assert response.json() == chat_completion()
    assert ctx.last is not None
    assert ctx.last.status == "MISS"
    sent = gw.requests[0]
    assert type(sent) is inner_lib.Request
    assert sent.headers[_wire.TOKEN_HEADER] == TOKEN
    assert _wire.decode_deps(sent.headers[_wire.DEPS_HEADER]) == [("doc:1", "v1")]
    assert json.loads(sent.content) == BODY, "the body crosses the bridge unchanged"


@pytest.mark.parametrize("pair", PAIRS, ids=pair_ids)
async def test_streamed_bodies_cross_the_bridge(pair: tuple[ModuleType, ModuleType]) -> None:
    lib, inner_lib = pair
    seen: list[bytes] = []

    async def handler(request: Any) -> Any:
        seen.append(await request.aread())
        return inner_lib.Response(200, content=b"".join(bytes([i]) * 1000 for i in range(50)))

    async def upload() -> AsyncIterator[bytes]:
        for i in range(3):
            yield b"part%d;" % i

    cc = CachecoreClient(GATEWAY, TOKEN, inner_transport=inner_lib.MockTransport(handler))
    async with (
        cc,
        client_of(lib, cc.transport) as http,
        http.stream("POST", CHAT, content=upload()) as response,
    ):
        chunks = [chunk async for chunk in response.aiter_bytes()]
    assert seen == [b"part0;part1;part2;"]
    assert b"".join(chunks) == b"".join(bytes([i]) * 1000 for i in range(50))


@pytest.mark.parametrize("pair", PAIRS, ids=pair_ids)
async def test_transport_errors_arrive_in_the_clients_library(
    pair: tuple[ModuleType, ModuleType],
) -> None:
    """openai retries ``httpx2.ConnectError`` under 3.x, ``httpx.ConnectError`` before."""
    lib, inner_lib = pair

    def handler(request: Any) -> Any:
        raise inner_lib.ConnectError("connection refused", request=request)

    cc = CachecoreClient(GATEWAY, TOKEN, inner_transport=inner_lib.MockTransport(handler))
    async with cc, client_of(lib, cc.transport) as http:
        with pytest.raises(lib.ConnectError, match="connection refused") as caught:
            await http.post(CHAT, json=BODY)
    assert caught.value.request.url == CHAT


@pytest.mark.parametrize("pair", PAIRS, ids=pair_ids)
async def test_401_is_a_typed_error_under_each_library(
    pair: tuple[ModuleType, ModuleType],
) -> None:
    lib, inner_lib = pair
    gw = Scripted(inner_lib, (401, {}))
    async with (
        CachecoreClient(GATEWAY, TOKEN, inner_transport=gw.transport()) as cc,
        client_of(lib, cc.transport) as http,
    ):
        with pytest.raises(CachecoreAuthError, match="401") as caught:
            await http.post(CHAT, json=BODY)
    assert caught.value.status_code == 401
    assert "status 401" in caught.value.body


@pytest.mark.parametrize("lib", LIBRARIES, ids=ids)
async def test_returned_gateway_errors_are_the_clients_library(lib: ModuleType) -> None:
    gw = Scripted(httpx, (403, {}))
    cc = CachecoreClient(GATEWAY, TOKEN, inner_transport=gw.transport(), gateway_errors="return")
    async with cc, client_of(lib, cc.transport) as http:
        response = await http.post(CHAT, json=BODY)
    assert type(response) is lib.Response
    assert response.status_code == 403
    assert response.json() == {"error": {"message": "status 403"}}
    assert isinstance(response.extensions[RESPONSE_ERROR_EXTENSION], CachecoreAuthError)


@pytest.mark.parametrize("inner_lib", LIBRARIES, ids=ids)
async def test_invalidation_through_an_inner_transport_of_each_library(
    inner_lib: ModuleType,
) -> None:
    gw = Scripted(inner_lib)
    async with CachecoreClient(GATEWAY, TOKEN, inner_transport=gw.transport()) as cc:
        result = await cc.invalidate("doc:1", "v2")
    assert result.ok, result.error
    assert gw.requests[0].url.path == _wire.INVALIDATE_PATH
    assert json.loads(gw.requests[0].content) == {"dep_id": "doc:1", "new_hash": "v2"}


@pytest.mark.parametrize("inner_lib", LIBRARIES, ids=ids)
async def test_invalidation_reports_connection_errors_of_each_library(
    inner_lib: ModuleType,
) -> None:
    def handler(request: Any) -> Any:
        raise inner_lib.ConnectError("refused", request=request)

    cc = CachecoreClient(
        GATEWAY, TOKEN, inner_transport=inner_lib.MockTransport(handler), max_retries=1
    )
    async with cc:
        result = await cc.invalidate("doc:1")
    assert not result.ok
    assert result.attempts == 2
    assert "could not reach the gateway" in (result.error or "")


async def test_a_request_of_another_library_is_refused_with_a_message() -> None:
    transport = AsyncCachecoreTransport(gateway_url=GATEWAY, tenant_jwt=TOKEN)
    with pytest.raises(TypeError, match="works under httpx and httpx2 clients"):
        await transport.handle_async_request(object())  # type: ignore[arg-type]
    await transport.aclose()


# -- the caller's request is never written into ------------------------------------------


@pytest.mark.parametrize("lib", LIBRARIES, ids=ids)
async def test_the_callers_request_is_left_as_it_was(lib: ModuleType) -> None:
    gw = Scripted(lib)
    hooked: list[list[str]] = []

    async def hook(request: Any) -> None:
        hooked.append(list(request.headers))

    async with CachecoreClient(GATEWAY, TOKEN, inner_transport=gw.transport()) as cc:
        http = client_of(lib, cc.transport, event_hooks={"request": [hook], "response": []})
        async with http:
            with cc.request_context(deps=[Dep("doc:1")]):
                response = await http.post(CHAT, json=BODY)
    ours = {_wire.TOKEN_HEADER_LC, _wire.DEPS_HEADER_LC}
    assert not ours & set(response.request.headers), "response.request shows our headers"
    assert not ours & set(hooked[0])
    assert ours <= set(gw.requests[0].headers), "the gateway got them"
    assert gw.requests[0] is not response.request


@pytest.mark.parametrize("lib", LIBRARIES, ids=ids)
async def test_redirect_through_a_mount_to_another_origin_carries_nothing_of_ours(
    lib: ModuleType,
) -> None:
    """httpx builds a redirect from the previous request's headers: they must be clean."""
    elsewhere: list[Any] = []
    hooked: list[Any] = []

    def gateway(request: Any) -> Any:
        return lib.Response(302, headers={"Location": "http://files.example/report.pdf"})

    def other(request: Any) -> Any:
        elsewhere.append(request)
        return lib.Response(200, text="pdf")

    async def hook(request: Any) -> None:
        hooked.append(request)

    async with CachecoreClient(GATEWAY, TOKEN, inner_transport=lib.MockTransport(gateway)) as cc:
        http = client_of(
            lib,
            cc.transport,
            mounts={"http://files.example": lib.MockTransport(other)},
            follow_redirects=True,
            event_hooks={"request": [hook], "response": []},
        )
        async with http:
            with cc.request_context(deps=[Dep("doc:1")]):
                response = await http.get(f"{GATEWAY}/v1/files/1")
    assert response.text == "pdf"
    assert len(elsewhere) == 1
    for request in (*elsewhere, *hooked):
        assert _wire.TOKEN_HEADER not in request.headers, request.url
        assert _wire.DEPS_HEADER not in request.headers, request.url


@pytest.mark.parametrize("lib", LIBRARIES, ids=ids)
async def test_our_headers_set_by_the_caller_are_stripped_for_other_hosts(
    lib: ModuleType,
) -> None:
    gw = Scripted(lib)
    async with (
        CachecoreClient(GATEWAY, TOKEN, inner_transport=gw.transport()) as cc,
        client_of(lib, cc.transport, headers={_wire.TOKEN_HEADER: "mine"}) as http,
    ):
        plain = await http.get("http://elsewhere.example/x")
        await http.get(f"{GATEWAY}/health")
    assert _wire.TOKEN_HEADER not in gw.requests[0].headers
    assert gw.requests[1].headers[_wire.TOKEN_HEADER] == TOKEN
    assert plain.request.headers[_wire.TOKEN_HEADER] == "mine", "the caller's own copy stays"


# -- who closes what --------------------------------------------------------------------


@pytest.mark.parametrize("lib", LIBRARIES, ids=ids)
async def test_a_directly_built_transport_owns_its_inner_transport(lib: ModuleType) -> None:
    gw = Scripted(lib)
    transport = AsyncCachecoreTransport(
        gateway_url=GATEWAY, tenant_jwt=TOKEN, inner_transport=gw.transport()
    )
    async with client_of(lib, transport) as http:
        await http.get(f"{GATEWAY}/health")
        assert gw.entered == 1, "async with is forwarded"
    assert gw.closed == 1, "closing the client closes the inner transport"
    again = AsyncCachecoreTransport(
        gateway_url=GATEWAY, tenant_jwt=TOKEN, inner_transport=gw.transport()
    )
    await again.aclose()
    assert gw.closed == 2


@pytest.mark.parametrize("lib", LIBRARIES, ids=ids)
async def test_closing_one_client_leaves_cc_and_the_others_working(lib: ModuleType) -> None:
    gw = Scripted(lib)
    async with CachecoreClient(GATEWAY, TOKEN, inner_transport=gw.transport()) as cc:
        first = client_of(lib, cc.transport)
        second = client_of(lib, cc.transport)
        async with first:
            await first.get(f"{GATEWAY}/health")
        assert (await second.get(f"{GATEWAY}/health")).status_code == 200
        assert (await cc.invalidate("doc:1")).ok
        await second.aclose()
    assert gw.closed == 0, "an inner transport given to the client is borrowed, never closed"


async def test_cc_close_closes_its_own_pools() -> None:
    cc = CachecoreClient(GATEWAY, TOKEN)
    await cc.aclose()
    assert cc.is_closed
    async with httpx.AsyncClient(transport=cc.transport) as http:
        with pytest.raises(RuntimeError, match="closed"):
            await http.get(f"{GATEWAY}/health")


# -- a raised 429 is retried once the gateway says when ---------------------------------


async def test_raised_429_is_retried_after_retry_after() -> None:
    gw = Scripted(httpx, (429, {"Retry-After": "0"}), (429, {"Retry-After": "0"}))
    async with (
        CachecoreClient(GATEWAY, TOKEN, inner_transport=gw.transport()) as cc,
        httpx.AsyncClient(transport=cc.transport) as http,
    ):
        with cc.request_context(deps=[Dep("doc:1")]) as ctx:
            response = await http.post(CHAT, json=BODY)
    assert response.status_code == 200
    assert len(gw.requests) == 3
    assert [json.loads(r.content) for r in gw.requests] == [BODY] * 3, "the body is replayed"
    assert all(r.headers[_wire.TOKEN_HEADER] == TOKEN for r in gw.requests)
    assert len(ctx) == 1, "only the final answer is recorded"


async def test_raised_429_gives_up_after_max_retries() -> None:
    gw = Scripted(httpx, *[(429, {"Retry-After": "0"})] * 5)
    async with (
        CachecoreClient(GATEWAY, TOKEN, inner_transport=gw.transport(), max_retries=2) as cc,
        httpx.AsyncClient(transport=cc.transport) as http,
    ):
        with pytest.raises(CachecoreRateLimitError):
            await http.post(CHAT, json=BODY)
    assert len(gw.requests) == 3


async def test_a_retry_after_above_the_maximum_is_raised_at_once() -> None:
    # openai does the same above its own maximum (2 min): retrying sooner than the
    # gateway asked would be refused again; the caller decides whether to wait.
    gw = Scripted(httpx, (429, {"Retry-After": "121"}))
    async with (
        CachecoreClient(GATEWAY, TOKEN, inner_transport=gw.transport()) as cc,
        httpx.AsyncClient(transport=cc.transport) as http,
    ):
        with pytest.raises(CachecoreRateLimitError) as caught:
            await http.post(CHAT, json=BODY)
    assert caught.value.retry_after == 121
    assert len(gw.requests) == 1


async def test_no_transport_retry_under_sdks_that_retry_themselves() -> None:
    gw = Scripted(httpx, (429, {"Retry-After": "0"}))
    cc = CachecoreClient(GATEWAY, TOKEN, inner_transport=gw.transport(), gateway_errors="raise")
    async with cc, httpx.AsyncClient(transport=cc.transport) as http:
        with pytest.raises(CachecoreRateLimitError):
            await http.post(CHAT, json=BODY, headers={_wire.OPENAI_VERSION_HEADER: "2.54.0"})
    assert len(gw.requests) == 1


async def test_a_streamed_body_is_not_replayed() -> None:
    gw = Scripted(httpx, (429, {"Retry-After": "0"}))

    async def upload() -> AsyncIterator[bytes]:
        yield b"{}"

    async with (
        CachecoreClient(GATEWAY, TOKEN, inner_transport=gw.transport()) as cc,
        httpx.AsyncClient(transport=cc.transport) as http,
    ):
        response = await http.post(CHAT, content=upload())
    assert response.status_code == 429, "handed back: only the caller can make the body again"
    assert len(gw.requests) == 1


async def test_an_upload_refused_with_429_is_handed_back_to_the_sdk() -> None:
    # A multipart body cannot be replayed safely (a file may be read only once):
    # in "auto" the SDK gets the 429 to retry, rebuilding the body as openai 3.x does.
    gw = Scripted(httpx, (429, {"Retry-After": "0"}))
    async with (
        CachecoreClient(GATEWAY, TOKEN, inner_transport=gw.transport()) as cc,
        httpx.AsyncClient(transport=cc.transport) as http,
    ):
        response = await http.post(CHAT, files={"file": ("a.txt", b"data")})
    assert response.status_code == 429
    assert isinstance(response.extensions[RESPONSE_ERROR_EXTENSION], CachecoreRateLimitError)
    assert len(gw.requests) == 1


async def test_an_upload_refused_with_429_is_raised_in_raise_mode() -> None:
    gw = Scripted(httpx, (429, {"Retry-After": "0"}))
    cc = CachecoreClient(GATEWAY, TOKEN, inner_transport=gw.transport(), gateway_errors="raise")
    async with cc, httpx.AsyncClient(transport=cc.transport) as http:
        with pytest.raises(CachecoreRateLimitError):
            await http.post(CHAT, files={"file": ("a.txt", b"data")})
    assert len(gw.requests) == 1


# -- an inner transport that reads the answer before returning it ---------------------


def spent_stream(lib: ModuleType, body: bytes) -> Any:
    """A body that can be read once, as a network stream: a second read would hang."""

    class Once(lib.AsyncByteStream):  # type: ignore[name-defined, misc]
        def __init__(self) -> None:
            self.read = False

        async def __aiter__(self) -> AsyncIterator[bytes]:
            assert not self.read, "read twice: on a real connection this waits for a timeout"
            self.read = True
            yield body

    return Once()


@pytest.mark.parametrize("status", [200, 401])
@pytest.mark.parametrize("pair", PAIRS, ids=pair_ids)
async def test_an_answer_the_inner_transport_already_read_is_handed_on(
    pair: tuple[ModuleType, ModuleType], status: int
) -> None:
    lib, inner_lib = pair
    body = json.dumps({"error": {"message": "no"}} if status == 401 else chat_completion())

    class Reading(inner_lib.AsyncBaseTransport):  # type: ignore[name-defined, misc]
        async def handle_async_request(self, request: Any) -> Any:
            response = inner_lib.Response(
                status,
                headers={"content-type": "application/json"},
                stream=spent_stream(inner_lib, body.encode()),
            )
            await response.aread()  # logging it, say
            return response

    cc = CachecoreClient(GATEWAY, TOKEN, inner_transport=Reading(), gateway_errors="return")
    async with cc, client_of(lib, cc.transport) as http:
        response = await http.post(CHAT, json=BODY)
    assert response.status_code == status
    assert response.json() == json.loads(body)


# -- closed means closed; any transport shape is forwarded to ----------------------------


async def test_a_closed_client_refuses_requests_also_over_an_inner_transport() -> None:
    gw = Scripted(httpx)
    cc = CachecoreClient(GATEWAY, TOKEN, inner_transport=gw.transport())
    await cc.aclose()
    async with httpx.AsyncClient(transport=cc.transport) as http:
        with pytest.raises(RuntimeError, match="closed"):
            await http.get(f"{GATEWAY}/health")
    assert gw.requests == []


async def test_an_inner_transport_without_base_class_is_closed_on_exit() -> None:
    closed: list[bool] = []

    class Bare:  # only what a transport must have
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, headers={_wire.CACHE_HEADER: "MISS"}, json={})

        async def aclose(self) -> None:
            closed.append(True)

    transport = AsyncCachecoreTransport(
        gateway_url=GATEWAY, tenant_jwt=TOKEN, inner_transport=Bare()
    )
    async with httpx.AsyncClient(transport=transport) as http:
        assert (await http.get(f"{GATEWAY}/health")).status_code == 200
    assert closed == [True]
