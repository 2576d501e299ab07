"""The Cachecore wire protocol, in one place.

Every header name, the dependency encoding, the cache-status parse rules and the
``Retry-After`` parse live here and nowhere else: the SDK, the reference gateway
and the tests all import them from this module (PROTOCOL.md sections 1-4).
Nothing in here does I/O.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import email.utils
import json
import math
import time
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

# -- header names (case-insensitive on the wire) ---------------------------------

TOKEN_HEADER: Final = "X-CacheCore-Token"
DEPS_HEADER: Final = "X-CacheCore-Deps"
CACHE_HEADER: Final = "X-Cache"
SIMILARITY_HEADER: Final = "X-Cache-Similarity"
AGE_HEADER: Final = "X-Cache-Age"
NAMESPACE_HINT_HEADER: Final = "X-CacheCore-Namespace-Hint"
RETRY_AFTER_HEADER: Final = "Retry-After"
AUTHORIZATION_HEADER: Final = "Authorization"
REQUEST_ID_HEADER: Final = "X-Request-Id"
OPENAI_VERSION_HEADER: Final = "X-Stainless-Package-Version"

# Lower-case twins for the hot path: httpx stores header keys lower-cased.
TOKEN_HEADER_LC: Final = TOKEN_HEADER.lower()
DEPS_HEADER_LC: Final = DEPS_HEADER.lower()
CACHE_HEADER_LC: Final = CACHE_HEADER.lower()

# -- paths ----------------------------------------------------------------------

INVALIDATE_PATH: Final = "/v1/invalidate"
CHAT_COMPLETIONS_PATH: Final = "/v1/chat/completions"
HEALTH_PATH: Final = "/health"

#: The largest ``X-CacheCore-Deps`` value the SDK will send (bytes of the header value).
MAX_DEPS_HEADER_BYTES: Final = 8 * 1024

#: Default ``expected_hash`` of a dependency declared without one.
DEFAULT_DEP_HASH: Final = "v1"

# -- status codes (PROTOCOL.md section 4) -------------------------------------------

#: Gateway answers on a proxied LLM call that stand for a typed error.
ERROR_STATUSES: Final = frozenset({401, 403, 429})
#: Answers on which a management call (invalidation) is retried.
RETRY_STATUSES: Final = frozenset({429, 502, 503, 504})

CacheStatusName = Literal["HIT_L1", "HIT_L1_STALE", "HIT_L2", "MISS", "BYPASS", "UNKNOWN"]
KNOWN_STATUSES: Final[frozenset[str]] = frozenset(
    {"HIT_L1", "HIT_L1_STALE", "HIT_L2", "MISS", "BYPASS"}
)

# -- identifiers ----------------------------------------------------------------


def bad_identifier_reason(value: object) -> str | None:
    """Why ``value`` cannot be a dependency id or hash, or ``None`` when it can.

    Any printable text is fine (the deps header is base64url, so no character can
    inject a header); empty strings and control characters are refused because
    they are always a bug in the caller.
    """
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if not value:
        return "must not be empty"
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cs":  # a lone surrogate cannot be encoded as UTF-8 on the wire
            return f"must not contain lone surrogate {ch!r} (is the text decoded correctly?)"
        if category in ("Cc", "Cf", "Zl", "Zp") and ch != "\u200d":
            return f"must not contain control character {ch!r}"
    return None


# -- dependency header codec ----------------------------------------------------


def encode_deps(deps: Iterable[tuple[str, str]]) -> str:
    """Encode ``(dep_id, expected_hash)`` pairs as the ``X-CacheCore-Deps`` value.

    Compact JSON array of ``{"dep_id", "expected_hash"}`` objects, UTF-8, then
    base64url without ``=`` padding.
    """
    payload = [{"dep_id": dep_id, "expected_hash": h} for dep_id, h in deps]
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_deps(value: str) -> list[tuple[str, str]]:
    """Decode an ``X-CacheCore-Deps`` value; raise ``ValueError`` saying what is wrong."""
    value = value.strip()
    if not value:
        return []
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{DEPS_HEADER} is not base64url: {exc}") from None
    try:
        payload = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{DEPS_HEADER} does not hold UTF-8 JSON: {exc}") from None
    except RecursionError:  # nested deeper than the parser's stack: hostile, not a crash
        raise ValueError(f"{DEPS_HEADER} holds JSON nested too deeply") from None
    if not isinstance(payload, list):
        raise ValueError(f"{DEPS_HEADER} must hold a JSON array of objects")
    deps: list[tuple[str, str]] = []
    for i, item in enumerate(payload):
        if not isinstance(item, dict):
            raise ValueError(f"{DEPS_HEADER} item {i} is not an object")
        dep_id = item.get("dep_id")
        expected = item.get("expected_hash", DEFAULT_DEP_HASH)
        for name, field in (("dep_id", dep_id), ("expected_hash", expected)):
            reason = bad_identifier_reason(field)
            if reason is not None:
                raise ValueError(f"{DEPS_HEADER} item {i}: {name} {reason}")
        assert isinstance(dep_id, str)
        assert isinstance(expected, str)
        deps.append((dep_id, expected))
    return deps


# -- response headers -----------------------------------------------------------


def header_value(headers: Any, name: str) -> str | None:
    """Read one header from httpx/httpx2 headers, a plain mapping, or a response.

    Case-insensitive in every form; ``None`` when absent or unreadable.
    """
    inner = getattr(headers, "headers", None)
    if inner is not None and not isinstance(headers, Mapping):
        headers = inner  # a response object (httpx, httpx2, openai raw response)
    getter = getattr(headers, "get", None)
    if getter is None:
        return None
    value = getter(name)
    if value is None and isinstance(headers, Mapping):
        lname = name.lower()
        for key, item in headers.items():
            if isinstance(key, str) and key.lower() == lname:
                value = item
                break
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if value is None or not isinstance(value, str):
        return None
    return value


def parse_cache_status(value: str | None) -> CacheStatusName:
    """``X-Cache`` value to a status name; anything unknown or absent is ``UNKNOWN``."""
    if value is None:
        return "UNKNOWN"
    value = value.strip().upper()
    return value if value in KNOWN_STATUSES else "UNKNOWN"  # type: ignore[return-value]


def parse_similarity(value: str | None) -> float:
    """``X-Cache-Similarity`` to a float in [0, 1]; absent or malformed: 0.0."""
    if value is None:
        return 0.0
    try:
        number = float(value.strip())
    except ValueError:
        return 0.0
    if not math.isfinite(number):
        return 0.0
    return min(1.0, max(0.0, number))


def parse_age(value: str | None) -> int:
    """``X-Cache-Age`` to whole seconds >= 0; absent or malformed: 0."""
    if value is None:
        return 0
    text = value.strip()
    try:
        return max(0, int(text))
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return 0
    return max(0, int(number)) if math.isfinite(number) else 0


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date); ``None`` if unusable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:  # "-0000" parses naive; HTTP dates are always UTC
            when = when.replace(tzinfo=datetime.timezone.utc)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def invalidate_body(dep_id: str, new_hash: str) -> dict[str, str]:
    """The JSON body of ``POST /v1/invalidate``."""
    return {"dep_id": dep_id, "new_hash": new_hash}


def openai_major_version(value: str | None) -> int | None:
    """Major version from the OpenAI SDK's ``X-Stainless-Package-Version`` header."""
    if not value:
        return None
    head = value.strip().split(".", 1)[0]
    return int(head) if head.isdigit() else None
