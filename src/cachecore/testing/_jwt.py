"""Minting and verifying HS256 tenant tokens (PROTOCOL.md section 5).

The reference gateway holds the shared secret and is the only place that checks
signatures; the splitting and base64url helpers are the SDK's own (``_auth``),
so the client and the gateway can never disagree on what a token looks like.
Written by hand (no PyJWT) because HS256 is a dozen lines and the gateway must
refuse every other algorithm anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cachecore._auth import b64url_decode, b64url_encode, decode_segment, split_token
from cachecore.testing._http import Refused

#: Tokens longer than this are refused before any decoding (cheap DoS guard).
MAX_TOKEN_CHARS = 8 * 1024
#: The shortest secret the gateway signs with: HS256 needs a key at least as long as
#: its 256-bit hash (RFC 7518 section 3.2).
MIN_SECRET_BYTES = 32
#: How to make a good secret, quoted by every message that refuses one.
MAKE_SECRET = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'
#: The largest ``exp`` accepted: 9999-12-31T23:59:59Z. Beyond it a date is nonsense.
MAX_EXP = 253_402_300_799
#: The longest tenant id and role, in characters, and the most roles a token may carry.
MAX_TENANT_CHARS = 256
MAX_ROLE_CHARS = 256
MAX_ROLES = 64


@dataclass(frozen=True, slots=True)
class Claims:
    """The verified claims the gateway acts on."""

    tenant_id: str
    roles: tuple[str, ...]
    scope: frozenset[str] | None  # None: no ``scope`` claim, every endpoint allowed
    expires_at: float


class TokenRejected(Refused):
    """A token failed verification (a 401); ``code`` is machine-readable, the message never quotes it."""


def _secret_bytes(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def secret_problem(secret: str | bytes) -> str | None:
    """Why ``secret`` cannot sign the gateway's tokens, or ``None`` when it can.

    The gateway's own settings (``GatewayConfig``, ``cachecore gateway``,
    ``cachecore token mint``) check this; ``mint_token`` does not, so tests can
    still forge tokens with any other secret. The message never quotes the secret.
    """
    raw = _secret_bytes(secret)
    if not raw.strip():
        what = "empty" if not raw else "only whitespace"
        return f"the secret is {what}; make one with: {MAKE_SECRET}"
    if len(raw) < MIN_SECRET_BYTES:
        return (
            f"the secret is {len(raw)} bytes; HS256 needs at least {MIN_SECRET_BYTES}"
            f" (RFC 7518 section 3.2); make one with: {MAKE_SECRET}"
        )
    return None


def _sign(secret: str | bytes, signing_input: str) -> str:
    digest = hmac.new(_secret_bytes(secret), signing_input.encode("ascii"), hashlib.sha256)
    return b64url_encode(digest.digest())


def _segment(obj: Mapping[str, Any]) -> str:
    return b64url_encode(json.dumps(obj, separators=(",", ":")).encode("utf-8"))


def mint_token(
    secret: str | bytes,
    tenant_id: str | None,
    *,
    expires_in: float | None = 3600,
    roles: Sequence[str] | None = None,
    scope: str | None = None,
    prefix: str | None = "cc_test_local",
    alg: str = "HS256",
    extra_claims: Mapping[str, Any] | None = None,
) -> str:
    """Mint a tenant token ``<prefix>.<header>.<payload>.<signature>`` signed HS256.

    Bad tokens for tests come from the same call: ``expires_in=-3600`` (expired),
    another ``secret`` (bad signature), ``alg="none"`` (unsigned, empty signature),
    ``tenant_id=None`` (claim left out), ``expires_in=None`` (no ``exp``),
    ``extra_claims={"exp": 1e308}`` or a blank tenant id (refused claims).
    ``prefix=None`` gives a bare JWT.

    Unlike the gateway (``GatewayConfig``), it takes a secret of any length and
    any tenant id: a test forging a token with a short, wrong secret must be able to.
    """
    now = time.time()
    claims: dict[str, Any] = {"iat": int(now)}
    if tenant_id is not None:
        claims["tenant_id"] = tenant_id
    if expires_in is not None:
        claims["exp"] = int(now + expires_in)
    if roles is not None:
        claims["roles"] = list(roles)
    if scope is not None:
        claims["scope"] = scope
    claims.update(extra_claims or {})
    signing_input = f"{_segment({'alg': alg, 'typ': 'JWT'})}.{_segment(claims)}"
    signature = _sign(secret, signing_input) if alg == "HS256" else ""
    jwt = f"{signing_input}.{signature}"
    return jwt if prefix is None else f"{prefix}.{jwt}"


def _scope_set(value: object) -> frozenset[str] | None:
    """``scope`` as a set: OAuth style space- or comma-separated string, or a list."""
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset(value.replace(",", " ").split())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return frozenset(value)
    raise TokenRejected("malformed_token", "the token's scope claim must be a string or a list")


def verify_token(
    token: str,
    secret: str | bytes,
    *,
    leeway: float,
    now: float | None = None,
    max_lifetime: float | None = None,
) -> Claims:
    """Verify signature, algorithm and claims; return the claims or raise ``TokenRejected``.

    The signature must be canonical unpadded base64url (the one spelling of its
    bytes), ``exp`` a number no later than year 9999 and, with ``max_lifetime``,
    no further than that many seconds (plus ``leeway``) from ``now``. Tenant ids
    and roles must be printable, not blank and bounded in length.
    """
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenRejected("malformed_token", "the token is too long to be a tenant token")
    _, jwt = split_token(token.strip())
    parts = jwt.split(".")
    if len(parts) != 3:
        raise TokenRejected(
            "malformed_token",
            "the token is not a JWT (expected cc_<env>_<id>.<header.payload.sig>)",
        )
    try:
        header = decode_segment(parts[0])
        claims = decode_segment(parts[1])
        signature = b64url_decode(parts[2])
    except ValueError as exc:
        raise TokenRejected("malformed_token", f"the token is not a readable JWT: {exc}") from None
    if b64url_encode(signature) != parts[2]:
        # base64 leaves spare bits in the last character: four spellings decode to the
        # same bytes. Only the canonical one is the signature the gateway made.
        raise TokenRejected(
            "malformed_token", "the token's signature is not canonical unpadded base64url"
        )
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        raise TokenRejected("alg_none", "unsigned tokens (alg none) are refused; sign with HS256")
    if alg != "HS256":
        raise TokenRejected("unsupported_alg", "only HS256 tokens are accepted")
    expected = b64url_decode(_sign(secret, f"{parts[0]}.{parts[1]}"))
    if not hmac.compare_digest(signature, expected):
        raise TokenRejected(
            "bad_signature", "the token's signature does not match this gateway's secret"
        )
    return _check_claims(
        claims, leeway=leeway, now=time.time() if now is None else now, max_lifetime=max_lifetime
    )


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def acceptable_name(value: str, max_chars: int) -> bool:
    """A tenant id or role the gateway accepts: printable, not blank, bounded."""
    return len(value) <= max_chars and value.isprintable() and not value.isspace()


def _check_claims(
    claims: Mapping[str, Any], *, leeway: float, now: float, max_lifetime: float | None = None
) -> Claims:
    tenant = claims.get("tenant_id")
    if not isinstance(tenant, str) or not tenant:
        raise TokenRejected("missing_tenant", "the token carries no tenant_id claim")
    if not acceptable_name(tenant, MAX_TENANT_CHARS):
        raise TokenRejected(
            "invalid_tenant",
            f"the token's tenant_id must be printable, not blank and at most"
            f" {MAX_TENANT_CHARS} characters (it has {len(tenant)})",
        )
    exp = _number(claims.get("exp"))
    if exp is None:
        raise TokenRejected("missing_exp", "the token carries no numeric exp claim")
    if exp > MAX_EXP:
        raise TokenRejected("invalid_exp", "the token's exp is later than the year 9999")
    if now > exp + leeway:
        raise TokenRejected("token_expired", "the token has expired; mint a new one")
    if max_lifetime is not None and exp > now + max_lifetime + leeway:
        raise TokenRejected(
            "token_lifetime_too_long",
            f"the token expires more than {max_lifetime:g} s from now, the longest this"
            " gateway accepts; mint one with a shorter lifetime",
        )
    nbf = claims.get("nbf")
    if nbf is not None and (_number(nbf) is None or now + leeway < float(nbf)):
        raise TokenRejected("token_not_yet_valid", "the token is not valid yet (nbf)")
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise TokenRejected("malformed_token", "the token's roles claim must be a list of strings")
    if len(roles) > MAX_ROLES or not all(r and acceptable_name(r, MAX_ROLE_CHARS) for r in roles):
        raise TokenRejected(
            "invalid_roles",
            f"the token's roles must be at most {MAX_ROLES}, each printable, not blank and"
            f" at most {MAX_ROLE_CHARS} characters",
        )
    return Claims(
        tenant_id=tenant,
        roles=tuple(sorted(set(roles))),
        scope=_scope_set(claims.get("scope")),
        expires_at=exp,
    )
