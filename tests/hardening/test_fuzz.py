"""Hypothesis fuzzing of the parsers: cache headers, the deps codec, tokens, gateway requests.

CI runs ``CACHECORE_FUZZ_EXAMPLES`` examples per test (150 by default);
``nox -s fuzz`` runs 20,000.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from hardening_helpers import FUZZ_EXAMPLES, SECRET, make_gateway
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cachecore import CacheStatus
from cachecore._auth import read_token
from cachecore._wire import KNOWN_STATUSES, decode_deps, encode_deps
from cachecore.testing import TokenRejected, verify_token
from cachecore.testing._http import GatewayRequest

FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

HEADER_NAMES = st.sampled_from(
    [
        "X-Cache",
        "x-cache",
        "X-CACHE",
        "X-Cache-Similarity",
        "x-cache-age",
        "X-Cache-Age",
        "X-CacheCore-Namespace-Hint",
    ]
) | st.text(max_size=12)
HEADER_VALUES = st.sampled_from(
    ["HIT_L1", "hit_l2", " MISS ", "nan", "inf", "-1", "1e400", "0.93", "12", "1.5", "", "\x00"]
) | st.text(max_size=30)


@FUZZ
def _sendable(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The header items httpx accepts: printable ASCII, a non-blank name without ``:``."""
    return [
        (k, v)
        for k, v in items
        if k.isascii()
        and v.isascii()
        and k.isprintable()
        and v.isprintable()
        and k.strip()
        and ":" not in k
    ]


@given(items=st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=8), form=st.integers(0, 3))
def test_cache_status_from_headers_never_raises(items: list[tuple[str, str]], form: int) -> None:
    headers: Any
    if form == 0:
        headers = dict(items)
    elif form == 1:
        ascii_items = _sendable(items)
        try:
            headers = httpx.Headers(ascii_items)
        except Exception:
            return
    elif form == 2:
        headers = {
            k.encode("utf-8", "replace") if k else b"": v.encode("utf-8", "replace")
            for k, v in items
        }
    else:
        headers = (
            httpx.Response(
                200,
                headers=_sendable(items),
            )
            if items
            else None
        )
    try:
        status = CacheStatus.from_headers(headers)
    except httpx.LocalProtocolError:
        return
    assert status.status in KNOWN_STATUSES | {"UNKNOWN"}
    assert 0.0 <= status.similarity <= 1.0
    assert isinstance(status.age_seconds, int)
    assert status.age_seconds >= 0


IDENT = st.text(
    st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp")), min_size=1, max_size=30
)


@FUZZ
@given(pairs=st.lists(st.tuples(IDENT, IDENT), max_size=10))
def test_deps_codec_round_trips(pairs: list[tuple[str, str]]) -> None:
    value = encode_deps(pairs)
    assert value.isascii()
    assert "=" not in value
    assert "\n" not in value
    assert decode_deps(value) == pairs


@FUZZ
@given(value=st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.hex()))
def test_deps_decoder_only_raises_value_error(value: str) -> None:
    try:
        decode_deps(value)
    except ValueError:
        pass


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@FUZZ
@given(payload=JSONISH)
def test_deps_decoder_on_arbitrary_json(payload: Any) -> None:
    import base64

    value = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    try:
        deps = decode_deps(value)
    except ValueError:
        return
    assert all(isinstance(a, str) and isinstance(b, str) for a, b in deps)


def token_like() -> st.SearchStrategy[str]:
    seg = st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/.", max_size=60
    )
    encoded_json = JSONISH.map(
        lambda v: (
            __import__("base64").urlsafe_b64encode(json.dumps(v).encode()).rstrip(b"=").decode()
        )
    )
    jwt = st.tuples(encoded_json | seg, encoded_json | seg, seg).map(".".join)
    return (
        st.text(max_size=100)
        | jwt
        | st.tuples(st.sampled_from(["cc_live_x.", "cc_test_local.", ""]), jwt).map("".join)
    )


@FUZZ
@given(token=token_like())
def test_token_parsing_never_crashes(token: str) -> None:
    info = read_token(token)
    assert info is None or info.tenant_id is None or isinstance(info.tenant_id, str)
    with pytest.raises(TokenRejected):
        verify_token(token, SECRET, leeway=30)


@FUZZ
@given(position=st.integers(min_value=0), char=st.sampled_from("AZaz09-_."))
def test_any_tampered_token_is_rejected(position: int, char: str) -> None:
    gw = make_gateway()
    token = gw.mint_token("acme", prefix=None)
    i = position % len(token)
    tampered = token[:i] + char + token[i + 1 :]
    if tampered == token:
        return
    try:
        claims = verify_token(tampered, SECRET, leeway=30)
    except TokenRejected:
        return
    # Only base64 padding-bit changes in the last char of a segment can decode identically.
    assert claims.tenant_id == "acme"


GATEWAY = make_gateway(max_entries=200, max_body_bytes=64 * 1024)
GOOD = GATEWAY.mint_token("acme")
PATHS = st.sampled_from(
    [
        "/v1/chat/completions",
        "/v1/invalidate",
        "/health",
        "/",
        "/v1/../health",
        "/v1/chat/completions/",
    ]
) | st.text(max_size=20)
TOKENS = (
    st.none() | st.just(GOOD) | st.just(GATEWAY.mint_token("acme", expires_in=-999)) | token_like()
)
BODIES = (
    JSONISH.map(lambda v: json.dumps(v).encode())
    | st.builds(
        lambda m, msgs, extra: json.dumps({"model": m, "messages": msgs, **extra}).encode(),
        JSONISH,
        JSONISH,
        st.dictionaries(
            st.sampled_from(["stream", "n", "temperature", "stream_options", "dep_id", "new_hash"]),
            JSONISH,
            max_size=3,
        ),
    )
    | st.builds(lambda d, h: json.dumps({"dep_id": d, "new_hash": h}).encode(), JSONISH, JSONISH)
    | st.binary(max_size=200)
)
EXTRA_HEADERS = st.lists(
    st.tuples(
        st.sampled_from(
            ["x-cachecore-deps", "content-type", "authorization", "x-cachecore-token", "x-cache"]
        )
        | st.text(max_size=10),
        st.text(max_size=40) | st.sampled_from(["application/json", "text/html", "Bearer " + GOOD]),
    ),
    max_size=4,
)


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD"]) | st.text(max_size=8),
    path=PATHS,
    token=TOKENS,
    headers=EXTRA_HEADERS,
    body=BODIES,
)
def test_gateway_answers_malformed_requests_with_4xx(
    method: str, path: str, token: str | None, headers: list[tuple[str, str]], body: bytes
) -> None:
    sent = list(headers) if token is None else [("x-cachecore-token", token), *headers]
    failures: list[logging.LogRecord] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            failures.append(record)

    log = logging.getLogger("cachecore.testing")
    handler = Catch(level=logging.ERROR)
    log.addHandler(handler)
    try:
        response = GATEWAY.handle(GatewayRequest.build(method, path, sent, body))
    finally:
        log.removeHandler(handler)
    assert response.status < 500, response.body[:300]
    assert not failures
    if response.status >= 400:
        assert json.loads(response.body)["error"]["code"]
