"""Issue 12: right answers (deps scope L1 and L2, invalidation wins races, unambiguous
namespaces), bounded memory (entries, bytes, groups, dep versions, TTL, global cap),
caps with clear 4xx, and heavy work off the event loop. In-process: no sockets.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
import httpx
import pytest
from gateway_helpers import FakeClock, body, chat, error_of, make_gateway

from cachecore._wire import (
    CACHE_HEADER,
    DEPS_HEADER,
    INVALIDATE_PATH,
    NAMESPACE_HINT_HEADER,
    TOKEN_HEADER,
    encode_deps,
    invalidate_body,
)
from cachecore.testing import IN_PROCESS_URL, GatewayConfig, OfflineModel, ReferenceGateway
from cachecore.testing._store import Entry, TenantCache
from shared_constants import SECRET


def deps(*pairs: tuple[str, str]) -> dict[str, str]:
    return {DEPS_HEADER: encode_deps(pairs)}


def invalidate(http: httpx.Client, token: str, dep_id: str, new_hash: str) -> httpx.Response:
    return http.post(
        INVALIDATE_PATH, json=invalidate_body(dep_id, new_hash), headers={TOKEN_HEADER: token}
    )


def status(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return response.headers[CACHE_HEADER]


# -- deps scope every reuse -----------------------------------------------------------


def test_l2_never_crosses_documents(http: httpx.Client, gw: ReferenceGateway) -> None:
    """0.2.0: "Summarise document 8" got document 7's answer (HIT_L2, similarity 0.92)."""
    token = gw.mint_token("t")
    seven = chat(http, token, "Summarise document 7", headers=deps(("doc:7", "v1")))
    eight = chat(http, token, "Summarise document 8", headers=deps(("doc:8", "v1")))
    assert [status(seven), status(eight)] == ["MISS", "MISS"]
    assert eight.json()["choices"] != seven.json()["choices"]
    again = chat(http, token, "Summarise document 8!", headers=deps(("doc:8", "v1")))
    assert status(again) == "HIT_L2"
    assert again.json() == eight.json()


def test_tickets_in_threads_get_their_own_answers(gw: ReferenceGateway) -> None:
    """The docs' thread example: T-1, T-2, T-1 was MISS, HIT_L2, HIT_L1 on 0.2.0."""
    token = gw.mint_token("t")

    def classify(ticket: str) -> tuple[str, str]:
        with httpx.Client(transport=gw.transport(), base_url=IN_PROCESS_URL) as http:
            response = chat(
                http, token, f"Classify ticket {ticket}", headers=deps((f"ticket:{ticket}", "v1"))
            )
        return status(response), response.json()["choices"][0]["message"]["content"]

    first = classify("T-1")
    second = classify("T-2")
    third = classify("T-1")
    assert [first[0], second[0], third[0]] == ["MISS", "MISS", "HIT_L1"]
    assert "T-2" in second[1]
    assert third[1] == first[1]


def test_seed_flow_misses_once_after_each_invalidation(
    http: httpx.Client, gw: ReferenceGateway
) -> None:
    """A client that always declares Dep("doc:1") (hash v1) and invalidates with fresh hashes."""
    token = gw.mint_token("t")
    seen = [status(chat(http, token, "Summarise doc 1", headers=deps(("doc:1", "v1"))))]
    for new_hash in ("8f0c", "a41d"):
        seen.append(str(invalidate(http, token, "doc:1", new_hash).json()["evicted"]))
        for _ in range(2):
            seen.append(status(chat(http, token, "Summarise doc 1", headers=deps(("doc:1", "v1")))))
    assert seen == ["MISS", "1", "MISS", "HIT_L1", "1", "MISS", "HIT_L1"]


# -- invalidation wins races ----------------------------------------------------------


class GatedUpstream:
    """An upstream whose calls wait until the test lets them go."""

    blocking = False
    latency = 0.0

    def __init__(self) -> None:
        self.model = OfflineModel()
        self.started = anyio.Event()
        self.release = anyio.Event()
        self.async_calls = 0

    def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.model.complete(request)

    async def acomplete(self, request: dict[str, Any]) -> dict[str, Any]:
        self.async_calls += 1
        self.started.set()
        await self.release.wait()
        return self.model.complete(request)


@pytest.mark.anyio
async def test_invalidation_during_an_in_flight_miss_is_not_lost() -> None:
    upstream = GatedUpstream()
    gw = make_gateway(upstream=upstream)
    token = gw.mint_token("t")
    headers = {TOKEN_HEADER: token, **deps(("doc:contract-123", "v1"))}
    payload = body("Summarise contract 123")
    results: dict[str, httpx.Response] = {}
    async with httpx.AsyncClient(transport=gw.async_transport(), base_url=IN_PROCESS_URL) as c:

        async def in_flight() -> None:
            results["miss"] = await c.post("/v1/chat/completions", json=payload, headers=headers)

        async with anyio.create_task_group() as tg:
            tg.start_soon(in_flight)
            await upstream.started.wait()
            done = await c.post(
                INVALIDATE_PATH,
                json=invalidate_body("doc:contract-123", "v2"),
                headers={TOKEN_HEADER: token},
            )
            assert done.json()["evicted"] == 0
            upstream.release.set()
        after = await c.post("/v1/chat/completions", json=payload, headers=headers)
        then = await c.post("/v1/chat/completions", json=payload, headers=headers)
    assert results["miss"].headers[CACHE_HEADER] == "MISS"
    assert after.headers[CACHE_HEADER] == "MISS", "the stale answer must not have been stored"
    assert then.headers[CACHE_HEADER] == "HIT_L1"
    assert gw.stats().stale_not_stored == 1
    assert upstream.async_calls == 2, "the async face awaits acomplete"


def test_a_forgotten_dep_version_refuses_older_misses() -> None:
    """Dep versions are bounded; a miss older than a forgotten one cannot prove its deps fresh."""
    cache = TenantCache(max_entries=2, max_bytes=10**9, use_numpy=False)
    since = cache.epoch
    for i in range(3):  # the third forgets doc:0, the oldest version
        cache.invalidate(f"doc:{i}", "v2")
    assert list(cache.dep_versions) == ["doc:1", "doc:2"]
    entry = Entry("k", {}, {"doc:unrelated": "v1"}, 0.0, size=10, group=("ns", "m", "x"))
    assert cache.store(entry, [1.0], since).stale
    fresh = Entry("k", {}, {"doc:unrelated": "v1"}, 0.0, size=10, group=("ns", "m", "x"))
    assert cache.store(fresh, [1.0], cache.epoch).stored


# -- namespaces -----------------------------------------------------------------------


def test_roles_are_encoded_unambiguously(http: httpx.Client, gw: ReferenceGateway) -> None:
    joined = gw.mint_token("t", roles=["admin,analyst"])
    split = gw.mint_token("t", roles=["admin", "analyst"])
    first = chat(http, joined, "Quarterly revenue by region")
    other = chat(http, split, "Quarterly revenue by region")
    assert [status(first), status(other)] == ["MISS", "MISS"]
    assert first.headers[NAMESPACE_HINT_HEADER] != other.headers[NAMESPACE_HINT_HEADER]


# -- bounds ---------------------------------------------------------------------------


def test_ttl_expires_entries(http: httpx.Client, clock: FakeClock) -> None:
    gw = make_gateway(clock=clock, ttl=60)
    with httpx.Client(transport=gw.transport(), base_url=IN_PROCESS_URL) as http:
        token = gw.mint_token("t")
        assert status(chat(http, token, "What is a cache?")) == "MISS"
        clock.now += 59
        assert status(chat(http, token, "What is a cache?")) == "HIT_L1"
        assert status(chat(http, token, "what is a cache")) == "HIT_L2"
        clock.now += 1
        assert status(chat(http, token, "What is a cache?")) == "MISS"
        clock.now += 61
        stats = gw.stats()
    assert stats.entries == {"t": 0}
    assert stats.evicted_ttl == 2  # swept at the second miss, then the second entry
    assert stats.total_bytes == stats.bytes["t"] == 0


def test_tenant_bytes_are_bounded_and_groups_go_with_their_entries(
    http: httpx.Client,
) -> None:
    gw = make_gateway(max_tenant_bytes=20_000, max_total_bytes=None)
    with httpx.Client(transport=gw.transport(), base_url=IN_PROCESS_URL) as http:
        token = gw.mint_token("t")
        for i in range(40):
            assert status(chat(http, token, f"question {i} " + "x" * 1000, model=f"m{i}")) == "MISS"
        stats = gw.stats()
    assert 0 < stats.bytes["t"] <= 20_000
    assert stats.entries["t"] < 40
    assert stats.groups["t"] == stats.entries["t"], "a model's group leaves with its last entry"
    assert stats.evicted_lru == 40 - stats.entries["t"]


def test_global_cap_evicts_the_biggest_tenant_first() -> None:
    gw = make_gateway(max_tenant_bytes=30_000, max_total_bytes=30_000)
    with httpx.Client(transport=gw.transport(), base_url=IN_PROCESS_URL) as http:
        quiet, noisy = gw.mint_token("quiet"), gw.mint_token("noisy")
        assert status(chat(http, quiet, "the quiet tenant's question")) == "MISS"
        for i in range(60):
            chat(http, noisy, f"noisy question {i} " + "y" * 800, model=f"m{i}")
        stats = gw.stats()
        assert stats.total_bytes <= 30_000
        assert stats.evicted_bytes > 0
        assert stats.entries["quiet"] == 1
        assert status(chat(http, quiet, "the quiet tenant's question")) == "HIT_L1"


def test_dep_versions_are_bounded(http: httpx.Client) -> None:
    gw = make_gateway(max_entries=5)
    with httpx.Client(transport=gw.transport(), base_url=IN_PROCESS_URL) as http:
        token = gw.mint_token("t")
        for i in range(40):
            assert invalidate(http, token, f"doc:{i}:" + "d" * 400, "v2").status_code == 200
        stats = gw.stats()
    assert stats.dep_versions == {"t": 5}
    assert stats.bytes["t"] < 5 * 1000


def test_an_answer_bigger_than_the_tenant_bound_is_served_not_stored() -> None:
    gw = make_gateway(max_tenant_bytes=2_000, max_total_bytes=None)
    with httpx.Client(transport=gw.transport(), base_url=IN_PROCESS_URL) as http:
        token = gw.mint_token("t")
        prompt = "z" * 3_000  # the offline answer quotes 200 characters; the vector adds 2 KB
        assert status(chat(http, token, prompt)) == "MISS"
        assert status(chat(http, token, prompt)) == "MISS"
    assert gw.stats().too_large_not_stored == 2
    assert gw.stats().entries == {"t": 0}


# -- caps -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "code", "setting"),
    [
        ({"model": "m" * 257}, "model_too_long", "max_model_chars"),
        ({"headers": deps(*((f"d{i}", "v1") for i in range(65)))}, "too_many_deps", "max_deps"),
        ({"headers": deps(("d" * 513, "v1"))}, "dep_too_long", "max_dep_chars"),
        ({"headers": deps(("d", "h" * 513))}, "dep_too_long", "max_dep_chars"),
    ],
)
def test_caps_are_400_naming_the_setting(
    http: httpx.Client, gw: ReferenceGateway, kwargs: dict[str, Any], code: str, setting: str
) -> None:
    response = chat(http, gw.mint_token("t"), "hello", **kwargs)
    assert response.status_code == 400
    err = error_of(response)
    assert err["code"] == code
    assert setting in err["message"]
    assert gw.stats().upstream_calls == 0


def test_the_limits_themselves_are_accepted(http: httpx.Client, gw: ReferenceGateway) -> None:
    pairs = [(f"{i:03d}" + "d" * 509, "h" * 512) for i in range(64)]
    response = chat(http, gw.mint_token("t"), "hello", model="m" * 256, headers=deps(*pairs))
    assert status(response) == "MISS"


def test_invalidate_caps_dep_length(http: httpx.Client, gw: ReferenceGateway) -> None:
    response = invalidate(http, gw.mint_token("t"), "d" * 513, "v2")
    assert response.status_code == 400
    assert error_of(response)["code"] == "dep_too_long"


def test_prompt_cap_is_413_and_l2_off_lifts_it() -> None:
    capped = make_gateway(max_prompt_chars=1000)
    uncapped = make_gateway(max_prompt_chars=1000, l2_threshold=None)
    for gw, expected in ((capped, 413), (uncapped, 200)):
        with httpx.Client(transport=gw.transport(), base_url=IN_PROCESS_URL) as http:
            response = chat(http, gw.mint_token("t"), "p" * 1000)
        assert response.status_code == expected
    err = error_of(
        httpx.Client(transport=capped.transport(), base_url=IN_PROCESS_URL).post(
            "/v1/chat/completions",
            json=body("p" * 1000),
            headers={TOKEN_HEADER: capped.mint_token("t")},
        )
    )
    assert err["code"] == "prompt_too_long"
    assert "max_prompt_chars" in err["message"]
    assert "l2_threshold=None" in err["message"]


@pytest.mark.parametrize(
    "bad",
    [
        {"max_tenant_bytes": 0},
        {"max_deps": 0},
        {"cpu_workers": 0},
        {"max_prompt_chars": 1.5},
        {"ttl": 0},
        {"ttl": float("inf")},
        {"max_tenant_bytes": 10, "max_total_bytes": 5},
        {"max_dep_chars": 31},
    ],
)
def test_bad_bounds_are_refused_at_construction(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad)).split("_bytes")[0]):
        GatewayConfig(secret=SECRET, **bad)


def test_the_smallest_dep_cap_still_takes_invalidates_default_hash() -> None:
    """``max_dep_chars`` below 32 refused every ``invalidate()`` without a ``new_hash``."""
    from cachecore import SyncCachecoreClient
    from cachecore.testing._config import MIN_DEP_CHARS

    with pytest.raises(ValueError, match="default new hash for an invalidation is 32"):
        GatewayConfig(secret=SECRET, max_dep_chars=MIN_DEP_CHARS - 1)
    gw = ReferenceGateway(GatewayConfig(secret=SECRET, max_dep_chars=MIN_DEP_CHARS))
    with SyncCachecoreClient(
        gateway_url=IN_PROCESS_URL,
        tenant_jwt=gw.mint_token("t"),
        inner_transport=gw.transport(),
        max_retries=0,
    ) as cc:
        result = cc.invalidate("doc:1")
    assert result.ok, result.error
    assert len(result.new_hash) == MIN_DEP_CHARS


# -- heavy work off the event loop ---------------------------------------------------


@pytest.mark.anyio
async def test_long_prompts_are_embedded_in_a_worker_thread() -> None:
    threads: list[threading.Thread] = []

    def embedder(text: str) -> list[float]:
        threads.append(threading.current_thread())
        return [1.0] + [0.0] * 7

    gw = make_gateway(embedder=embedder)
    token = gw.mint_token("t")
    async with httpx.AsyncClient(transport=gw.async_transport(), base_url=IN_PROCESS_URL) as c:
        for prompt in ("short", "long " * 2000):
            response = await c.post(
                "/v1/chat/completions", json=body(prompt), headers={TOKEN_HEADER: token}
            )
            assert response.status_code == 200
    assert threads[0] is threading.main_thread()
    assert threads[1] is not threading.main_thread()


@pytest.mark.anyio
async def test_a_blocking_upstream_runs_in_a_worker_thread_and_hits_do_not() -> None:
    seen: list[threading.Thread] = []

    class Blocking(OfflineModel):
        blocking = True

        def complete(self, request: dict[str, Any]) -> dict[str, Any]:
            seen.append(threading.current_thread())
            return super().complete(request)

    gw = make_gateway(upstream=Blocking())
    token = gw.mint_token("t")
    async with httpx.AsyncClient(transport=gw.async_transport(), base_url=IN_PROCESS_URL) as c:
        for expected in ("MISS", "HIT_L1"):
            response = await c.post(
                "/v1/chat/completions", json=body("hello"), headers={TOKEN_HEADER: token}
            )
            assert response.headers[CACHE_HEADER] == expected
    assert len(seen) == 1
    assert seen[0] is not threading.main_thread()


# -- found by review: bounds that must not switch caching off -------------------------


def big_invalidations(http: httpx.Client, token: str, n: int) -> None:
    for i in range(n):
        response = invalidate(http, token, f"d{i}:" + "x" * 500, "h" * 500)
        assert response.status_code == 200


def test_dep_versions_never_crowd_out_entries() -> None:
    gw = make_gateway(max_tenant_bytes=20_000, max_total_bytes=20_000)
    with httpx.Client(transport=gw.transport(), base_url=IN_PROCESS_URL) as http:
        token = gw.mint_token("t")
        big_invalidations(http, token, 17)
        assert gw.stats().bytes["t"] <= 10_000, "dep versions keep to half the budget"
        seen = [status(chat(http, token, "still cached?")) for _ in range(3)]
    assert seen == ["MISS", "HIT_L1", "HIT_L1"]


def test_one_tenants_invalidations_do_not_evict_the_others() -> None:
    gw = make_gateway(max_tenant_bytes=20_000, max_total_bytes=20_000)
    with httpx.Client(transport=gw.transport(), base_url=IN_PROCESS_URL) as http:
        a, b = gw.mint_token("a"), gw.mint_token("b")
        for i in range(3):
            assert status(chat(http, a, f"tenant a question {i}", model=f"m{i}")) == "MISS"
        big_invalidations(http, b, 17)
        stats = gw.stats()
        assert stats.total_bytes <= 20_000
        assert stats.entries["a"] == 3
        assert status(chat(http, a, "tenant a question 0", model="m0")) == "HIT_L1"


class OddUpstream(OfflineModel):
    """Answers a completion whose content is a list: not something the gateway can serve."""

    def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        completion = super().complete(request)
        completion["choices"][0]["message"]["content"] = ["not", "a", "string"]
        return completion


@pytest.mark.parametrize("stream", [False, True])
def test_a_bad_upstream_completion_is_502_and_not_cached(stream: bool) -> None:
    gw = make_gateway(upstream=OddUpstream())
    with httpx.Client(transport=gw.transport(), base_url=IN_PROCESS_URL) as http:
        token = gw.mint_token("t")
        for _ in range(2):
            response = chat(http, token, "hello", stream=stream)
            assert response.status_code == 502
            assert "choices[0].message.content" in error_of(response)["message"]
    assert gw.stats().entries == {"t": 0}


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 1.5},
        {"tools": [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]},
        {"image": "https://example.test/other.png"},
    ],
)
def test_l2_compares_only_requests_alike_but_for_the_text(
    http: httpx.Client, gw: ReferenceGateway, change: dict[str, Any]
) -> None:
    def request(text: str, image: str = "https://example.test/cat.png", **extra: Any) -> Any:
        content = [
            {"type": "text", "text": text},
            {"type": "image_url", "image_url": {"url": image}},
        ]
        payload = {"model": "m", "messages": [{"role": "user", "content": content}], **extra}
        return http.post(
            "/v1/chat/completions", json=payload, headers={TOKEN_HEADER: gw.mint_token("t")}
        )

    assert status(request("What is in this picture?")) == "MISS"
    assert status(request("What is in this picture")) == "HIT_L2"
    assert status(request("What is in this picture", **change)) == "MISS"


def test_expired_entries_go_before_live_ones(clock: FakeClock) -> None:
    gw = make_gateway(clock=clock, ttl=10, max_entries=2)
    with httpx.Client(transport=gw.transport(), base_url=IN_PROCESS_URL) as http:
        token = gw.mint_token("t")
        chat(http, token, "first question", model="a")
        clock.now += 6
        chat(http, token, "second question", model="b")
        clock.now += 5  # the first expired, the second has 5 s left
        chat(http, token, "third question", model="c")
        assert status(chat(http, token, "second question", model="b")) == "HIT_L1"
    stats = gw.stats()
    assert (stats.evicted_ttl, stats.evicted_lru) == (1, 0)


def test_an_embedder_changing_sizes_is_a_500_and_leaves_no_group_behind() -> None:
    sizes = iter([8, 16, 8])
    gw = make_gateway(embedder=lambda text: [1.0] * next(sizes))
    with httpx.Client(transport=gw.transport(), base_url=IN_PROCESS_URL) as http:
        token = gw.mint_token("t")
        assert status(chat(http, token, "one", model="a")) == "MISS"
        assert chat(http, token, "two", model="b").status_code == 500
        stats = gw.stats()
    assert stats.entries == {"t": 1}
    assert stats.groups == {"t": 1}


def test_a_dep_declared_twice_with_other_hashes_is_400(
    http: httpx.Client, gw: ReferenceGateway
) -> None:
    token = gw.mint_token("t")
    twice = chat(http, token, "hello", headers=deps(("a", "1"), ("a", "2")))
    assert twice.status_code == 400
    assert "twice" in error_of(twice)["message"]
    same = chat(http, token, "hello", headers=deps(("a", "1"), ("a", "1")))
    assert status(same) == "MISS"


def test_a_remembered_token_is_refused_once_it_expires(
    http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verified tokens are remembered to skip the HMAC on hits, never past their exp."""
    import time

    gw = make_gateway(jwt_leeway=0)
    with httpx.Client(transport=gw.transport(), base_url=IN_PROCESS_URL) as http:
        token = gw.mint_token("t", expires_in=60)
        assert status(chat(http, token, "hello")) == "MISS"
        assert status(chat(http, token, "hello")) == "HIT_L1"
        later = time.time() + 61
        monkeypatch.setattr(time, "time", lambda: later)
        expired = chat(http, token, "hello")
    assert expired.status_code == 401
    assert error_of(expired)["code"] == "token_expired"
