"""The access log: one INFO line per request on ``cachecore.testing.access``.

Every face (the ASGI app and the in-process transports) calls ``log_access`` once
per answered request, so a user can see why a call missed::

    POST /v1/chat/completions tenant=acme cache=HIT_L2 similarity=0.93 status=200 3.1ms

The line has the method, the path (never the query string), the tenant the token
named (``-`` when none was verified), the ``X-Cache`` status, the similarity of an
L2 hit, the status code, why (an error's code; for a miss, the deps declared, the
best L2 similarity under the threshold or ``none`` when no entry shares the
scope, and whether the answer was not stored), and the milliseconds from the request's arrival to its
answer being sent (in-process: handed to httpx; a stream's chunks not included).
Never the token or any other header. Untrusted text (method, path) is escaped so
a line cannot be forged or split. The library only logs: the ``cachecore gateway``
command configures a handler; elsewhere the application's logging decides.
"""

from __future__ import annotations

import logging
import time

from cachecore._wire import CACHE_HEADER, SIMILARITY_HEADER
from cachecore.testing._http import GatewayRequest, GatewayResponse

access_log = logging.getLogger("cachecore.testing.access")

#: Longer paths are cut (with ``...``): a log line stays a line.
MAX_PATH_CHARS = 200


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _printable(text: str, limit: int = MAX_PATH_CHARS) -> str:
    """``text`` cut to ``limit`` characters, whitespace and control characters as ``\\xNN``."""
    safe = "".join(
        ch if ch.isprintable() and not ch.isspace() else _escape(ch) for ch in text[:limit]
    )
    return safe + ("..." if len(text) > limit else "")


def log_access(
    request: GatewayRequest, response: GatewayResponse, started: float, note: str = ""
) -> None:
    """Log one line for ``request`` answered by ``response``; ``started`` is ``time.perf_counter()``."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    cache = response.header(CACHE_HEADER) or "-"
    similarity = response.header(SIMILARITY_HEADER) if cache == "HIT_L2" else None
    access_log.info(
        "%s %s tenant=%s cache=%s%s status=%d%s %.1fms%s",
        _printable(request.method, 16),
        _printable(request.path),
        _printable(response.tenant, 100) if response.tenant else "-",
        _printable(cache, 32),
        f" similarity={_printable(similarity, 16)}" if similarity else "",
        response.status,
        f" why={_printable(response.why, 120)}" if response.why else "",
        elapsed_ms,
        f" ({note})" if note else "",
    )
