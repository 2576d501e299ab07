"""The framework-free request and response the gateway core speaks.

The core never sleeps and never touches a socket: it returns how long the face
should wait (``delay``, ``chunk_delay``) and the body or its chunks. The httpx
transports and the ASGI app translate these to their world and do the waiting
with the right primitive (``time.sleep`` or ``anyio.sleep``), so a slow answer
never blocks an event loop and a timeout can cancel it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

JSON_TYPE = "application/json"
SSE_TYPE = "text/event-stream"
#: The base URL the in-process transports are conventionally used with (any host works).
IN_PROCESS_URL = "http://cachecore.test"


class Refused(Exception):
    """A request the gateway refuses: ``code`` is machine-readable, ``message`` says why.

    The message names the field and the fix, and never quotes a token.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class GatewayRequest:
    """One HTTP request; header names lower-cased."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes = b""

    @classmethod
    def build(
        cls, method: str, path: str, headers: Iterable[tuple[str, str]], body: bytes = b""
    ) -> GatewayRequest:
        """Lower-case header names; a repeated header keeps its first value."""
        lowered: dict[str, str] = {}
        for name, value in headers:
            lowered.setdefault(name.lower(), value)
        return cls(method.upper(), path, lowered, body)


@dataclass(slots=True)
class GatewayResponse:
    """One HTTP response: either ``body`` or, for SSE, ``chunks``."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    chunks: Iterable[bytes] | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    #: The tenant the request's token named, once verified (for the access log).
    tenant: str | None = None
    #: Why the gateway answered so, for the access log: an error's code, or what a
    #: miss found (deps declared, the best L2 similarity under the threshold).
    why: str = ""

    @classmethod
    def json(
        cls, status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()
    ) -> GatewayResponse:
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        return cls(status, [("content-type", JSON_TYPE), *headers], body)

    def header(self, name: str) -> str | None:
        lname = name.lower()
        return next((v for k, v in self.headers if k.lower() == lname), None)


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
}


def error(
    status: int, code: str, message: str, headers: Iterable[tuple[str, str]] = ()
) -> GatewayResponse:
    """An OpenAI-style error body: ``{"error": {"message", "type", "code"}}``."""
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    payload = {"error": {"message": message, "type": kind, "code": code, "param": None}}
    response = GatewayResponse.json(status, payload, headers)
    response.why = code
    return response
