"""Constructor input, checked once: gateway URL, tenant token, limits.

Everything a client needs to know before its first request is validated here,
so a typo fails in the constructor with a message that says what to fix.
Shared by both twins.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from . import _wire
from ._retry import RetryPolicy
from ._tokens import TokenInfo, read_token
from .errors import CachecoreConfigError

TokenSource = str | Callable[[], str]

GATEWAY_URL_ENV = "CACHECORE_GATEWAY_URL"
TOKEN_ENV = "CACHECORE_TOKEN"

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_MAX_CONCURRENCY = 32
#: Connections per management pool (see the client's constructor for why it is small).
POOL_CONNECTIONS = 4

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Origin:
    """Scheme, host and port: the token goes only to requests with this origin."""

    scheme: str
    host: str
    port: int
    #: ``host[:port]`` as httpx normalizes it (lower case, IDNA, default port left out).
    netloc: bytes

    @classmethod
    def of(cls, url: httpx.URL) -> Origin:
        port = url.port if url.port is not None else _DEFAULT_PORTS.get(url.scheme, 0)
        return cls(url.scheme, url.host, port, url.netloc)

    def matches(self, url: Any) -> bool:
        """Is ``url`` (an httpx or httpx2 URL) on this origin? Public URL API only.

        Both libraries normalize ``netloc`` the same way (an explicit default
        port is dropped), so one comparison of bytes covers ``host:80`` and ``host``.
        """
        return bool(url.netloc == self.netloc and url.scheme == self.scheme)

    def __str__(self) -> str:
        return f"{self.scheme}://{self.netloc.decode('ascii')}"


def resolve_gateway_url(value: str | None) -> httpx.URL:
    """The gateway's base URL, from the argument or ``CACHECORE_GATEWAY_URL``."""
    if value is None:
        value = os.environ.get(GATEWAY_URL_ENV)
        if not value:
            raise CachecoreConfigError(
                f"gateway_url is required: pass gateway_url='https://...' or set {GATEWAY_URL_ENV}"
            )
    if not isinstance(value, str):
        raise CachecoreConfigError(
            f"gateway_url must be a string like 'https://api.cachecore.it', got {type(value).__name__}"
        )
    text = value.strip()
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise CachecoreConfigError(f"gateway_url {text!r} is not a valid URL: {exc}") from None
    if url.scheme not in _DEFAULT_PORTS or not url.host:
        raise CachecoreConfigError(
            f"gateway_url {text!r} needs an http:// or https:// scheme and a host, "
            "e.g. 'https://api.cachecore.it' or 'http://127.0.0.1:8080'"
        )
    if url.query or url.fragment:
        raise CachecoreConfigError(f"gateway_url {text!r} must not carry a query or fragment")
    path = url.path.rstrip("/")
    # The OpenAI SDK's base_url ends in /v1; accept the same value here.
    path = path.removesuffix("/v1")
    return url.copy_with(path=path or "/")


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


def check_timeout(value: float | httpx.Timeout | None) -> httpx.Timeout:
    if isinstance(value, httpx.Timeout):
        return value
    if value is None:
        return httpx.Timeout(DEFAULT_TIMEOUT)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise CachecoreConfigError(f"timeout must be a positive number of seconds, got {value!r}")
    return httpx.Timeout(float(value))


def check_count(value: object, *, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CachecoreConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_retry_policy(value: object) -> RetryPolicy:
    if value is None:
        return RetryPolicy()
    if not isinstance(value, RetryPolicy):
        raise CachecoreConfigError(
            f"retry_policy must be a cachecore.RetryPolicy, got {type(value).__name__}"
        )
    return value


def check_http2(value: object) -> bool:
    """``http2=None`` means: on when the ``h2`` package is installed."""
    import importlib.util

    installed = importlib.util.find_spec("h2") is not None
    if value is None:
        return installed
    if not isinstance(value, bool):
        raise CachecoreConfigError(f"http2 must be True, False or None, got {value!r}")
    if value and not installed:
        raise CachecoreConfigError(
            "http2=True needs the h2 package: pip install 'cachecore-python[http2]'"
        )
    return value


def check_gateway_errors(value: object) -> str:
    if value not in ("auto", "raise", "return"):
        raise CachecoreConfigError(
            f"gateway_errors must be 'auto', 'raise' or 'return', got {value!r}"
        )
    return str(value)


def check_dep_ids(dep_ids: object) -> list[str]:
    """``dep_ids`` as a list of valid dependency ids, or an error naming the bad one."""
    if isinstance(dep_ids, (str, bytes)) or not isinstance(dep_ids, Sequence):
        raise CachecoreConfigError(
            f"dep_ids must be a list of dependency id strings, got {type(dep_ids).__name__}"
            + (": write dep_ids=['table:products']" if isinstance(dep_ids, str) else "")
        )
    out: list[str] = []
    for i, dep_id in enumerate(dep_ids):
        reason = _wire.bad_identifier_reason(dep_id)
        if reason is not None:
            raise CachecoreConfigError(f"dep_ids[{i}] {reason}")
        out.append(dep_id)
    return out


def check_dep_id(dep_id: object, *, name: str = "dep_id") -> str:
    reason = _wire.bad_identifier_reason(dep_id)
    if reason is not None:
        raise CachecoreConfigError(f"{name} {reason}")
    assert isinstance(dep_id, str)
    return dep_id


def check_new_hash(new_hash: object) -> str | None:
    if new_hash is None:
        return None
    return check_dep_id(new_hash, name="new_hash")
