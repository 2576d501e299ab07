"""The one error tree of the SDK.

``CachecoreError`` is the base of everything the SDK raises. Errors raised from
the transport do **not** subclass ``httpx.RequestError``: the OpenAI SDK wraps
and retries those, while anything else reaches the caller (openai 3.x) or comes
back as the ``__cause__`` of ``openai.APIConnectionError`` (openai 1.x/2.x).
``typed_errors()`` and ``CachecoreError.find()`` give every openai major version
the same ``except CachecoreAuthError`` experience.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ._deprecation import deprecated_names

__all__ = [
    "CachecoreAPIError",
    "CachecoreAuthError",
    "CachecoreClosedError",
    "CachecoreConfigError",
    "CachecoreConnectionError",
    "CachecoreError",
    "CachecoreRateLimitError",
    "CachecoreStatusError",
    "CachecoreTimeoutError",
    "typed_errors",
]

#: ``httpx.Response.extensions`` key under which a passed-through gateway error rides.
RESPONSE_ERROR_EXTENSION = "cachecore.error"

_BODY_EXCERPT = 500
#: Larger error bodies are not parsed for their message (an excerpt is quoted instead).
_JSON_ERROR_MAX = 64 * 1024


class CachecoreError(Exception):
    """Base class of every error the SDK raises."""

    @staticmethod
    def find(exc: BaseException | None) -> CachecoreError | None:
        """The ``CachecoreError`` behind ``exc``, if any.

        Looks at ``exc`` itself, its ``__cause__``/``__context__`` chain (openai
        1.x/2.x put the transport's error there) and, for an ``openai.APIStatusError``
        built from a gateway answer, the error the transport attached to the response.
        """
        seen: set[int] = set()
        while exc is not None and id(exc) not in seen:
            seen.add(id(exc))
            if isinstance(exc, CachecoreError):
                return exc
            response = getattr(exc, "response", None)
            extensions = getattr(response, "extensions", None)
            if isinstance(extensions, dict):
                attached = extensions.get(RESPONSE_ERROR_EXTENSION)
                if isinstance(attached, CachecoreError):
                    return attached
            exc = exc.__cause__ or exc.__context__
        return None


class CachecoreConfigError(CachecoreError, ValueError):
    """Bad input to the SDK: raised at the earliest point (the constructor, the ``with``)."""


class CachecoreClosedError(CachecoreError, RuntimeError):
    """The client (or transport) was closed: make a new one. Also a ``RuntimeError``."""


class CachecoreConnectionError(CachecoreError):
    """The gateway could not be reached, or the connection broke (management calls)."""


class CachecoreTimeoutError(CachecoreConnectionError):
    """The gateway did not answer within the configured timeout (management calls)."""


class CachecoreAPIError(CachecoreError):
    """The gateway answered with an error status.

    Carries ``status_code``, the response ``body`` (text, truncated, with the
    tenant token redacted) and the gateway's ``request_id`` when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: str = "",
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.body = body
        self.request_id = request_id

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across processes
        return (_rebuild, (type(self), self.message, self.__dict__))


class CachecoreStatusError(CachecoreAPIError):
    """Any other 4xx/5xx from the gateway on a management call."""


class CachecoreAuthError(CachecoreAPIError):
    """401/403: the tenant token is missing, invalid, expired, or not allowed."""


class CachecoreRateLimitError(CachecoreAPIError):
    """429: the tenant is over its rate limit.

    ``retry_after`` is the number of seconds the gateway asked to wait
    (``Retry-After`` in seconds or as an HTTP date), or ``None`` when it said nothing.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 429,
        body: str = "",
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, body=body, request_id=request_id)
        self.retry_after = retry_after


def _rebuild(
    cls: type[CachecoreAPIError], message: str, state: dict[str, Any]
) -> CachecoreAPIError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` (and its JWT part) replaced."""
    if not secret:
        return text
    text = text.replace(secret, "[REDACTED]")
    _, _, jwt = secret.rpartition(".") if secret.count(".") == 3 else ("", "", "")
    if jwt and len(jwt) > 8:
        text = text.replace(jwt, "[REDACTED]")
    return text


def _gateway_message(body: str) -> str | None:
    """What a gateway's JSON error body says, ``message (code)``; ``None`` if it is not one.

    The gateway (and OpenAI-compatible APIs) answer ``{"error": {"message", "code"}}``:
    a person reads the message, not the JSON around it. ``body`` on the error keeps
    the raw text.
    """
    if len(body) > _JSON_ERROR_MAX:
        return None
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than json can go
        return None
    err = parsed.get("error") if isinstance(parsed, dict) else None
    message = err.get("message") if isinstance(err, dict) else None
    if not isinstance(message, str) or not message.strip():
        return None
    code = err.get("code") if isinstance(err, dict) else None
    return f"{message} ({code})" if isinstance(code, str) and code else message


def error_for_status(
    status_code: int,
    body: str,
    *,
    retry_after: float | None,
    request_id: str | None,
    what: str,
    token: str | None,
    bypassed: bool = False,
) -> CachecoreAPIError:
    """Build the typed error for a gateway error answer (shared by both twins).

    ``bypassed``: the call was sent without the tenant token (``bypass=True``), so
    a 401/403 is about the ``Authorization`` key the SDK sent, not the tenant token.
    """
    redacted = redact(body, token)
    excerpt = redacted[:_BODY_EXCERPT]
    said = _gateway_message(redacted)
    detail = f": {said[:_BODY_EXCERPT]}" if said else (f": {excerpt}" if excerpt else "")
    if status_code in (401, 403):
        if bypassed:
            hint = (
                "a bypassed call carries no tenant token, so the gateway judged the SDK's "
                "Authorization key (its api_key): check that key, not the tenant token"
            )
        elif status_code == 403:
            hint = "check that the tenant token is valid, unexpired and allowed for this call"
        else:
            hint = "check the tenant token (missing, malformed, wrongly signed or expired)"
        return CachecoreAuthError(
            f"{what} was refused by the gateway with {status_code} ({hint}){detail}",
            status_code=status_code,
            body=excerpt,
            request_id=request_id,
        )
    if status_code == 429:
        wait = f"retry after {retry_after:g} s" if retry_after is not None else "retry later"
        return CachecoreRateLimitError(
            f"{what} was rate limited by the gateway (429, {wait}){detail}",
            body=excerpt,
            request_id=request_id,
            retry_after=retry_after,
        )
    return CachecoreStatusError(
        f"{what} failed with HTTP {status_code} from the gateway{detail}",
        status_code=status_code,
        body=excerpt,
        request_id=request_id,
    )


@contextmanager
def typed_errors() -> Iterator[None]:
    """Re-raise the ``CachecoreError`` behind any exception raised in the block.

    With openai 1.x/2.x the SDK's typed errors arrive wrapped (as the cause of
    ``openai.APIConnectionError``, or attached to ``openai.AuthenticationError``);
    inside ``with typed_errors():`` they surface as themselves, so
    ``except CachecoreAuthError`` works with every openai major version. Works in
    sync and async code alike (a plain ``with``).
    """
    try:
        yield
    except CachecoreError:
        raise
    except Exception as exc:
        found = CachecoreError.find(exc)
        if found is None:
            raise
        raise found from exc


if TYPE_CHECKING:  # type checkers see the 0.1.0 names; at run time __getattr__ serves them
    CacheCoreError = CachecoreError
    CacheCoreAuthError = CachecoreAuthError
    CacheCoreRateLimitError = CachecoreRateLimitError

#: 0.1.0 name -> its replacement. They keep working, with a DeprecationWarning.
__getattr__ = deprecated_names(
    __name__,
    {
        "CacheCoreError": ("CachecoreError", lambda: CachecoreError),
        "CacheCoreAuthError": ("CachecoreAuthError", lambda: CachecoreAuthError),
        "CacheCoreRateLimitError": ("CachecoreRateLimitError", lambda: CachecoreRateLimitError),
    },
)
