"""Tenant tokens: ``cc_<env>_<id>.<JWT>`` or a bare JWT (PROTOCOL.md section 5).

The SDK reads the JWT payload (never verifying it: only the gateway holds the
secret) to show ``tenant_id`` and expiry; the reference gateway uses the same
splitting and decoding, then verifies the signature.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

_PREFIX = re.compile(r"^cc_[A-Za-z0-9]+_[A-Za-z0-9\-]*\.")
_B64URL = re.compile(r"^[A-Za-z0-9_\-]*$")


def split_token(token: str) -> tuple[str, str]:
    """Split a tenant token into ``(prefix, jwt)``; the prefix may be empty."""
    match = _PREFIX.match(token)
    if match is None:
        return "", token
    return match.group(0)[:-1], token[match.end() :]


def b64url_decode(segment: str) -> bytes:
    """Decode one unpadded base64url JWT segment; ``ValueError`` when it is not one."""
    if not _B64URL.match(segment):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64url: {exc}") from None


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def decode_segment(segment: str) -> dict[str, Any]:
    """One JWT segment as a JSON object; ``ValueError`` saying why not."""
    try:
        value = json.loads(b64url_decode(segment).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    except RecursionError:  # nested deeper than the parser's stack: hostile, not a crash
        raise ValueError("JSON nested too deeply") from None
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What a client can read from a tenant token without the gateway's secret.

    Nothing here is verified; the gateway decides whether the token is valid.
    """

    tenant_id: str | None
    expires_at: datetime | None
    roles: tuple[str, ...]
    scope: str | None
    prefix: str

    @property
    def expired(self) -> bool:
        """True when the token carries an ``exp`` that has passed."""
        return self.expires_at is not None and self.expires_at.timestamp() <= time.time()

    def __repr__(self) -> str:  # never shows the token, only what it says
        return (
            f"TokenInfo(tenant_id={self.tenant_id!r}, expires_at={self.expires_at!r}, "
            f"roles={self.roles!r}, scope={self.scope!r})"
        )


def read_token(token: str) -> TokenInfo | None:
    """Read the claims of a tenant token, or ``None`` when it is not a readable JWT."""
    prefix, jwt = split_token(token)
    parts = jwt.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = decode_segment(parts[1])
    except ValueError:
        return None
    tenant = claims.get("tenant_id")
    exp = claims.get("exp")
    expires_at = None
    if isinstance(exp, (int, float)) and not isinstance(exp, bool):
        try:
            expires_at = datetime.fromtimestamp(exp, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            expires_at = None
    roles = claims.get("roles")
    scope = claims.get("scope")
    return TokenInfo(
        tenant_id=str(tenant) if tenant is not None else None,
        expires_at=expires_at,
        roles=tuple(str(r) for r in roles) if isinstance(roles, list) else (),
        scope=scope if isinstance(scope, str) else None,
        prefix=prefix,
    )
