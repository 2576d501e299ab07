"""Constructing the client: defaults, validation at construction, token reading."""

from __future__ import annotations

import httpx
import pytest

from cachecore import CachecoreClient, CachecoreConfigError, Dep, _wire
from cachecore._async._transport import AsyncCachecoreTransport

from ._helpers import GATEWAY, TOKEN, Gateway, make_token

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CACHECORE_GATEWAY_URL", raising=False)
    monkeypatch.delenv("CACHECORE_TOKEN", raising=False)


async def test_defaults_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHECORE_GATEWAY_URL", "https://api.cachecore.example/v1")
    monkeypatch.setenv("CACHECORE_TOKEN", TOKEN)
    gw = Gateway()
    async with CachecoreClient(inner_transport=gw.transport()) as cc:
        assert cc.gateway_url == "https://api.cachecore.example"
        async with httpx.AsyncClient(transport=cc.transport) as http:
            await http.get("https://api.cachecore.example/v1/models")
    assert gw.last.headers[_wire.TOKEN_HEADER] == TOKEN


async def test_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHECORE_GATEWAY_URL", "https://env.example")
    monkeypatch.setenv("CACHECORE_TOKEN", make_token("from-env"))
    async with CachecoreClient(GATEWAY, TOKEN, inner_transport=Gateway().transport()) as cc:
        assert cc.gateway_url == GATEWAY
        assert cc.tenant_id == "tenant-a"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tenant_jwt": TOKEN}, "gateway_url is required.*CACHECORE_GATEWAY_URL"),
        ({"gateway_url": GATEWAY}, "tenant_jwt is required.*CACHECORE_TOKEN"),
        ({"gateway_url": "gw.test", "tenant_jwt": TOKEN}, "needs an http:// or https:// scheme"),
        ({"gateway_url": "http://", "tenant_jwt": TOKEN}, "gateway_url"),
        ({"gateway_url": "ftp://gw.test", "tenant_jwt": TOKEN}, "scheme"),
        ({"gateway_url": "http://gw.test/?a=1", "tenant_jwt": TOKEN}, "query"),
        ({"gateway_url": GATEWAY, "tenant_jwt": ""}, "tenant_jwt is empty"),
        ({"gateway_url": GATEWAY, "tenant_jwt": "  "}, "tenant_jwt is empty"),
        ({"gateway_url": GATEWAY, "tenant_jwt": "abc def"}, "whitespace or control"),
        ({"gateway_url": GATEWAY, "tenant_jwt": 12}, "tenant_jwt must be a string"),
        ({"gateway_url": GATEWAY, "tenant_jwt": lambda: ""}, "callable's result is empty"),
        ({"gateway_url": GATEWAY, "tenant_jwt": TOKEN, "timeout": 0}, "timeout must be a positive"),
        ({"gateway_url": GATEWAY, "tenant_jwt": TOKEN, "timeout": "5"}, "timeout"),
        (
            {"gateway_url": GATEWAY, "tenant_jwt": TOKEN, "max_retries": -1},
            "max_retries must be an integer >= 0",
        ),
        ({"gateway_url": GATEWAY, "tenant_jwt": TOKEN, "max_retries": True}, "max_retries"),
        (
            {"gateway_url": GATEWAY, "tenant_jwt": TOKEN, "max_concurrency": 0},
            "max_concurrency must be an integer >= 1",
        ),
        (
            {"gateway_url": GATEWAY, "tenant_jwt": TOKEN, "gateway_errors": "ignore"},
            "gateway_errors must be",
        ),
    ],
)
async def test_bad_configuration_fails_at_construction(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(CachecoreConfigError, match=message) as caught:
        CachecoreClient(**kwargs)  # type: ignore[arg-type]
    assert TOKEN not in str(caught.value)
    assert isinstance(caught.value, ValueError)


async def test_options_are_accepted() -> None:
    cc = CachecoreClient(
        GATEWAY,
        TOKEN,
        timeout=httpx.Timeout(3.0),
        max_retries=0,
        max_concurrency=1,
        debug=True,
        collect_stats=True,
        inner_transport=Gateway().transport(),
    )
    async with cc:
        assert cc.stats.requests == 0
        assert isinstance(cc.transport, AsyncCachecoreTransport)
        assert isinstance(cc.transport, httpx.AsyncBaseTransport)


async def test_token_info_is_read_from_the_token() -> None:
    token = make_token("acme", roles=["reader"], scope="chat", exp=4102444800)
    async with CachecoreClient(GATEWAY, token, inner_transport=Gateway().transport()) as cc:
        info = cc.token_info
        assert info is not None
        assert (info.tenant_id, info.roles, info.scope, info.expired) == (
            "acme",
            ("reader",),
            "chat",
            False,
        )
        assert info.expires_at is not None
        assert info.expires_at.year == 2100
        assert cc.tenant_id == "acme"
        assert token not in repr(info)


async def test_opaque_tokens_have_no_info() -> None:
    async with CachecoreClient(
        GATEWAY, "opaque-token", inner_transport=Gateway().transport()
    ) as cc:
        assert cc.token_info is None
        assert cc.tenant_id is None


async def test_repr_never_shows_the_token() -> None:
    async with CachecoreClient(GATEWAY, TOKEN, inner_transport=Gateway().transport()) as cc:
        text = repr(cc)
    assert TOKEN not in text
    assert "tenant-a" in text
    assert "gw.test" in text


async def test_request_context_checks_its_input() -> None:
    async with CachecoreClient(GATEWAY, TOKEN, inner_transport=Gateway().transport()) as cc:
        with pytest.raises(CachecoreConfigError, match=r"deps=\[Dep\(...\)\]"):
            cc.request_context(deps=Dep("a"))  # type: ignore[arg-type]
        with pytest.raises(CachecoreConfigError, match=r"deps=\[Dep"):
            cc.request_context(deps="a")
        with pytest.raises(CachecoreConfigError, match=r"deps\[1\] must be a Dep"):
            cc.request_context(deps=["a", 3])  # type: ignore[list-item]
        with pytest.raises(CachecoreConfigError, match="bypass must be True or False"):
            cc.request_context(bypass="yes")  # type: ignore[arg-type]
        with pytest.raises(CachecoreConfigError, match="must not be empty"):
            cc.request_context(deps=[""])
        with pytest.raises(CachecoreConfigError, match="control character"):
            cc.request_context(deps=["doc:1\r\nX-Evil: 1"])


async def test_nested_contexts_combine_deps_and_bypass_sticks() -> None:
    gw = Gateway()
    async with (
        CachecoreClient(GATEWAY, TOKEN, inner_transport=gw.transport()) as cc,
        httpx.AsyncClient(transport=cc.transport, base_url=GATEWAY) as http,
    ):
        with cc.request_context(deps=["a", "b"], bypass=True) as outer:
            with cc.request_context(deps=["b", "c"], bypass=False) as inner:
                await http.get("/v1/models")
            await http.get("/v1/models")
        await http.get("/v1/models")
    first, second, third = gw.requests
    assert gw.deps_of(first) == [("a", "v1"), ("b", "v1"), ("c", "v1")]
    assert _wire.TOKEN_HEADER not in first.headers, "bypass of the outer block must stick"
    assert inner.bypass is True
    assert gw.deps_of(second) == [("a", "v1"), ("b", "v1")]
    assert _wire.TOKEN_HEADER not in second.headers
    assert outer.deps == (Dep("a"), Dep("b"))
    assert gw.deps_of(third) is None
    assert third.headers[_wire.TOKEN_HEADER] == TOKEN


async def test_a_context_cannot_be_entered_twice_at_once() -> None:
    async with CachecoreClient(GATEWAY, TOKEN, inner_transport=Gateway().transport()) as cc:
        ctx = cc.request_context(deps=["a"])
        with ctx, pytest.raises(RuntimeError, match="already active"):
            ctx.__enter__()
        with ctx as again:  # reusable once it has exited
            assert again.deps == (Dep("a"),)


async def test_context_exits_on_error() -> None:
    gw = Gateway()
    async with CachecoreClient(GATEWAY, TOKEN, inner_transport=gw.transport()) as cc:
        with pytest.raises(KeyError), cc.request_context(deps=["a"], bypass=True):
            raise KeyError("boom")
        async with httpx.AsyncClient(transport=cc.transport) as http:
            await http.get(f"{GATEWAY}/v1/models")
    assert gw.last.headers[_wire.TOKEN_HEADER] == TOKEN
    assert _wire.DEPS_HEADER not in gw.last.headers


async def test_aclose_and_context_manager() -> None:
    cc = CachecoreClient(GATEWAY, TOKEN, inner_transport=Gateway().transport())
    async with cc as entered:
        assert entered is cc
    await cc.aclose()  # closing twice is harmless


# -- ping ----------------------------------------------------------------------------


async def test_ping_reports_every_check_without_the_token() -> None:
    import time

    gw = Gateway()
    token = make_token("acme", exp=int(time.time()) + 7200)
    url = "https://gw.test"  # http:// to a non-loopback host fails the scheme check
    async with CachecoreClient(url, token, inner_transport=gw.transport()) as cc:
        result = await cc.ping()
    assert result.ok, str(result)
    assert [c.name for c in result.checks] == ["scheme", "reachable", "token", "expiry"]
    assert result.tenant_id == "acme"
    assert result.latency_ms is not None
    assert gw.requests[0].method == "GET"
    assert gw.requests[0].url.path == "/health"
    assert token not in str(result) + result.model_dump_json()


async def test_ping_names_the_url_when_the_gateway_is_down() -> None:
    gw = Gateway(httpx.ConnectError("connection refused"))
    async with CachecoreClient(GATEWAY, TOKEN, inner_transport=gw.transport()) as cc:
        result = await cc.ping()
    assert not result.ok
    (reachable,) = [c for c in result.checks if c.name == "reachable"]
    assert not reachable.ok
    assert f"cannot reach {GATEWAY}: ConnectError: connection refused" == reachable.detail


async def test_ping_fails_an_expired_token() -> None:
    gw = Gateway()
    async with CachecoreClient(GATEWAY, make_token(exp=1), inner_transport=gw.transport()) as cc:
        result = await cc.ping()
    (expiry,) = [c for c in result.checks if c.name == "expiry"]
    assert (result.ok, expiry.ok) == (False, False)
    assert expiry.detail.startswith("expired ")
