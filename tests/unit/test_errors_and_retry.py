"""The error tree, ``find``/``typed_errors``, and the retry decisions."""

from __future__ import annotations

import json

import httpx
import pytest

from cachecore import _retry
from cachecore.errors import (
    RESPONSE_ERROR_EXTENSION,
    CachecoreAPIError,
    CachecoreAuthError,
    CachecoreConfigError,
    CachecoreConnectionError,
    CachecoreError,
    CachecoreRateLimitError,
    CachecoreStatusError,
    CachecoreTimeoutError,
    error_for_status,
    redact,
    typed_errors,
)

TOKEN = "cc_live_k1.aGVhZGVy.cGF5bG9hZA.c2lnbmF0dXJlLXNlY3JldA"


def test_nothing_the_transport_raises_is_an_httpx_error() -> None:
    for cls in (CachecoreAuthError, CachecoreRateLimitError, CachecoreStatusError, CachecoreError):
        assert not issubclass(cls, httpx.HTTPError)
    assert issubclass(CachecoreConfigError, ValueError)
    assert issubclass(CachecoreTimeoutError, CachecoreConnectionError)
    assert issubclass(CachecoreAuthError, CachecoreAPIError)


@pytest.mark.parametrize(
    ("status", "kind", "hint"),
    [
        (401, CachecoreAuthError, "check the tenant token"),
        (403, CachecoreAuthError, "allowed for this call"),
        (429, CachecoreRateLimitError, "retry after 4 s"),
        (418, CachecoreStatusError, "failed with HTTP 418"),
    ],
)
def test_error_for_status(status: int, kind: type, hint: str) -> None:
    err = error_for_status(
        status,
        f"body with {TOKEN}",
        retry_after=4.0,
        request_id="rid",
        what="POST /v1/x",
        token=TOKEN,
    )
    assert type(err) is kind
    assert err.status_code == status
    assert err.request_id == "rid"
    assert hint in str(err)
    assert "POST /v1/x" in str(err)
    assert TOKEN not in str(err)
    assert TOKEN not in err.body
    assert "[REDACTED]" in err.body


def test_long_bodies_are_truncated() -> None:
    err = error_for_status(500, "x" * 5000, retry_after=None, request_id=None, what="w", token=None)
    assert len(err.body) == 500


def test_redact_hides_the_token_and_its_signature() -> None:
    text = f"a {TOKEN} b c2lnbmF0dXJlLXNlY3JldA d"
    out = redact(text, TOKEN)
    assert TOKEN not in out
    assert "c2lnbmF0dXJlLXNlY3JldA" not in out
    assert redact("plain", None) == "plain"


def test_find_walks_causes_contexts_and_responses() -> None:
    auth = CachecoreAuthError("no", status_code=401)
    assert CachecoreError.find(auth) is auth
    assert CachecoreError.find(None) is None
    assert CachecoreError.find(RuntimeError("x")) is None

    wrapped = RuntimeError("connection error")
    wrapped.__cause__ = auth
    assert CachecoreError.find(wrapped) is auth

    outer = KeyError("k")
    outer.__context__ = wrapped
    assert CachecoreError.find(outer) is auth

    response = httpx.Response(401, extensions={RESPONSE_ERROR_EXTENSION: auth})
    status_error = httpx.HTTPStatusError(
        "401", request=httpx.Request("GET", "http://x"), response=response
    )
    assert CachecoreError.find(status_error) is auth


def test_find_survives_cycles() -> None:
    a, b = RuntimeError("a"), RuntimeError("b")
    a.__cause__, b.__cause__ = b, a
    assert CachecoreError.find(a) is None


def test_typed_errors_reraise_the_typed_error() -> None:
    auth = CachecoreAuthError("no", status_code=401)

    def sdk_call() -> None:
        try:
            raise auth
        except CachecoreAuthError as exc:
            raise RuntimeError("wrapped by an SDK") from exc

    with pytest.raises(CachecoreAuthError) as caught, typed_errors():
        sdk_call()
    assert caught.value is auth
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_typed_errors_leave_other_errors_alone() -> None:
    with pytest.raises(ZeroDivisionError), typed_errors():
        _ = 1 / 0
    rate = CachecoreRateLimitError("slow", retry_after=1.0)
    with pytest.raises(CachecoreRateLimitError) as caught, typed_errors():
        raise rate
    assert caught.value is rate


# -- retry policy --------------------------------------------------------------------


def _status(code: int) -> CachecoreError:
    return error_for_status(code, "", retry_after=None, request_id=None, what="w", token=None)


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (CachecoreConnectionError("down"), True),
        (CachecoreTimeoutError("slow"), True),
        (CachecoreRateLimitError("slow"), True),
        (_status(502), True),
        (_status(503), True),
        (_status(504), True),
        (_status(500), False),
        (_status(401), False),
        (_status(404), False),
        (CachecoreError("other"), False),
    ],
)
def test_what_is_retried(error: CachecoreError, retried: bool) -> None:
    assert _retry.is_retryable(error) is retried
    delay = _retry.RetryPolicy().delay(error, 1)
    assert (delay is not None) is retried


def test_backoff_is_jittered_exponential_and_capped() -> None:
    policy = _retry.RetryPolicy(max_retries=10, base_delay=0.5, max_delay=3.0)
    err = CachecoreConnectionError("down")
    for attempt in range(1, 11):
        ceiling = min(3.0, 0.5 * 2 ** (attempt - 1))
        samples = {policy.delay(err, attempt) for _ in range(20)}
        assert all(s is not None and ceiling / 2 <= s <= ceiling for s in samples)
        assert len(samples) > 1, "no jitter"
    assert policy.delay(err, 11) is None


def test_retry_after_wins_and_is_capped() -> None:
    policy = _retry.RetryPolicy(max_retry_after=10.0)
    assert policy.delay(CachecoreRateLimitError("s", retry_after=3.0), 1) == 3.0
    assert policy.delay(CachecoreRateLimitError("s", retry_after=600.0), 1) == 10.0
    assert policy.delay(CachecoreRateLimitError("s", retry_after=0.0), 1) == 0.0
    assert policy.delay(CachecoreRateLimitError("s", retry_after=3.0), 4) is None


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ('{"error": {"message": "no such dep", "code": "bad_dep"}}', ": no such dep (bad_dep)"),
        ('{"error": {"message": "no such dep"}}', ": no such dep"),
        (
            '{"error": {"message": "  ", "code": "x"}}',
            ': {"error": {"message": "  ", "code": "x"}}',
        ),
        ('{"error": "flat"}', ': {"error": "flat"}'),
        ("[1, 2]", ": [1, 2]"),
        ("upstream exploded", ": upstream exploded"),
        ("[" * 100_000 + "]" * 100_000, ": " + "[" * 500),  # too deep for json: an excerpt
        ("", ""),
    ],
)
def test_error_messages_quote_what_the_gateway_said(body: str, detail: str) -> None:
    err = error_for_status(
        400, body, retry_after=None, request_id=None, what="invalidating 'a'", token=TOKEN
    )
    assert str(err) == f"invalidating 'a' failed with HTTP 400 from the gateway{detail}"
    assert err.body == body[:500]  # the raw text stays on the error


def test_a_quoted_gateway_message_never_holds_the_token() -> None:
    body = json.dumps({"error": {"message": f"bad token {TOKEN}", "code": "bad_signature"}})
    err = error_for_status(
        401, body, retry_after=None, request_id=None, what="invalidating 'a'", token=TOKEN
    )
    assert TOKEN not in str(err)
    assert "(bad_signature)" in str(err)
