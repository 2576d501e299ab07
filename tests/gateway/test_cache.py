"""L1 and L2 lookups, their headers, tenant isolation, LRU, bypass."""

from __future__ import annotations

import re

import httpx
import pytest
from gateway_helpers import FakeClock, chat, make_gateway

from cachecore._wire import (
    AGE_HEADER,
    AUTHORIZATION_HEADER,
    CACHE_HEADER,
    NAMESPACE_HINT_HEADER,
    SIMILARITY_HEADER,
    parse_similarity,
)
from cachecore.testing import IN_PROCESS_URL, OfflineModel, ReferenceGateway

QUESTION = "What is the capital of France?"
PARAPHRASE = "What's the capital of France?"


def _offline(gw: ReferenceGateway) -> OfflineModel:
    assert isinstance(gw.upstream, OfflineModel)
    return gw.upstream


def test_l1_miss_then_hit(http: httpx.Client, gw: ReferenceGateway, clock: FakeClock) -> None:
    token = gw.mint_token("tenant-a")
    miss = chat(http, token, QUESTION)
    clock.now += 42.7
    hit = chat(http, token, QUESTION)
    assert miss.headers[CACHE_HEADER] == "MISS"
    assert AGE_HEADER not in miss.headers
    assert hit.headers[CACHE_HEADER] == "HIT_L1"
    assert hit.headers[AGE_HEADER] == "42"
    assert SIMILARITY_HEADER not in hit.headers
    assert hit.json() == miss.json()
    assert re.fullmatch(r"[0-9a-f]{12}", hit.headers[NAMESPACE_HINT_HEADER])
    assert hit.headers[NAMESPACE_HINT_HEADER] == miss.headers[NAMESPACE_HINT_HEADER]
    assert _offline(gw).calls == 1
    stats = gw.stats()
    assert (stats.hits_l1, stats.misses, stats.entries) == (1, 1, {"tenant-a": 1})


def test_l1_key_covers_parameters(http: httpx.Client, gw: ReferenceGateway) -> None:
    token = gw.mint_token("t")
    chat(http, token, QUESTION, temperature=0.2)
    other_params = chat(http, token, QUESTION, temperature=0.9)
    other_model = chat(http, token, QUESTION, model="gpt-4o")
    same = chat(http, token, QUESTION, temperature=0.2, stream=False)
    assert other_params.headers[CACHE_HEADER] != "HIT_L1"
    assert other_model.headers[CACHE_HEADER] == "MISS"  # L2 never crosses models
    assert same.headers[CACHE_HEADER] == "HIT_L1"  # stream is not part of the key


def test_l2_hit_on_paraphrase(http: httpx.Client, gw: ReferenceGateway) -> None:
    token = gw.mint_token("t")
    first = chat(http, token, QUESTION)
    near = chat(http, token, PARAPHRASE)
    assert near.headers[CACHE_HEADER] == "HIT_L2"
    similarity = parse_similarity(near.headers[SIMILARITY_HEADER])
    assert 0.87 <= similarity < 1.0
    assert near.headers[AGE_HEADER] == "0"
    assert near.json()["choices"] == first.json()["choices"]
    assert gw.stats().hits_l2 == 1


def test_l2_misses_below_threshold(http: httpx.Client, gw: ReferenceGateway) -> None:
    token = gw.mint_token("t")
    chat(http, token, QUESTION)
    unrelated = chat(http, token, "How do I bake sourdough bread at home?")
    assert unrelated.headers[CACHE_HEADER] == "MISS"
    assert SIMILARITY_HEADER not in unrelated.headers
    assert _offline(gw).calls == 2


def test_l2_can_be_turned_off() -> None:
    gw = make_gateway(l2_threshold=None)
    with httpx.Client(transport=gw.transport(), base_url=IN_PROCESS_URL) as client:
        token = gw.mint_token("t")
        chat(client, token, QUESTION)
        assert chat(client, token, PARAPHRASE).headers[CACHE_HEADER] == "MISS"
        assert chat(client, token, QUESTION).headers[CACHE_HEADER] == "HIT_L1"


TOPICS = [
    "How do I bake sourdough bread?",
    "Explain quantum entanglement simply",
    "Best hiking trails near Zurich",
    "Write a haiku about autumn leaves",
    "Convert 30 Celsius to Fahrenheit",
]


@pytest.mark.parametrize("use_numpy", [True, False])
def test_numpy_and_python_indexes_agree(use_numpy: bool) -> None:
    gw = make_gateway(use_numpy=use_numpy, max_entries=3)
    token = gw.mint_token("t")
    with httpx.Client(transport=gw.transport(), base_url=IN_PROCESS_URL) as client:
        for topic in TOPICS:
            chat(client, token, topic)
        # the two oldest entries are gone, the rows of the rest still line up
        near = chat(client, token, TOPICS[-1].upper() + "!")
        old = chat(client, token, TOPICS[0])
    assert gw.entry_count("t") == 3
    assert gw.stats().evicted_lru == 3
    assert near.headers[CACHE_HEADER] == "HIT_L2"
    assert old.headers[CACHE_HEADER] == "MISS"


def test_tenants_are_isolated_at_l1_and_l2(http: httpx.Client, gw: ReferenceGateway) -> None:
    a, b = gw.mint_token("tenant-a"), gw.mint_token("tenant-b")
    chat(http, a, QUESTION)
    b_exact = chat(http, b, QUESTION)
    b_near = chat(http, b, "what is the capital of france")
    a_near = chat(http, a, "what is the capital of france")
    assert b_exact.headers[CACHE_HEADER] == "MISS"
    assert b_near.headers[CACHE_HEADER] == "HIT_L1" or b_near.headers[CACHE_HEADER] == "HIT_L2"
    # b_near may only hit b's own entry, written by b_exact
    assert b_near.json()["choices"] == b_exact.json()["choices"]
    assert a_near.headers[CACHE_HEADER] == "HIT_L2"
    assert b_exact.headers[NAMESPACE_HINT_HEADER] != a_near.headers[NAMESPACE_HINT_HEADER]
    assert gw.stats().entries == {"tenant-a": 1, "tenant-b": 1}


def test_roles_split_namespaces(http: httpx.Client, gw: ReferenceGateway) -> None:
    reader = gw.mint_token("t", roles=["reader"])
    admin = gw.mint_token("t", roles=["admin"])
    chat(http, reader, QUESTION)
    other_role = chat(http, admin, QUESTION)
    same_role = chat(http, gw.mint_token("t", roles=["reader"]), PARAPHRASE)
    assert other_role.headers[CACHE_HEADER] == "MISS"
    assert same_role.headers[CACHE_HEADER] == "HIT_L2"


def test_bypass_stores_nothing(http: httpx.Client, gw: ReferenceGateway) -> None:
    token = gw.mint_token("t")
    bearer = {AUTHORIZATION_HEADER: f"Bearer {token}"}
    first = chat(http, None, QUESTION, headers=bearer)
    second = chat(http, None, QUESTION, headers=bearer)
    cached = chat(http, token, QUESTION)
    assert first.headers[CACHE_HEADER] == second.headers[CACHE_HEADER] == "BYPASS"
    assert AGE_HEADER not in first.headers
    assert first.json()["choices"][0]["message"]["content"].startswith("Offline answer")
    assert cached.headers[CACHE_HEADER] == "MISS"
    assert _offline(gw).calls == 3
    assert gw.stats().bypasses == 2


def test_bypass_does_not_read_the_cache(http: httpx.Client, gw: ReferenceGateway) -> None:
    token = gw.mint_token("t")
    chat(http, token, QUESTION)
    bypass = chat(http, None, QUESTION, headers={AUTHORIZATION_HEADER: f"Bearer {token}"})
    assert bypass.headers[CACHE_HEADER] == "BYPASS"
    assert _offline(gw).calls == 2
    assert gw.entry_count("t") == 1


def test_offline_model_is_deterministic(http: httpx.Client, gw: ReferenceGateway) -> None:
    a = chat(http, gw.mint_token("a"), QUESTION).json()
    b = chat(http, gw.mint_token("b"), QUESTION).json()
    c = chat(http, gw.mint_token("c"), "Another question entirely").json()
    content = [r["choices"][0]["message"]["content"] for r in (a, b, c)]
    assert content[0] == content[1] != content[2]
    assert a["object"] == "chat.completion"
    assert (
        a["usage"]["total_tokens"] == a["usage"]["prompt_tokens"] + a["usage"]["completion_tokens"]
    )


def test_recorded_requests(http: httpx.Client, gw: ReferenceGateway) -> None:
    chat(http, gw.mint_token("t"), QUESTION)
    http.get("/nope")
    first, second = gw.requests
    assert (first.path, first.status, first.cache, first.tenant_id) == (
        "/v1/chat/completions",
        200,
        "MISS",
        "t",
    )
    assert (second.path, second.status, second.cache) == ("/nope", 404, None)
    gw.clear()
    assert not gw.requests
    assert gw.stats().misses == 0
