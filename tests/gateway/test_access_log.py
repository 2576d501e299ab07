"""The access log: one ``cachecore.testing.access`` line per request, never a token."""

from __future__ import annotations

import logging
import re

import httpx
import pytest
from gateway_helpers import chat

from cachecore.testing import IN_PROCESS_URL, ReferenceGateway, mint_token

ACCESS = "cachecore.testing.access"
LINE = re.compile(
    r"^(?P<method>\S+) (?P<path>\S+) tenant=(?P<tenant>\S+) cache=(?P<cache>\S+)"
    r"(?: similarity=(?P<similarity>\S+))? status=(?P<status>\d{3})(?: why=(?P<why>\S+))?"
    r" (?P<ms>\d+\.\d)ms$"
)


def access_lines(caplog: pytest.LogCaptureFixture) -> list[re.Match[str]]:
    records = [r for r in caplog.records if r.name == ACCESS]
    assert all(r.levelno == logging.INFO for r in records)
    matches = [LINE.match(r.getMessage()) for r in records]
    assert all(matches), [r.getMessage() for r in records]
    return [m for m in matches if m is not None]


def test_miss_then_hit_lines_with_tenant_and_latency(
    http: httpx.Client, gw: ReferenceGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    token = gw.mint_token("acme")
    chat(http, token, "What is the capital of France?")
    chat(http, token, "What is the capital of France?")
    lines = access_lines(caplog)
    assert [(m["method"], m["path"], m["tenant"], m["cache"], m["status"]) for m in lines] == [
        ("POST", "/v1/chat/completions", "acme", "MISS", "200"),
        ("POST", "/v1/chat/completions", "acme", "HIT_L1", "200"),
    ]
    assert all(m["similarity"] is None for m in lines)
    assert all(float(m["ms"]) >= 0.0 for m in lines)
    assert token not in caplog.text


def test_l2_hit_line_has_the_similarity(
    http: httpx.Client, gw: ReferenceGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    token = gw.mint_token("acme")
    chat(http, token, "What is the capital of France?")
    near = chat(http, token, "What's the capital of France?")
    assert near.headers["X-Cache"] == "HIT_L2"
    last = access_lines(caplog)[-1]
    assert last["cache"] == "HIT_L2"
    assert last["similarity"] == near.headers["X-Cache-Similarity"]


def test_401_line_has_no_tenant_and_no_token(
    http: httpx.Client, gw: ReferenceGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    forged = mint_token("another-secret-of-at-least-32-bytes!", "acme")
    chat(http, None, "hi")
    chat(http, forged, "hi")
    lines = access_lines(caplog)
    assert [(m["tenant"], m["status"]) for m in lines] == [("-", "401"), ("-", "401")]
    assert forged not in caplog.text
    assert forged.split(".")[2] not in caplog.text  # not even the signature


def test_untrusted_path_is_escaped_and_cut(
    http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    http.get("/v1/x%0Afake tenant=admin")
    http.get("/" + "a" * 5000)
    messages = [r.getMessage() for r in caplog.records if r.name == ACCESS]
    assert len(messages) == 2
    assert "\n" not in messages[0]
    assert "/v1/x\\x0afake\\x20tenant=admin tenant=- " in messages[0]
    assert len(messages[1]) < 400
    assert "a..." in messages[1]


def test_silent_when_the_logger_is_off(
    http: httpx.Client, gw: ReferenceGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=ACCESS)
    chat(http, gw.mint_token("acme"), "hi")
    assert not [r for r in caplog.records if r.name == ACCESS]


@pytest.mark.anyio
async def test_async_transport_logs_too(
    gw: ReferenceGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    async with httpx.AsyncClient(transport=gw.async_transport(), base_url=IN_PROCESS_URL) as c:
        await c.get("/health")
    [line] = access_lines(caplog)
    assert (line["method"], line["path"], line["tenant"], line["status"]) == (
        "GET",
        "/health",
        "-",
        "200",
    )


def test_lines_say_why(
    http: httpx.Client, gw: ReferenceGateway, caplog: pytest.LogCaptureFixture
) -> None:
    """A miss says its deps and the best L2 similarity under the threshold; a 401 its code."""
    caplog.set_level(logging.INFO, logger=ACCESS)
    token = gw.mint_token("acme")
    chat(http, token, "What is the capital of France?")
    chat(http, token, "Tell me France's capital city")
    chat(http, mint_token("another-secret-of-at-least-32-bytes-long", "acme"), "hi")
    first, second, refused = access_lines(caplog)
    assert first["why"] == "deps:0,l2_best:none<0.87"
    assert second["cache"] == "MISS"
    best = second["why"].removeprefix("deps:0,l2_best:").removesuffix("<0.87")
    assert 0.0 < float(best) < 0.87
    assert refused["why"] == "bad_signature"
