"""Constructor input, checked once: gateway URL, limits, modes; defaults.

Everything a client needs to know before its first request is validated here,
so a typo fails in the constructor with a message that says what to fix.
Shared by both twins.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Literal

import httpx

from . import _wire
from ._auth import DEFAULT_PORTS
from ._retry import RetryPolicy
from .errors import CachecoreConfigError

GATEWAY_URL_ENV = "CACHECORE_GATEWAY_URL"

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_MAX_CONCURRENCY = 32
#: Connections per management pool (see the client's constructor for why it is small).
POOL_CONNECTIONS = 4


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
    if url.scheme not in DEFAULT_PORTS or not url.host:
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


#: What the transport does with a gateway's 401/403/429 on an LLM call (docs/errors.md).
GatewayErrors = Literal["auto", "raise", "return"]
_GATEWAY_ERRORS: tuple[GatewayErrors, ...] = ("auto", "raise", "return")


def check_gateway_errors(value: object) -> GatewayErrors:
    for mode in _GATEWAY_ERRORS:
        if value == mode and isinstance(value, str):
            return mode
    raise CachecoreConfigError(f"gateway_errors must be 'auto', 'raise' or 'return', got {value!r}")


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
