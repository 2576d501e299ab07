"""HTTPUpstream forwarding, L2 lookup speed at 10,000 entries, the command line."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from gateway_helpers import SECRET, chat, error_of, make_gateway

from cachecore.__main__ import main
from cachecore._wire import AUTHORIZATION_HEADER, CACHE_HEADER, HEALTH_PATH, TOKEN_HEADER
from cachecore.testing import IN_PROCESS_URL, HTTPUpstream, NgramEmbedder, ReferenceGateway
from cachecore.testing._store import Entry, TenantCache


def test_http_upstream_forwards_to_another_gateway() -> None:
    upstream_gw = make_gateway()
    upstream = HTTPUpstream(
        IN_PROCESS_URL + "/v1",
        upstream_gw.mint_token("upstream-account"),
        transport=upstream_gw.transport(),
    )
    gw = make_gateway(upstream=upstream)
    with httpx.Client(transport=gw.transport(), base_url=IN_PROCESS_URL) as client:
        token = gw.mint_token("t")
        miss = chat(client, token, "forward me", stream=True)
        hit = chat(client, token, "forward me")
    assert miss.headers[CACHE_HEADER] == "MISS"
    assert hit.headers[CACHE_HEADER] == "HIT_L1"
    assert "Offline answer" in hit.json()["choices"][0]["message"]["content"]
    assert [r.cache for r in upstream_gw.requests] == ["BYPASS"]  # forwarded once, as bypass
    upstream.close()


def test_http_upstream_failure_is_502() -> None:
    upstream_gw = make_gateway()
    upstream = HTTPUpstream(IN_PROCESS_URL + "/v1", "wrong-key", transport=upstream_gw.transport())
    gw = make_gateway(upstream=upstream)
    with httpx.Client(transport=gw.transport(), base_url=IN_PROCESS_URL) as client:
        response = chat(client, gw.mint_token("t"), "hello")
    assert response.status_code == 502
    assert error_of(response)["code"] == "upstream_error"
    assert gw.entry_count("t") == 0


@pytest.mark.anyio
async def test_async_face_with_blocking_upstream() -> None:
    upstream_gw = make_gateway()
    upstream = HTTPUpstream(
        IN_PROCESS_URL + "/v1",
        upstream_gw.mint_token("u"),
        transport=upstream_gw.transport(),
        async_transport=upstream_gw.async_transport(),
    )
    gw = make_gateway(upstream=upstream)
    async with httpx.AsyncClient(transport=gw.async_transport(), base_url=IN_PROCESS_URL) as c:
        token = gw.mint_token("t")
        response = await c.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
            headers={AUTHORIZATION_HEADER: f"Bearer {token}"},
        )
    await upstream.aclose()  # the async client of this event loop
    upstream.close()
    assert response.headers[CACHE_HEADER] == "BYPASS"


def test_l2_lookup_under_5ms_at_10k_entries() -> None:
    pytest.importorskip("numpy")
    embed = NgramEmbedder()
    cache = TenantCache(max_entries=20_000, max_bytes=2**40, use_numpy=True)
    scope = ("ns", "m", "[]")
    for i in range(10_000):
        vector = embed(f"question {i} about topic {i % 97} and detail {i * 31}")
        cache.store(Entry(str(i), {}, {}, 0.0, group=scope), vector, since_epoch=0)
    timings = []
    for i in range(50):
        started = time.perf_counter()
        query = embed(f"question {i * 13} about topic {i} and detail {i}")
        cache.similar(query, scope, 0.87, now=0.0)
        timings.append(time.perf_counter() - started)
    assert len(cache.entries) == 10_000
    assert statistics.median(timings) < 0.005


def test_cli_missing_secret_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CACHECORE_JWT_SECRET", raising=False)
    assert main(["gateway", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "CACHECORE_JWT_SECRET" in err


def test_cli_rejects_bad_settings(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CACHECORE_JWT_SECRET", SECRET)
    with pytest.raises(SystemExit) as exit_info:
        main(["gateway", "--l2-threshold", "3"])
    assert exit_info.value.code == 2
    assert "argument --l2-threshold: must be in (0, 1], or off, got '3'" in capsys.readouterr().err
    assert main(["gateway", "--max-tenant-mb", "1", "--max-total-mb", "0.5"]) == 2
    assert "max_total_bytes" in capsys.readouterr().err


def test_cli_serves_until_stopped(tmp_path: Path) -> None:
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "CACHECORE_JWT_SECRET": SECRET, "PYTHONPATH": str(src)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cachecore", "gateway", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:")
        for _ in range(100):
            try:
                health = httpx.get(url + HEALTH_PATH, timeout=1)
                break
            except httpx.ConnectError:
                time.sleep(0.05)
        assert health.json() == {"status": "ok"}
        token = make_gateway().mint_token("t")
        answer = httpx.post(
            url + "/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            headers={TOKEN_HEADER: token},
        )
        assert answer.headers[CACHE_HEADER] == "MISS"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_plugin_fixtures(
    cachecore_gateway: ReferenceGateway, cachecore_token: str, cachecore_server: str
) -> None:
    response = httpx.get(cachecore_server + HEALTH_PATH)
    answer = httpx.post(
        cachecore_server + "/v1/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        headers={TOKEN_HEADER: cachecore_token},
    )
    assert response.status_code == 200
    assert answer.headers[CACHE_HEADER] == "MISS"
    assert cachecore_gateway.entry_count("tenant-a") == 1
