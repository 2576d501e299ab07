"""Deps recorded per entry and ``/v1/invalidate`` scoped to the caller's tenant."""

from __future__ import annotations

import httpx
from gateway_helpers import chat, error_of

from cachecore._wire import (
    AUTHORIZATION_HEADER,
    CACHE_HEADER,
    DEPS_HEADER,
    INVALIDATE_PATH,
    TOKEN_HEADER,
    encode_deps,
    invalidate_body,
)
from cachecore.testing import ReferenceGateway

QUESTION = "Summarise contract 123 in three bullet points"


def _deps(*pairs: tuple[str, str]) -> dict[str, str]:
    return {DEPS_HEADER: encode_deps(pairs)}


def _invalidate(http: httpx.Client, token: str, dep_id: str, new_hash: str) -> httpx.Response:
    return http.post(
        INVALIDATE_PATH, json=invalidate_body(dep_id, new_hash), headers={TOKEN_HEADER: token}
    )


def test_invalidate_evicts_entries_with_another_hash(
    http: httpx.Client, gw: ReferenceGateway
) -> None:
    token = gw.mint_token("t")
    chat(http, token, QUESTION, headers=_deps(("doc:123", "v1")))
    chat(http, token, "unrelated question about the weather", headers=_deps(("doc:9", "v1")))
    response = _invalidate(http, token, "doc:123", "v2")
    assert response.status_code == 200
    assert response.json() == {"dep_id": "doc:123", "new_hash": "v2", "evicted": 1}
    assert gw.dep_version("t", "doc:123") == "v2"
    assert gw.entry_count("t") == 1
    after = chat(http, token, QUESTION, headers=_deps(("doc:123", "v2")))
    assert after.headers[CACHE_HEADER] == "MISS"


def test_invalidate_keeps_entries_already_at_new_hash(
    http: httpx.Client, gw: ReferenceGateway
) -> None:
    token = gw.mint_token("t")
    chat(http, token, QUESTION, headers=_deps(("doc:123", "v2")))
    assert _invalidate(http, token, "doc:123", "v2").json()["evicted"] == 0
    again = chat(http, token, QUESTION, headers=_deps(("doc:123", "v2")))
    assert again.headers[CACHE_HEADER] == "HIT_L1"


def test_invalidate_is_scoped_to_the_tenant(http: httpx.Client, gw: ReferenceGateway) -> None:
    a, b = gw.mint_token("tenant-a"), gw.mint_token("tenant-b")
    chat(http, a, QUESTION, headers=_deps(("doc:123", "v1")))
    chat(http, b, QUESTION, headers=_deps(("doc:123", "v1")))
    assert _invalidate(http, b, "doc:123", "v2").json()["evicted"] == 1
    assert gw.entry_count("tenant-a") == 1
    assert gw.entry_count("tenant-b") == 0
    assert gw.dep_version("tenant-a", "doc:123") is None
    again = chat(http, a, QUESTION, headers=_deps(("doc:123", "v1")))
    assert again.headers[CACHE_HEADER] == "HIT_L1"


def test_invalidate_accepts_bearer_token(http: httpx.Client, gw: ReferenceGateway) -> None:
    token = gw.mint_token("t")
    chat(http, token, QUESTION, headers=_deps(("doc:123", "v1")))
    response = http.post(
        INVALIDATE_PATH,
        json=invalidate_body("doc:123", "v9"),
        headers={AUTHORIZATION_HEADER: f"Bearer {token}"},
    )
    assert response.json()["evicted"] == 1


def test_entries_answer_only_requests_with_the_same_deps(
    http: httpx.Client, gw: ReferenceGateway
) -> None:
    """Deps say what data an answer depends on: other deps are other data, in L1 and L2."""
    token = gw.mint_token("t")
    paraphrase = "Summarise contract 123 in three bullet points!"
    first = chat(http, token, QUESTION, headers=_deps(("doc:123", "v1")))
    other_hash = chat(http, token, QUESTION, headers=_deps(("doc:123", "v2")))
    undeclared = chat(http, token, QUESTION)
    more = chat(http, token, QUESTION, headers=_deps(("doc:123", "v1"), ("doc:9", "v1")))
    other_l2 = chat(http, token, paraphrase, headers=_deps(("doc:124", "v1")))
    same_l2 = chat(http, token, paraphrase, headers=_deps(("doc:123", "v1")))
    same_l1 = chat(http, token, QUESTION, headers=_deps(("doc:123", "v1")))
    statuses = [
        r.headers[CACHE_HEADER] for r in (first, other_hash, undeclared, more, other_l2, same_l2)
    ]
    assert statuses == ["MISS", "MISS", "MISS", "MISS", "MISS", "HIT_L2"]
    assert same_l1.headers[CACHE_HEADER] == "HIT_L1"
    assert same_l1.json() == first.json()
    assert other_hash.json() != first.json()


def test_deps_order_and_repeats_do_not_matter(http: httpx.Client, gw: ReferenceGateway) -> None:
    token = gw.mint_token("t")
    chat(http, token, QUESTION, headers=_deps(("a", "1"), ("b", "2")))
    again = chat(http, token, QUESTION, headers=_deps(("b", "2"), ("a", "1")))
    assert again.headers[CACHE_HEADER] == "HIT_L1"


def test_malformed_deps_header_is_400(http: httpx.Client, gw: ReferenceGateway) -> None:
    token = gw.mint_token("t")
    for value in ("%%%", "bm90IGpzb24", encode_deps([("", "v1")]), "eyJhIjoxfQ"):
        response = chat(http, token, QUESTION, headers={DEPS_HEADER: value})
        assert response.status_code == 400
        err = error_of(response)
        assert err["code"] == "invalid_deps_header"
        assert DEPS_HEADER in err["message"]
    assert gw.entry_count("t") == 0


def test_invalidate_bad_bodies_are_400(http: httpx.Client, gw: ReferenceGateway) -> None:
    token = gw.mint_token("t")
    for bad in (
        {},
        {"dep_id": "d"},
        {"dep_id": "", "new_hash": "h"},
        {"dep_id": 3, "new_hash": "h"},
    ):
        response = http.post(INVALIDATE_PATH, json=bad, headers={TOKEN_HEADER: token})
        assert response.status_code == 400
        assert error_of(response)["code"] == "invalid_field"
