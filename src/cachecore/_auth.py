"""Who may use the cache, and where the token may go: the tenant token and the gateway's origin.

- ``TokenProvider`` holds the tenant token (or a callable giving the current one)
  out of sight, checking it when it is given and each time a callable yields it.
- Tokens are ``cc_<env>_<id>.<JWT>`` or a bare JWT (PROTOCOL.md section 5). The
  SDK reads the JWT payload (never verifying it: only the gateway holds the
  secret) to show ``tenant_id`` and expiry; the reference gateway uses the same
  splitting and decoding, then verifies the signature.
- ``Origin`` is the gateway's scheme, host and port: the transport sends the
  token only to requests on it (public URL API only, one comparison per request).

Shared by both twins; no I/O.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx

from .errors import CachecoreConfigError

TokenSource = str | Callable[[], str]

logger = logging.getLogger("cachecore")

TOKEN_ENV = "CACHECORE_TOKEN"

#: The ports a URL without one means, by scheme.
DEFAULT_PORTS = {"http": 80, "https": 443}


# -- where the token may go ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Origin:
    """Scheme, host and port: the token goes only to requests with this origin."""

    scheme: str
    host: str
    port: int
    #: ``host[:port]`` as httpx normalizes it (lower case, IDNA, default port left out).
    netloc: bytes
    #: The host is a loopback name: other loopback names are this origin too.
    loopback: bool = False

    @classmethod
    def of(cls, url: httpx.URL) -> Origin:
        port = url.port if url.port is not None else DEFAULT_PORTS.get(url.scheme, 0)
        return cls(url.scheme, url.host, port, url.netloc, is_loopback(url.host))

    def matches(self, url: Any) -> bool:
        """Is ``url`` (an httpx or httpx2 URL) on this origin? Public URL API only.

        Both libraries normalize ``netloc`` the same way (an explicit default
        port is dropped), so one comparison of bytes covers ``host:80`` and ``host``.
        """
        return bool(url.netloc == self.netloc and url.scheme == self.scheme)

    def is_alias(self, url: Any) -> bool:
        """Is ``url`` this origin under another loopback name (``localhost`` for 127.0.0.1)?

        Loopback names are one machine: same scheme and port, both hosts loopback.
        Called only for requests that ``matches`` turned down.
        """
        if not self.loopback or url.scheme != self.scheme:
            return False
        port = url.port if url.port is not None else DEFAULT_PORTS.get(url.scheme, 0)
        return bool(port == self.port and is_loopback(url.host))

    def __str__(self) -> str:
        return f"{self.scheme}://{self.netloc.decode('ascii')}"


def is_loopback(host: str) -> bool:
    """``localhost`` (and ``*.localhost``) or a loopback address (127.0.0.0/8, ::1)."""
    name = host.lower().strip("[]")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


# -- the token ----------------------------------------------------------------------


def check_token(token: object, *, source: str) -> str:
    """A usable tenant token, or a ``CachecoreConfigError`` saying what is wrong with it."""
    if not isinstance(token, str):
        raise CachecoreConfigError(
            f"{source} must be a string (or a callable returning one), got {type(token).__name__}"
        )
    if not token.strip():
        raise CachecoreConfigError(
            f"{source} is empty: pass tenant_jwt='cc_live_...' or set {TOKEN_ENV}"
        )
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in token):
        raise CachecoreConfigError(
            f"{source} contains whitespace or control characters (a copy-paste error?)"
        )
    if not token.isascii():
        raise CachecoreConfigError(f"{source} contains non-ASCII characters")
    return token


class TokenProvider:
    """Holds the tenant token (or a callable that returns the current one) out of sight.

    ``repr`` and ``str`` never show the token.
    """

    __slots__ = ("_get", "_static")

    def __init__(self, source: TokenSource | None) -> None:
        if source is None:
            source = os.environ.get(TOKEN_ENV, "")
            if not source:
                raise CachecoreConfigError(
                    f"tenant_jwt is required: pass tenant_jwt='cc_live_...' or set {TOKEN_ENV}"
                )
        self._static: str | None = None
        self._get: Callable[[], str] | None = None
        if callable(source):
            self._get = source
            self.current()  # fail now, not at the first request
        else:
            self._static = check_token(source, source="tenant_jwt")
            _warn_once_if_unusable(self._static)

    @property
    def is_static(self) -> bool:
        return self._static is not None

    @property
    def static(self) -> str | None:
        return self._static

    def current(self) -> str:
        """The token to send now (calls the rotation callable when there is one)."""
        if self._static is not None:
            return self._static
        assert self._get is not None
        return check_token(self._get(), source="the tenant_jwt callable's result")

    def info(self) -> TokenInfo | None:
        return read_token(self.current())

    def __repr__(self) -> str:
        return "TokenProvider(<redacted>)"

    __str__ = __repr__


_warned: set[str] = set()  # tokens already warned about (never logged themselves)


def _warn_once_if_unusable(token: str) -> None:
    """Log once per token, at WARNING, when a static token is expired or not a tenant token.

    Construction goes on: an opaque token may still be one the gateway accepts.
    """
    if token in _warned:
        return
    info = read_token(token)
    if info is not None and not info.expired:
        return
    _warned.add(token)
    if info is not None:
        logger.warning(
            "cachecore: the tenant token for %r expired at %s: the gateway will refuse it "
            "(401); get a new one",
            info.tenant_id,
            info.expires_at.isoformat() if info.expires_at else "?",
        )
    elif token.startswith("sk-"):
        logger.warning(
            "cachecore: the tenant token looks like an OpenAI API key (sk-...), not a "
            "Cachecore tenant token: check tenant_jwt / %s",
            TOKEN_ENV,
        )
    else:
        logger.warning(
            "cachecore: the tenant token is not a readable JWT (expected cc_<env>_<id>.<JWT>): "
            "tenant_id and expiry are unknown; `cachecore doctor` checks it against the gateway"
        )


# -- reading a token (not verifying it) ---------------------------------------------


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
