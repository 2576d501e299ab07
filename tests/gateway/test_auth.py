"""Authentication: every bad token kind is 401, valid-but-not-allowed is 403."""

from __future__ import annotations

import httpx
import pytest
from gateway_helpers import SECRET, chat, error_of, make_gateway

from cachecore._auth import b64url_encode, split_token
from cachecore._wire import AUTHORIZATION_HEADER, CACHE_HEADER, INVALIDATE_PATH, TOKEN_HEADER
from cachecore.testing import (
    IN_PROCESS_URL,
    GatewayConfig,
    ReferenceGateway,
    TokenRejected,
    mint_token,
    verify_token,
)


def _tamper_payload(token: str) -> str:
    prefix, jwt = split_token(token)
    header, _, sig = jwt.split(".")
    payload = b64url_encode(b'{"tenant_id":"victim","exp":9999999999}')
    return f"{prefix}.{header}.{payload}.{sig}"


BAD_TOKENS = {
    "not_a_jwt": ("just-some-api-key", "malformed_token"),
    "two_segments": ("cc_test_local.abc.def", "malformed_token"),
    "bad_base64": ("cc_test_local.a$b.c$d.e$f", "malformed_token"),
    "not_json": (f"{b64url_encode(b'nope')}.{b64url_encode(b'x')}.sig", "malformed_token"),
    "wrong_secret": (mint_token("another-secret", "tenant-a"), "bad_signature"),
    "tampered": (_tamper_payload(mint_token(SECRET, "tenant-a")), "bad_signature"),
    "alg_none": (mint_token(SECRET, "tenant-a", alg="none"), "alg_none"),
    "alg_hs512": (mint_token(SECRET, "tenant-a", alg="HS512"), "unsupported_alg"),
    "expired": (mint_token(SECRET, "tenant-a", expires_in=-3600), "token_expired"),
    "no_tenant": (mint_token(SECRET, None), "missing_tenant"),
    "empty_tenant": (mint_token(SECRET, ""), "missing_tenant"),
    "no_exp": (mint_token(SECRET, "tenant-a", expires_in=None), "missing_exp"),
    "bad_roles": (mint_token(SECRET, "t", extra_claims={"roles": "admin"}), "malformed_token"),
    "too_long": ("x" * 10_000, "malformed_token"),
    "padded_signature": (mint_token(SECRET, "tenant-a") + "=", "malformed_token"),
    "exp_1e308": (mint_token(SECRET, "t", extra_claims={"exp": 1e308}), "invalid_exp"),
    "exp_after_9999": (mint_token(SECRET, "t", extra_claims={"exp": 253402300800}), "invalid_exp"),
    "exp_infinity": (mint_token(SECRET, "t", extra_claims={"exp": float("inf")}), "missing_exp"),
    "blank_tenant": (mint_token(SECRET, " "), "invalid_tenant"),
    "tab_tenant": (mint_token(SECRET, "\t"), "invalid_tenant"),
    "nul_tenant": (mint_token(SECRET, "a\x00b"), "invalid_tenant"),
    "newline_tenant": (mint_token(SECRET, "a\nb"), "invalid_tenant"),
    "long_tenant": (mint_token(SECRET, "t" * 257), "invalid_tenant"),
    "empty_role": (mint_token(SECRET, "t", roles=[""]), "invalid_roles"),
    "blank_role": (mint_token(SECRET, "t", roles=["a", " "]), "invalid_roles"),
    "nul_role": (mint_token(SECRET, "t", roles=["a\x00b"]), "invalid_roles"),
    "long_role": (mint_token(SECRET, "t", roles=["r" * 257]), "invalid_roles"),
    "too_many_roles": (
        mint_token(SECRET, "t", roles=[f"r{i}" for i in range(65)]),
        "invalid_roles",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_TOKENS))
def test_bad_tokens_are_401_and_never_echoed(http: httpx.Client, name: str) -> None:
    token, code = BAD_TOKENS[name]
    response = chat(http, token, "hello")
    assert response.status_code == 401
    err = error_of(response)
    assert err["code"] == code
    assert err["type"] == "authentication_error"
    assert token[-20:] not in response.text


@pytest.mark.parametrize("name", sorted(BAD_TOKENS))
def test_bad_tokens_are_401_in_bypass_and_invalidate(http: httpx.Client, name: str) -> None:
    token, code = BAD_TOKENS[name]
    bearer = {AUTHORIZATION_HEADER: f"Bearer {token}"}
    bypass = chat(http, None, "hello", headers=bearer)
    invalidate = http.post(INVALIDATE_PATH, json={"dep_id": "d", "new_hash": "h"}, headers=bearer)
    assert (bypass.status_code, error_of(bypass)["code"]) == (401, code)
    assert (invalidate.status_code, error_of(invalidate)["code"]) == (401, code)


def test_missing_token_is_401(http: httpx.Client) -> None:
    bypass = chat(http, None, "hello")
    empty = chat(http, "", "hello")
    invalidate = http.post(INVALIDATE_PATH, json={"dep_id": "d", "new_hash": "h"})
    for response in (bypass, empty, invalidate):
        assert response.status_code == 401
        assert error_of(response)["code"] == "missing_token"


def test_valid_tokens_bare_or_prefixed(http: httpx.Client) -> None:
    bare = mint_token(SECRET, "tenant-a", prefix=None)
    live = mint_token(SECRET, "tenant-a", prefix="cc_live_abc123")
    assert bare.count(".") == 2
    assert chat(http, bare, "hi").status_code == 200
    assert chat(http, live, "hi").headers[CACHE_HEADER] == "HIT_L1"  # same tenant, same namespace


def test_leeway_accepts_recent_expiry_only(http: httpx.Client) -> None:
    just_expired = mint_token(SECRET, "tenant-a", expires_in=-10)
    long_expired = mint_token(SECRET, "tenant-a", expires_in=-60)
    assert chat(http, just_expired, "hi").status_code == 200
    assert chat(http, long_expired, "hi").status_code == 401


def test_leeway_is_bounded() -> None:
    with pytest.raises(ValueError, match="jwt_leeway"):
        GatewayConfig(secret=SECRET, jwt_leeway=301)
    with pytest.raises(ValueError, match="secret"):
        GatewayConfig(secret="")


def test_not_yet_valid_token_is_401(http: httpx.Client) -> None:
    token = mint_token(SECRET, "t", extra_claims={"nbf": 9_999_999_999})
    response = chat(http, token, "hi")
    assert (response.status_code, error_of(response)["code"]) == (401, "token_not_yet_valid")


def test_blocked_tenant_is_403() -> None:
    gw = make_gateway(blocked_tenants=frozenset({"evil"}))
    with httpx.Client(transport=gw.transport(), base_url=IN_PROCESS_URL) as client:
        blocked = chat(client, gw.mint_token("evil"), "hi")
        fine = chat(client, gw.mint_token("good"), "hi")
        gw.blocked_tenants.add("good")
        now_blocked = chat(client, gw.mint_token("good"), "hi")
    assert (blocked.status_code, error_of(blocked)["code"]) == (403, "tenant_blocked")
    assert error_of(blocked)["type"] == "permission_error"
    assert fine.status_code == 200
    assert now_blocked.status_code == 403


def test_scope_rule(http: httpx.Client, gw: ReferenceGateway) -> None:
    chat_only = gw.mint_token("t", scope="chat")
    invalidate_only = gw.mint_token("t", scope="invalidate")
    wildcard = gw.mint_token("t", scope="read *")
    dep = {"dep_id": "d", "new_hash": "h"}

    def invalidate(token: str) -> httpx.Response:
        return http.post(INVALIDATE_PATH, json=dep, headers={TOKEN_HEADER: token})

    assert chat(http, chat_only, "hi").status_code == 200
    denied = invalidate(chat_only)
    assert (denied.status_code, error_of(denied)["code"]) == (403, "insufficient_scope")
    assert chat(http, invalidate_only, "hi").status_code == 403
    assert invalidate(invalidate_only).status_code == 200
    assert invalidate(wildcard).status_code == 200
    assert chat(http, wildcard, "hi").status_code == 200


def test_verify_token_returns_claims() -> None:
    token = mint_token(SECRET, "tenant-a", roles=["b", "a", "a"], scope="chat, invalidate")
    claims = verify_token(token, SECRET, leeway=0)
    assert claims.tenant_id == "tenant-a"
    assert claims.roles == ("a", "b")
    assert claims.scope == frozenset({"chat", "invalidate"})
    with pytest.raises(TokenRejected) as caught:
        verify_token(token, "other", leeway=0)
    assert caught.value.code == "bad_signature"
    assert token not in str(caught.value)


def _signature_spellings(token: str) -> tuple[str, list[str]]:
    """The canonical token and the three others whose last signature character differs
    only in the two spare bits (all four decode to the same 32 bytes)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    index = alphabet.index(token[-1])
    assert index & 3 == 0, "a canonical HS256 signature leaves the spare bits at zero"
    others = [token[:-1] + alphabet[index | spare] for spare in (1, 2, 3)]
    return token, others


def test_signature_must_be_canonical_base64url(http: httpx.Client) -> None:
    from cachecore._auth import b64url_decode

    canonical, others = _signature_spellings(mint_token(SECRET, "tenant-a"))
    for other in others:  # the same signature bytes, another spelling
        assert b64url_decode(other.rsplit(".", 1)[1]) == b64url_decode(canonical.rsplit(".", 1)[1])
    assert chat(http, canonical, "hi").status_code == 200
    for other in others:
        response = chat(http, other, "hi")
        assert (response.status_code, error_of(response)["code"]) == (401, "malformed_token")
        assert "canonical" in error_of(response)["message"]
        assert other.rsplit(".", 1)[1] not in response.text
        with pytest.raises(TokenRejected) as info:
            verify_token(other, SECRET, leeway=0)
        assert info.value.code == "malformed_token"


def test_absurd_exp_refused() -> None:
    for exp in (1e308, 253402300800, 10**20):
        token = mint_token(SECRET, "t", extra_claims={"exp": exp})
        with pytest.raises(TokenRejected) as info:
            verify_token(token, SECRET, leeway=0)
        assert info.value.code == "invalid_exp"
    last_second = mint_token(SECRET, "t", extra_claims={"exp": 253402300799})
    assert verify_token(last_second, SECRET, leeway=0).expires_at == 253402300799


def test_max_token_lifetime() -> None:
    now = 1_700_000_000.0
    token = mint_token(SECRET, "t", extra_claims={"exp": now + 3600})
    assert verify_token(token, SECRET, leeway=30, now=now).tenant_id == "t"
    assert verify_token(token, SECRET, leeway=30, now=now, max_lifetime=3600).tenant_id == "t"
    assert verify_token(token, SECRET, leeway=30, now=now, max_lifetime=3571).tenant_id == "t"
    with pytest.raises(TokenRejected) as info:
        verify_token(token, SECRET, leeway=30, now=now, max_lifetime=3569)
    assert info.value.code == "token_lifetime_too_long"
    assert token not in info.value.message

    gw = make_gateway(max_token_lifetime=600)
    with httpx.Client(transport=gw.transport(), base_url=IN_PROCESS_URL) as client:
        short = chat(client, gw.mint_token("t", expires_in=300), "hi")
        long = chat(client, gw.mint_token("t", expires_in=86_400), "hi")
        forever = chat(client, gw.mint_token("t", extra_claims={"exp": 253402300799}), "hi")
    assert short.status_code == 200
    for refused in (long, forever):
        assert (refused.status_code, error_of(refused)["code"]) == (401, "token_lifetime_too_long")
    unlimited = make_gateway()
    with httpx.Client(transport=unlimited.transport(), base_url=IN_PROCESS_URL) as client:
        assert chat(client, unlimited.mint_token("t", expires_in=86_400), "hi").status_code == 200


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan")])
def test_max_token_lifetime_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError, match="max_token_lifetime"):
        GatewayConfig(secret=SECRET, max_token_lifetime=bad)


def test_tenant_ids_and_roles_must_be_printable_and_bounded(http: httpx.Client) -> None:
    expected = {
        " ": "invalid_tenant",
        "a\x00b": "invalid_tenant",
        "\u2028": "invalid_tenant",
        "t" * 257: "invalid_tenant",
        "": "missing_tenant",
        "t" * 10_000: "malformed_token",  # the token itself is over MAX_TOKEN_CHARS
    }
    for tenant, code in expected.items():
        response = chat(http, mint_token(SECRET, tenant), "hi")
        assert (response.status_code, error_of(response)["code"]) == (401, code), tenant[:20]
    # The 10k-character tenant is refused on its own too (not only as a too-long token).
    with pytest.raises(TokenRejected) as info:
        verify_token(mint_token(SECRET, "t" * 5_000), SECRET, leeway=0)
    assert info.value.code == "invalid_tenant"
    assert "5000" in info.value.message
    for roles in ([" "], ["a\x00b"], [""], ["r" * 5_000], [f"r{i}" for i in range(65)]):
        response = chat(http, mint_token(SECRET, "t", roles=roles), "hi")
        assert (response.status_code, error_of(response)["code"]) == (401, "invalid_roles")
    # The limits themselves are accepted.
    for tenant, roles in (("t" * 256, ["r" * 256]), ("é-ü 1", [f"r{i}" for i in range(64)])):
        claims = verify_token(mint_token(SECRET, tenant, roles=roles), SECRET, leeway=0)
        assert (claims.tenant_id, len(claims.roles)) == (tenant, len(roles))
