"""What ``ping()`` and ``cachecore doctor`` check, decided without I/O (both twins share it).

The twins only GET ``/health`` and time it; everything else is read from the
configuration, the token and that one answer:

- ``scheme``: https, or http to a loopback gateway (a token in clear text over a
  network is a failure);
- ``reachable``: ``/health`` answered 2xx, with the latency, or why not (the URL named);
- ``token``: a readable tenant token and its tenant id; an OpenAI key is called one;
- ``expiry``: not expired, not expiring within ``SOON`` seconds;
- ``clock``: the gateway's ``Date`` header within ``MAX_SKEW`` seconds of this
  machine's clock (token expiry is judged on the gateway's).

The token itself is never part of a check's text.
"""

from __future__ import annotations

import email.utils
import time

import httpx

from . import _wire
from ._auth import is_loopback, read_token
from ._models import PingCheck, PingResult
from .errors import redact

#: Seconds: a token expiring sooner than this fails the expiry check.
SOON = 600.0
#: Seconds of clock difference with the gateway that fail the clock check.
MAX_SKEW = 60.0


def report(
    url: httpx.URL,
    token: str,
    answer: httpx.Response | Exception,
    seconds: float,
    now: float | None = None,
) -> PingResult:
    """The checks for a gateway at ``url`` whose ``/health`` gave ``answer`` in ``seconds``."""
    now = time.time() if now is None else now
    base = str(url).rstrip("/")
    checks = [_scheme(url)]
    latency_ms: float | None = None
    if isinstance(answer, httpx.Response):
        latency_ms = seconds * 1000
        if answer.is_success:
            checks.append(
                PingCheck(
                    name="reachable",
                    ok=True,
                    detail=f"{base}{_wire.HEALTH_PATH} answered {answer.status_code} "
                    f"in {latency_ms:.1f} ms",
                )
            )
        else:
            checks.append(
                PingCheck(
                    name="reachable",
                    ok=False,
                    detail=f"{base}{_wire.HEALTH_PATH} answered {answer.status_code}: "
                    "is this the Cachecore gateway's URL?",
                )
            )
    else:
        cause = redact(str(answer) or type(answer).__name__, token)
        hint = scheme_hint(url.scheme, cause)
        checks.append(
            PingCheck(
                name="reachable",
                ok=False,
                detail=f"cannot reach {base}: {type(answer).__name__}: {cause}"
                + (f" ({hint})" if hint else ""),
            )
        )
    info = read_token(token)
    tenant_id = None
    if info is None:
        what = (
            "an OpenAI API key, not a Cachecore tenant token"
            if token.startswith("sk-")
            else "not a readable tenant token (expected cc_<env>_<id>.<JWT> or a JWT)"
        )
        checks.append(PingCheck(name="token", ok=False, detail=what))
    else:
        tenant_id = info.tenant_id
        checks.append(
            PingCheck(
                name="token",
                ok=tenant_id is not None,
                detail=f"tenant {tenant_id!r}" if tenant_id else "the token names no tenant_id",
            )
        )
        checks.append(_expiry(info.expires_at.timestamp() if info.expires_at else None, now))
    if isinstance(answer, httpx.Response):
        clock = _clock(answer.headers.get("date"), now)
        if clock is not None:
            checks.append(clock)
    return PingResult(
        gateway_url=base,
        ok=all(c.ok for c in checks),
        checks=tuple(checks),
        latency_ms=latency_ms,
        tenant_id=tenant_id,
    )


def scheme_hint(scheme: str, cause: str) -> str:
    """What a TLS failure on an https:// URL most often means, or ``""``."""
    if scheme == "https" and "SSL" in cause.upper():
        return "an https:// URL for a gateway that speaks http?"
    return ""


def _scheme(url: httpx.URL) -> PingCheck:
    if url.scheme == "https":
        return PingCheck(name="scheme", ok=True, detail="https")
    if is_loopback(url.host):
        return PingCheck(name="scheme", ok=True, detail="http to a loopback gateway")
    return PingCheck(
        name="scheme",
        ok=False,
        detail=f"http:// to {url.host}: the tenant token would cross the network in clear text",
    )


def _expiry(expires_at: float | None, now: float) -> PingCheck:
    if expires_at is None:
        return PingCheck(name="expiry", ok=True, detail="the token does not expire")
    left = expires_at - now
    if left <= 0:
        return PingCheck(
            name="expiry", ok=False, detail=f"expired {_duration(-left)} ago: get a new token"
        )
    if left < SOON:
        return PingCheck(
            name="expiry", ok=False, detail=f"expires in {_duration(left)}: refresh it soon"
        )
    return PingCheck(name="expiry", ok=True, detail=f"expires in {_duration(left)}")


def _clock(date: str | None, now: float) -> PingCheck | None:
    if not date:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return None
    skew = now - parsed.timestamp()
    if abs(skew) > MAX_SKEW:
        side = "ahead of" if skew > 0 else "behind"
        return PingCheck(
            name="clock",
            ok=False,
            detail=f"this machine is {_duration(abs(skew))} {side} the gateway: "
            "token expiry is judged on the gateway's clock",
        )
    return PingCheck(name="clock", ok=True, detail=f"within {MAX_SKEW:.0f} s of the gateway's")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"
