"""The tenant token stays secret; dependency ids cannot inject headers.

The token must never show in ``repr``/``str``, log records at any level (the
SDK's, httpx's, httpcore's, the gateway's), exception messages or CLI output,
and goes only to the gateway's origin, redirects included.
"""

from __future__ import annotations

import logging
import re

import httpx
import pytest
from hardening_helpers import FAST, FUZZ_EXAMPLES, chat_body, closed_port
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cachecore.__main__ as cli
from cachecore import CachecoreClient, Dep, SyncCachecoreClient
from cachecore._auth import TokenProvider
from cachecore._wire import DEPS_HEADER_LC, TOKEN_HEADER_LC, decode_deps
from cachecore.errors import CachecoreAuthError, CachecoreConfigError, CachecoreError
from cachecore.testing import Fault, ReferenceGateway, mint_token, serve
from shared_constants import GATEWAY_URL

LOGGERS = ("", "cachecore", "cachecore.testing", "httpx", "httpcore", "uvicorn", "hpack")


def secrets_of(token: str) -> list[str]:
    """The token and every part of it that would let someone reuse or forge it."""
    jwt = token.split(".", 1)[1] if token.startswith("cc_") else token
    _header, payload, signature = jwt.split(".")
    return [token, jwt, signature, f"{payload}.{signature}"]


def assert_clean(text: str, token: str) -> None:
    for secret in secrets_of(token):
        assert secret not in text, (
            f"token material leaked: ...{text[max(0, text.find(secret) - 40) :][:120]}"
        )


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def all_log_text(caplog: pytest.LogCaptureFixture) -> str:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    return "\n".join(handler.format(r) for r in caplog.records)


def test_token_never_in_logs_reprs_or_errors_over_loopback(
    gw: ReferenceGateway, debug_logs: pytest.LogCaptureFixture
) -> None:
    token = gw.mint_token("acme", roles=["reader"])
    forged = mint_token("not-the-secret", "acme")
    texts: list[str] = []
    gw.add_fault(Fault(503), path="/v1/invalidate", times=10)
    with serve(gw) as url:
        for tok in (token, forged):
            with SyncCachecoreClient(url, tok, debug=True, retry_policy=FAST, max_retries=1) as cc:
                texts += [repr(cc), str(cc), repr(cc.transport), repr(cc.token_info)]
                with httpx.Client(transport=cc.transport, base_url=url + "/v1") as http:
                    with cc.request_context(deps=[Dep("doc:1")]) as ctx:
                        try:
                            r = http.post("/chat/completions", json=chat_body("hello"))
                            r = http.post("/chat/completions", json=chat_body("hello"))
                            texts.append(repr(r.headers))
                        except CachecoreAuthError as exc:
                            texts += [str(exc), repr(exc), exc.body, repr(exc.__dict__)]
                    texts.append(repr(ctx))
                for result in cc.invalidate_many(["doc:1", "doc:2"]):
                    texts += [repr(result), str(result), result.model_dump_json()]
                    texts += [str(result.exception), repr(result.exception)]
                    assert not result.ok
        down = f"http://127.0.0.1:{closed_port()}"
        with SyncCachecoreClient(down, token, max_retries=0) as cc:
            result = cc.invalidate("doc:1")
            texts += [result.error or "", repr(result.exception)]
    assert any("cache=MISS" in r.getMessage() for r in debug_logs.records)  # debug logging was on
    assert any(r.levelno == logging.WARNING for r in debug_logs.records)
    for tok in (token, forged):
        assert_clean(all_log_text(debug_logs), tok)
        assert_clean("\n".join(texts), tok)


@pytest.mark.parametrize("status", [401, 403, 429, 503])
def test_token_echoed_by_a_proxy_is_redacted(
    status: int, debug_logs: pytest.LogCaptureFixture
) -> None:
    token = mint_token("s", "acme")

    def echo(request: httpx.Request) -> httpx.Response:  # a proxy quoting the request back
        return httpx.Response(status, text=f"bad request headers: {dict(request.headers)!r}")

    texts = []
    with SyncCachecoreClient(
        GATEWAY_URL,
        token,
        inner_transport=httpx.MockTransport(echo),
        max_retries=1,
        retry_policy=FAST,
        gateway_errors="raise",
        debug=True,
    ) as cc:
        result = cc.invalidate("doc:1")
        texts += [result.error or "", result.model_dump_json(), repr(result)]
        with httpx.Client(transport=cc.transport, base_url=GATEWAY_URL) as http:
            try:
                http.post("/v1/chat/completions", json=chat_body("hi"))
            except CachecoreError as exc:
                texts += [str(exc), repr(exc), getattr(exc, "body", "")]
    assert "[REDACTED]" in "\n".join(texts)
    assert_clean("\n".join(texts), token)
    assert_clean(all_log_text(debug_logs), token)


def test_token_not_in_config_errors_or_provider_repr() -> None:
    token = mint_token("s", "acme")
    provider = TokenProvider(token)
    assert_clean(repr(provider) + str(provider), token)
    for bad in (token + " ", token + "\n", token + "é"):
        with pytest.raises(CachecoreConfigError) as info:
            CachecoreClient(GATEWAY_URL, bad)
        assert_clean(str(info.value) + repr(info.value), token)
    with pytest.raises(CachecoreConfigError) as info:
        CachecoreClient(GATEWAY_URL, lambda: token + "\t")
    assert_clean(str(info.value), token)


def test_cli_never_prints_the_token(
    gw: ReferenceGateway, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = gw.mint_token("acme", scope="chat invalidate")
    monkeypatch.setenv("CACHECORE_TOKEN", token)
    outputs = []
    for argv in (
        ["token", "inspect", token],
        ["token", "inspect"],
        ["token", "inspect", "--json"],
        ["token", "inspect", token[:-3] + "!!"],
    ):
        code = cli.main(argv)
        out = capsys.readouterr()
        outputs.append(out.out + out.err)
        assert code in (0, 2)
    assert "acme" in outputs[0]
    gw.add_fault(Fault(503), path="/v1/invalidate", times=2)
    with serve(gw) as url:
        for argv in (
            ["invalidate", "doc:1", "--gateway-url", url],
            ["invalidate", "doc:1", "doc:2", "--gateway-url", url, "--json", "--max-retries", "0"],
            [
                "invalidate",
                "doc:1",
                "--gateway-url",
                f"http://127.0.0.1:{closed_port()}",
                "--max-retries",
                "0",
            ],
        ):
            cli.main(argv)
            out = capsys.readouterr()
            outputs.append(out.out + out.err)
    assert "ok      doc:1" in outputs[4]
    assert "FAILED" in outputs[6]
    assert_clean("\n".join(outputs), token)


# -- the token goes only to the gateway's origin ------------------------------------------


ELSEWHERE = [
    "http://evil.test/steal",
    "https://cachecore.test/v1/chat/completions",  # other scheme
    "http://cachecore.test:8080/v1/chat/completions",  # other port
    "http://cachecore.test.evil.test/v1/chat/completions",
    "http://evil.test/@cachecore.test/",
]


@pytest.mark.parametrize("target", ELSEWHERE)
@pytest.mark.anyio
async def test_token_not_sent_after_cross_origin_redirect(target: str) -> None:
    token = mint_token("s", "acme")
    seen: list[httpx.Request] = []

    async def net(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if (
            request.url.host == "cachecore.test"
            and request.url.port is None
            and request.url.scheme == "http"
        ):
            return httpx.Response(307, headers={"location": target})
        return httpx.Response(200, json={})

    cc = CachecoreClient(GATEWAY_URL, token, inner_transport=httpx.MockTransport(net))
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        transport=cc.transport, base_url=GATEWAY_URL, follow_redirects=True, headers=headers
    ) as http:
        with cc.request_context(deps=[Dep("doc:1")]):
            await http.post("/v1/chat/completions", json=chat_body("hi"))
        # A caller setting our header by hand towards another host loses it too.
        await http.get(target, headers={"X-CacheCore-Token": token, "X-CacheCore-Deps": "x"})
    assert seen[0].headers[TOKEN_HEADER_LC] == token
    for request in seen[1:]:
        assert TOKEN_HEADER_LC not in request.headers
        assert DEPS_HEADER_LC not in request.headers
    # httpx drops Authorization (the OpenAI SDK's api_key, often the token) on a redirect
    # to another host; it keeps it on an http -> https upgrade of the same host.
    if seen[1].url.host != "cachecore.test":
        assert "authorization" not in seen[1].headers


def test_invalidation_does_not_follow_redirects() -> None:
    token = mint_token("s", "acme")
    hosts: list[str] = []

    def net(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        return httpx.Response(308, headers={"location": "http://evil.test/v1/invalidate"})

    with SyncCachecoreClient(
        GATEWAY_URL, token, inner_transport=httpx.MockTransport(net), retry_policy=FAST
    ) as cc:
        result = cc.invalidate("doc:1")
    assert not result.ok
    assert result.status_code == 308
    assert result.attempts == 1
    assert hosts == ["cachecore.test"]


# -- dependency ids cannot inject headers --------------------------------------------------

_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ids=st.lists(st.text(min_size=0, max_size=40), min_size=1, max_size=5),
    hashes=st.lists(st.text(max_size=10) | st.sampled_from(["\r\nX-Evil: 1", "v1\n"]), max_size=5),
)
def test_dep_ids_cannot_inject_headers(ids: list[str], hashes: list[str]) -> None:
    pairs = list(zip(ids, hashes + ["v1"] * len(ids)))
    try:
        deps = [Dep(i, hash=h) for i, h in pairs]
    except CachecoreConfigError:
        return  # refused at construction: control characters, empty, lone surrogates
    seen: list[httpx.Request] = []

    def net(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    with SyncCachecoreClient(GATEWAY_URL, "tok", inner_transport=httpx.MockTransport(net)) as cc:  # noqa: SIM117 (nesting is what is tested)
        with httpx.Client(transport=cc.transport, base_url=GATEWAY_URL) as http:
            try:
                with cc.request_context(deps=deps):
                    http.post("/v1/chat/completions", content=b"{}")
            except CachecoreConfigError:
                return  # over the header size limit
    (request,) = seen
    names = {k.lower() for k in request.headers}
    assert names <= {
        "host",
        "accept",
        "accept-encoding",
        "connection",
        "user-agent",
        "content-length",
        TOKEN_HEADER_LC,
        DEPS_HEADER_LC,
    }
    value = request.headers[DEPS_HEADER_LC]
    assert _B64URL.match(value)
    assert decode_deps(value) == [(d.dep_id, d.expected_hash) for d in deps]


@pytest.mark.parametrize("bad", ["a\r\nX-Evil: 1", "a\nb", "a\x00", "\u2028", "", "\ud800"])
def test_control_characters_refused_in_every_entry_point(bad: str) -> None:
    with pytest.raises(CachecoreConfigError):
        Dep(bad)
    with pytest.raises(CachecoreConfigError):
        Dep("ok", hash=bad)
    with SyncCachecoreClient(
        GATEWAY_URL, "tok", inner_transport=httpx.MockTransport(lambda r: httpx.Response(200))
    ) as cc:
        with pytest.raises(CachecoreConfigError):
            cc.invalidate(bad)
        with pytest.raises(CachecoreConfigError):
            cc.invalidate("ok", new_hash=bad)
        with pytest.raises(CachecoreConfigError):
            cc.invalidate_many(["ok", bad])
