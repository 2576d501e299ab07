"""``_doctor.report``: each check on its own, without I/O."""

from __future__ import annotations

import email.utils
import logging
import time

import httpx
import pytest

from cachecore import _auth, _doctor
from cachecore.testing import mint_token

NOW = 1_800_000_000.0
TOKEN = mint_token("s", "acme", expires_in=None)


def checks(
    url: str, token: str = TOKEN, answer: object = None, now: float = NOW
) -> dict[str, object]:
    response = answer if answer is not None else httpx.Response(200)
    result = _doctor.report(httpx.URL(url), token, response, 0.002, now=now)  # type: ignore[arg-type]
    return {c.name: (c.ok, c.detail) for c in result.checks}


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://gw.example", True),
        ("http://127.0.0.1:8080", True),
        ("http://localhost:8080", True),
        ("http://[::1]:8080", True),
        ("http://gw.internal:8080", False),
    ],
)
def test_scheme(url: str, ok: bool) -> None:
    assert checks(url)["scheme"][0] is ok  # type: ignore[index]


def test_an_openai_key_is_called_one() -> None:
    assert checks("https://gw.example", token="sk-proj-abc")["token"] == (
        False,
        "an OpenAI API key, not a Cachecore tenant token",
    )


def test_expiry_soon_and_later() -> None:
    soon = mint_token("s", "acme", expires_in=120)
    later = mint_token("s", "acme", expires_in=86400)
    assert checks("https://gw.example", soon, now=time.time())["expiry"][0] is False  # type: ignore[index]
    assert checks("https://gw.example", later, now=time.time())["expiry"][0] is True  # type: ignore[index]


def test_clock_skew_from_the_gateways_date_header() -> None:
    def date(offset: float) -> httpx.Response:
        return httpx.Response(
            200, headers={"date": email.utils.formatdate(NOW + offset, usegmt=True)}
        )

    assert checks("https://gw.example", answer=date(5))["clock"][0] is True  # type: ignore[index]
    skewed = checks("https://gw.example", answer=date(-600))["clock"]
    assert skewed[0] is False  # type: ignore[index]
    assert "10 min ahead of the gateway" in skewed[1]  # type: ignore[index]
    assert "clock" not in checks("https://gw.example"), "no Date header: no clock check"


def test_a_non_2xx_health_answer_fails_reachable() -> None:
    ok, detail = checks("https://gw.example", answer=httpx.Response(404))["reachable"]  # type: ignore[misc]
    assert ok is False
    assert "https://gw.example/health answered 404" in detail  # type: ignore[operator]


def test_construction_warns_once_about_an_expired_or_foreign_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="cachecore")
    expired = mint_token("s", "old-tenant", expires_in=-60)
    for _ in range(3):
        _auth.TokenProvider(expired)
        _auth.TokenProvider("sk-proj-not-a-tenant-token")
    messages = [r.getMessage() for r in caplog.records if r.name == "cachecore"]
    assert len(messages) == 2, messages
    assert "'old-tenant' expired" in messages[0]
    assert "OpenAI API key" in messages[1]
    assert all(expired not in m and "sk-proj" not in m for m in messages)
