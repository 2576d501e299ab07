"""Constructor input and tenant tokens: checked once, never shown."""

from __future__ import annotations

import pickle
import time

import httpx
import pytest

import cachecore
from _async._helpers import b64url, make_token
from cachecore import _auth, _config
from cachecore.errors import CachecoreConfigError

# -- gateway URL -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://api.cachecore.it", "https://api.cachecore.it/"),
        ("https://api.cachecore.it/", "https://api.cachecore.it/"),
        ("https://api.cachecore.it/v1", "https://api.cachecore.it/"),
        ("https://api.cachecore.it/v1/", "https://api.cachecore.it/"),
        ("  http://127.0.0.1:8080  ", "http://127.0.0.1:8080/"),
        ("http://gw.test/prefix/v1", "http://gw.test/prefix"),
    ],
)
def test_gateway_url_is_normalised(value: str, expected: str) -> None:
    assert str(_config.resolve_gateway_url(value)) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("api.cachecore.it", r"needs an http:// or https:// scheme and a host, e\.g\."),
        ("/v1", "needs an http:// or https:// scheme"),
        ("https://", "gateway_url"),
        ("ws://gw.test", "needs an http:// or https:// scheme"),
        ("http://gw.test/#frag", "must not carry a query or fragment"),
        ("http://[::1", "not a valid URL|needs"),
        ("", "needs an http:// or https://"),
        (42, "gateway_url must be a string"),
    ],
)
def test_bad_gateway_urls_say_what_to_fix(value: object, message: str) -> None:
    with pytest.raises(CachecoreConfigError, match=message):
        _config.resolve_gateway_url(value)  # type: ignore[arg-type]


def test_gateway_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHECORE_GATEWAY_URL", "http://env.test:9000/v1")
    assert str(_config.resolve_gateway_url(None)) == "http://env.test:9000/"
    monkeypatch.setenv("CACHECORE_GATEWAY_URL", "")
    with pytest.raises(CachecoreConfigError, match="set CACHECORE_GATEWAY_URL"):
        _config.resolve_gateway_url(None)


@pytest.mark.parametrize(
    ("gateway", "url", "same"),
    [
        ("http://gw.test", "http://gw.test/v1/x", True),
        ("http://gw.test", "http://GW.TEST:80/v1/x", True),
        ("https://gw.test", "https://gw.test:443/", True),
        ("http://gw.test:8080", "http://gw.test:8080/", True),
        ("http://gw.test:8080", "http://gw.test/", False),
        ("http://gw.test", "https://gw.test/", False),
        ("https://gw.test", "http://gw.test:443/", False),
        ("http://gw.test", "http://gw.test.evil/", False),
        ("http://gw.test", "http://evil.test/?gw.test", False),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/v1", True),
        ("http://[::1]:8080", "http://[::1]:8080/v1", True),
        ("http://[::1]:8080", "http://[::2]:8080/v1", False),
        ("http://bücher.example", "http://xn--bcher-kva.example/", True),
    ],
)
def test_origin_matching(gateway: str, url: str, same: bool) -> None:
    origin = _auth.Origin.of(_config.resolve_gateway_url(gateway))
    assert origin.matches(httpx.URL(url)) is same


# -- tokens ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "tenant_jwt is empty"),
        ("   ", "tenant_jwt is empty"),
        ("tok en", "whitespace or control characters"),
        ("token\n", "whitespace or control characters"),
        ("tok\x00en", "whitespace or control characters"),
        ("tökén", "non-ASCII"),
        (b"bytes", "must be a string"),
        (None, "tenant_jwt is required"),
    ],
)
def test_bad_tokens_say_what_to_fix(
    token: object, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CACHECORE_TOKEN", raising=False)
    with pytest.raises(CachecoreConfigError, match=message) as caught:
        _auth.TokenProvider(token)  # type: ignore[arg-type]
    if isinstance(token, str) and token.strip():
        assert token not in str(caught.value)


def test_token_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHECORE_TOKEN", "env-token")
    assert _auth.TokenProvider(None).current() == "env-token"


def test_rotating_token_is_checked_at_construction_and_on_each_read() -> None:
    values = iter(["good-1", "good-2", ""])
    provider = _auth.TokenProvider(lambda: next(values))  # reads "good-1" now
    assert not provider.is_static
    assert provider.current() == "good-2"
    with pytest.raises(CachecoreConfigError, match="callable's result is empty"):
        provider.current()
    with pytest.raises(CachecoreConfigError, match="callable's result"):
        _auth.TokenProvider(lambda: 3)  # type: ignore[arg-type, return-value]


def test_provider_never_shows_the_token() -> None:
    token = make_token()
    provider = _auth.TokenProvider(token)
    assert token not in repr(provider)
    assert token not in str(provider)
    assert token not in f"{provider!r} {provider}"


def test_read_prefixed_and_bare_tokens() -> None:
    exp = int(time.time()) + 3600
    for token in (make_token("acme", exp=exp), make_token("acme", prefix="", exp=exp)):
        info = _auth.read_token(token)
        assert info is not None
        assert info.tenant_id == "acme"
        assert info.expires_at is not None
        assert int(info.expires_at.timestamp()) == exp
        assert not info.expired
    assert _auth.read_token(make_token("acme")).prefix == "cc_live_k1"  # type: ignore[union-attr]
    assert _auth.split_token("cc_test_x-1.a.b.c") == ("cc_test_x-1", "a.b.c")
    assert _auth.split_token("a.b.c") == ("", "a.b.c")


def test_token_claims_are_read_defensively() -> None:
    info = _auth.read_token(make_token(42, roles="admin", scope=["x"], exp=True))  # type: ignore[arg-type]
    assert info is not None
    assert (info.tenant_id, info.roles, info.scope, info.expires_at) == ("42", (), None, None)
    expired = _auth.read_token(make_token("a", exp=1))
    assert expired is not None
    assert expired.expired
    huge = _auth.read_token(make_token("a", exp=10**20))
    assert huge is not None
    assert huge.expires_at is None
    no_tenant = _auth.read_token(make_token(None, roles=["r"]))
    assert no_tenant is not None
    assert (no_tenant.tenant_id, no_tenant.roles) == (None, ("r",))


@pytest.mark.parametrize(
    "token",
    [
        "opaque",
        "a.b",
        "a.b.c.d.e",
        "h.!!!.s",
        f"h.{b64url({'a': 1})[:-2]}x=.s",
        "h." + "WzFd" + ".s",  # a JSON array, not an object
        "h." + "_w" + ".s",  # not UTF-8
    ],
)
def test_unreadable_tokens_have_no_info(token: str) -> None:
    assert _auth.read_token(token) is None


def test_limits_are_checked() -> None:
    assert _config.check_timeout(None).read == _config.DEFAULT_TIMEOUT
    assert _config.check_timeout(2).connect == 2.0
    for bad in (0, -1, float("nan"), float("inf"), True, "3"):
        with pytest.raises(CachecoreConfigError, match="timeout must be a positive number"):
            _config.check_timeout(bad)  # type: ignore[arg-type]
    with pytest.raises(
        CachecoreConfigError, match=r"max_concurrency must be an integer >= 1, got 2\.5"
    ):
        _config.check_count(2.5, name="max_concurrency", minimum=1)


def test_dep_ids_must_be_a_sequence_of_strings() -> None:
    assert _config.check_dep_ids(("a", "b")) == ["a", "b"]
    with pytest.raises(CachecoreConfigError, match=r"write dep_ids=\['table:products'\]"):
        _config.check_dep_ids("table:products")
    for bad in ({"a"}, (x for x in "ab"), 3):
        with pytest.raises(CachecoreConfigError, match="dep_ids must be a list"):
            _config.check_dep_ids(bad)


# -- the 0.1.0 names -----------------------------------------------------------------


def test_0_1_0_names_still_work_and_warn() -> None:
    renamed = {
        "CacheCoreClient": cachecore.CachecoreClient,
        "DepDeclaration": cachecore.Dep,
        "CacheCoreError": cachecore.CachecoreError,
        "CacheCoreAuthError": cachecore.CachecoreAuthError,
        "CacheCoreRateLimitError": cachecore.CachecoreRateLimitError,
    }
    for old, new in renamed.items():
        with pytest.warns(
            DeprecationWarning, match=rf"cachecore\.{old} .*use cachecore\.{new.__name__}"
        ):
            assert getattr(cachecore, old) is new
        assert old not in cachecore.__all__
    with pytest.warns(
        DeprecationWarning, match=r"use cachecore\.CachecoreClient\(\.\.\.\)\.transport"
    ):
        from cachecore import CacheCoreTransport  # noqa: F401
    assert "CacheCoreTransport" not in cachecore.__all__
    assert cachecore.InvalidateResult.__name__ == "InvalidateResult"
    with pytest.warns(DeprecationWarning, match="use cachecore.errors.CachecoreAuthError"):
        from cachecore.errors import CacheCoreAuthError
    with pytest.warns(DeprecationWarning, match="use cachecore.errors.CachecoreRateLimitError"):
        from cachecore.errors import CacheCoreRateLimitError

    assert CacheCoreAuthError is cachecore.CachecoreAuthError
    assert CacheCoreRateLimitError is cachecore.CachecoreRateLimitError
    for name in cachecore.__all__:
        assert hasattr(cachecore, name), name
    with pytest.raises(AttributeError, match="has no attribute 'CacheCoreNothing'"):
        cachecore.CacheCoreNothing  # noqa: B018


async def _send(transport: httpx.AsyncBaseTransport, *urls: str) -> None:
    async with httpx.AsyncClient(transport=transport) as http:
        for url in urls:
            await http.get(url)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_0_1_0_transport_call_form() -> None:
    seen: list[httpx.Request] = []
    mock = httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200))  # type: ignore[func-returns-value]
    with pytest.warns(DeprecationWarning, match="0.1.0 name"):
        old_transport = cachecore.CacheCoreTransport
    # It wraps the transport rather than subclassing it and reaching into its state.
    assert not issubclass(old_transport, cachecore.AsyncCachecoreTransport)
    with pytest.warns(DeprecationWarning, match="sends the tenant token to every host"):
        legacy = old_transport("legacy-token", wrapped=mock)
    await _send(legacy, "http://anywhere.test/v1/x", "https://elsewhere.test:8443/")
    assert seen[-2].headers["x-cachecore-token"] == "legacy-token"
    assert seen[-1].headers["x-cachecore-token"] == "legacy-token"

    scoped = old_transport("legacy-token", wrapped=mock, gateway_url="http://gw.test")
    await _send(scoped, "http://gw.test/v1/x", "http://other.test/")
    assert seen[-2].headers["x-cachecore-token"] == "legacy-token"
    assert "x-cachecore-token" not in seen[-1].headers
    assert "every host" in repr(legacy)
    assert "http://gw.test" in repr(scoped)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_0_1_0_transport_closes_wrapped_once_and_refuses_after() -> None:
    closed: list[str] = []

    class Wrapped(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(200)

        async def aclose(self) -> None:
            closed.append("closed")

    with pytest.warns(DeprecationWarning, match="0.1.0 name"):
        old_transport = cachecore.CacheCoreTransport
    with pytest.warns(DeprecationWarning, match="every host"):
        legacy = old_transport("t", wrapped=Wrapped())
    await _send(legacy, "http://a.test/", "http://b.test/")  # two origins, one wrapped
    assert closed == ["closed"]  # the client closed its transport, which closed wrapped once
    with pytest.raises(RuntimeError, match="is closed"):
        await _send(legacy, "http://a.test/")


def test_errors_pickle_with_their_fields() -> None:
    err = cachecore.CachecoreRateLimitError("slow", body="b", request_id="r", retry_after=2.0)
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is cachecore.CachecoreRateLimitError
    assert (str(again), again.retry_after, again.request_id, again.status_code) == (
        "slow",
        2.0,
        "r",
        429,
    )


def test_http2_defaults_to_whether_h2_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from cachecore._config import check_http2

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "h2" else real(name)
    )
    assert check_http2(None) is False
    assert check_http2(False) is False
    with pytest.raises(CachecoreConfigError, match=r"cachecore-python\[http2\]"):
        check_http2(True)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    assert check_http2(None) is True
    with pytest.raises(CachecoreConfigError, match="True, False or None"):
        check_http2("yes")


@pytest.mark.parametrize(("concurrency", "pools"), [(1, 1), (4, 1), (5, 2), (32, 8)])
def test_invalidations_use_small_connection_pools(concurrency: int, pools: int) -> None:
    from cachecore import SyncCachecoreClient

    with SyncCachecoreClient("http://gw.test", "tok", max_concurrency=concurrency) as cc:
        assert len(cc._pools.get()) == pools
        assert not cc.is_closed
    assert cc.is_closed
