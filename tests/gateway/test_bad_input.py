"""Bad input is a 4xx JSON error naming the problem, never a 500, never a crash."""

from __future__ import annotations

import json

import httpx
import pytest
from gateway_helpers import chat, error_of, make_gateway
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cachecore._wire import CHAT_COMPLETIONS_PATH, DEPS_HEADER, HEALTH_PATH, TOKEN_HEADER
from cachecore.testing import IN_PROCESS_URL, GatewayRequest, ReferenceGateway

JSON = {"content-type": "application/json"}

CASES: dict[str, tuple[bytes, dict[str, str], int, str]] = {
    "malformed_json": (b'{"model": ', JSON, 400, "invalid_json"),
    "not_utf8": (b"\xff\xfe{}", JSON, 400, "invalid_json"),
    "json_array": (b"[1, 2]", JSON, 400, "invalid_body"),
    "wrong_content_type": (
        b"model=m",
        {"content-type": "application/x-www-form-urlencoded"},
        415,
        "unsupported_media_type",
    ),
    "missing_model": (
        b'{"messages": [{"role": "user", "content": "x"}]}',
        JSON,
        400,
        "missing_field",
    ),
    "missing_messages": (b'{"model": "m"}', JSON, 400, "missing_field"),
    "empty_messages": (b'{"model": "m", "messages": []}', JSON, 400, "missing_field"),
    "message_not_object": (b'{"model": "m", "messages": ["hi"]}', JSON, 400, "invalid_field"),
    "bad_content": (
        b'{"model": "m", "messages": [{"role": "user", "content": 3}]}',
        JSON,
        400,
        "invalid_field",
    ),
    "stream_not_bool": (
        b'{"model": "m", "stream": "yes", "messages": [{"role": "user", "content": "x"}]}',
        JSON,
        400,
        "invalid_field",
    ),
    "n_two": (
        b'{"model": "m", "n": 2, "messages": [{"role": "user", "content": "x"}]}',
        JSON,
        400,
        "invalid_field",
    ),
    "bad_deps": (
        b'{"model": "m", "messages": [{"role": "user", "content": "x"}]}',
        {**JSON, DEPS_HEADER: "!!"},
        400,
        "invalid_deps_header",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_chat_requests(http: httpx.Client, gw: ReferenceGateway, name: str) -> None:
    content, headers, status, code = CASES[name]
    token = gw.mint_token("t")
    response = http.post(
        CHAT_COMPLETIONS_PATH, content=content, headers={**headers, TOKEN_HEADER: token}
    )
    assert response.status_code == status
    assert error_of(response)["code"] == code
    assert chat(http, token, "still serving?").status_code == 200


def test_oversized_body_is_413() -> None:
    gw = make_gateway(max_body_bytes=1000)
    with httpx.Client(transport=gw.transport(), base_url=IN_PROCESS_URL) as client:
        token = gw.mint_token("t")
        big = chat(client, token, "x" * 2000)
        streamed = client.post(
            CHAT_COMPLETIONS_PATH,
            content=iter([b"{" * 600, b" " * 600, b"never read"]),
            headers={TOKEN_HEADER: token, **JSON},
        )
        ok = chat(client, token, "small")
    assert (big.status_code, error_of(big)["code"]) == (413, "body_too_large")
    assert streamed.status_code == 413
    assert ok.status_code == 200


def test_unknown_path_and_wrong_method(http: httpx.Client) -> None:
    missing = http.get("/v2/whatever")
    wrong = http.get(CHAT_COMPLETIONS_PATH)
    post_health = http.post(HEALTH_PATH)
    assert (missing.status_code, error_of(missing)["code"]) == (404, "unknown_path")
    assert (wrong.status_code, error_of(wrong)["code"]) == (405, "method_not_allowed")
    assert wrong.headers["allow"] == "POST"
    assert post_health.status_code == 405


def test_health(http: httpx.Client) -> None:
    response = http.get(HEALTH_PATH)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


FIELDS = ["model", "messages", "role", "content", "stream", "n", "stream_options"]
GW = make_gateway()
TOKEN = GW.mint_token("fuzz")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(FIELDS), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    raw=st.binary(max_size=200) | JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    deps=st.none() | st.text(max_size=40),
    path=st.sampled_from([CHAT_COMPLETIONS_PATH, "/v1/invalidate", HEALTH_PATH, "/x"]),
    method=st.sampled_from(["GET", "POST", "PUT"]),
)
def test_fuzz_never_500(raw: bytes, deps: str | None, path: str, method: str) -> None:
    headers = {TOKEN_HEADER: TOKEN, "content-type": "application/json"}
    if deps is not None:
        headers[DEPS_HEADER] = deps
    response = GW.handle(GatewayRequest.build(method, path, headers.items(), raw))
    assert response.status < 500
    assert response.status == 200 or response.header("content-type") == "application/json"
