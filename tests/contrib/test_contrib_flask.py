"""The Flask extension: one client per app, per-request deps under a threaded server."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest

flask = pytest.importorskip("flask")
openai = pytest.importorskip("openai")

from contrib_helpers import MODEL, Recorder  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from cachecore.contrib.flask import Cachecore, get_client  # noqa: E402
from cachecore.errors import CachecoreClosedError, CachecoreConfigError  # noqa: E402
from cachecore.testing import ReferenceGateway  # noqa: E402
from shared_constants import GATEWAY_URL  # noqa: E402

N = 6


def create_app(gateway_url: str, token: str, recorder: Recorder) -> tuple[flask.Flask, Cachecore]:
    """A small app as users write it: the extension, one OpenAI client, one handler."""
    app = flask.Flask(__name__)
    app.config.update(CACHECORE_GATEWAY_URL=gateway_url, CACHECORE_TOKEN=token)
    cachecore = Cachecore(app, inner_transport=recorder)
    cc = get_client(app)
    llm = openai.OpenAI(
        base_url=cc.gateway_url + "/v1",
        api_key=token,
        http_client=httpx.Client(transport=cc.transport),
        max_retries=0,
    )
    # Every request of the first round waits here, inside its own request_context,
    # until all N are in: they are truly concurrent, each in its own server thread.
    barrier = threading.Barrier(N, timeout=20)

    @app.get("/summarise/<doc_id>")
    def summarise(doc_id: str) -> dict[str, object]:
        with cachecore.request_context(deps=[f"doc:{doc_id}", "table:docs"]) as handle:
            if flask.request.args.get("together"):
                barrier.wait()
            reply = llm.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": f"summarise doc {doc_id}"}]
            )
        assert handle.last is not None
        return {
            "doc": doc_id,
            "cache": handle.last.status,
            "deps": [d.dep_id for d in handle.deps],
            "thread": threading.current_thread().name,
            "text": reply.choices[0].message.content,
        }

    @app.post("/docs/<doc_id>")
    def update_doc(doc_id: str) -> dict[str, object]:
        result = cachecore.client.invalidate(f"doc:{doc_id}")
        return {"ok": result.ok}

    return app, cachecore


@contextmanager
def threaded_server(app: flask.Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def get_all(base: str, path: str) -> dict[str, dict[str, object]]:
    """GET ``path`` for docs 0..N-1 concurrently; answers by doc id."""
    with httpx.Client(base_url=base, timeout=30) as http, ThreadPoolExecutor(N) as pool:
        responses = list(pool.map(lambda i: http.get(path.format(i=i)), range(N)))
    for r in responses:
        assert r.status_code == 200, r.text
    return {r.json()["doc"]: r.json() for r in responses}


@pytest.fixture(params=["in_process", "loopback"])
def gateway_access(
    request: pytest.FixtureRequest, cachecore_gateway: ReferenceGateway
) -> Iterator[tuple[str, httpx.BaseTransport]]:
    """The gateway URL and an inner transport: in-process, or a real uvicorn server."""
    if request.param == "in_process":
        yield GATEWAY_URL, cachecore_gateway.transport()
        return
    pytest.importorskip("uvicorn")
    from cachecore.testing import serve

    with serve(cachecore_gateway) as url:
        yield url, httpx.HTTPTransport()


def test_threaded_server_requests_carry_their_own_deps(
    gateway_access: tuple[str, httpx.BaseTransport],
    cachecore_gateway: ReferenceGateway,
    cachecore_token: str,
    cachecore_tenant: str,
) -> None:
    url, inner = gateway_access
    recorder = Recorder(inner)
    app, cachecore = create_app(url, cachecore_token, recorder)
    with threaded_server(app) as base:
        first = get_all(base, "/summarise/{i}?together=1")
        # On the gateway side: each request reached it with its own deps, none mixed up.
        assert len(recorder.seen) == N
        for seen in recorder.seen:
            doc = seen.prompt.removeprefix("summarise doc ")
            assert seen.deps == (f"doc:{doc}", "table:docs")
            assert seen.cache == "MISS"
        assert {a["cache"] for a in first.values()} == {"MISS"}
        assert len({a["thread"] for a in first.values()}) == N  # N server threads at once
        assert cachecore_gateway.entry_count(cachecore_tenant) == N

        second = get_all(base, "/summarise/{i}")
        assert {a["cache"] for a in second.values()} == {"HIT_L1"}
        assert all(second[d]["text"] == first[d]["text"] for d in first)

        # A write handler invalidates one doc: only that doc misses afterwards.
        with httpx.Client(base_url=base) as http:
            assert http.post("/docs/3").json() == {"ok": True}
        third = get_all(base, "/summarise/{i}")
        assert {d: a["cache"] for d, a in third.items() if a["cache"] != "HIT_L1"} == {"3": "MISS"}
        # The same client served every request: teardown_appcontext did not close it.
        with app.app_context():
            assert cachecore.client is get_client(app)
    cachecore.close(app)


def test_config_comes_from_app_config_then_environment(
    monkeypatch: pytest.MonkeyPatch, cachecore_token: str, cachecore_mint: object
) -> None:
    monkeypatch.setenv("CACHECORE_GATEWAY_URL", "http://from-env.test")
    monkeypatch.setenv("CACHECORE_TOKEN", cachecore_token)
    from_env = flask.Flask("env")
    Cachecore(from_env)
    assert get_client(from_env).gateway_url == "http://from-env.test"

    configured = flask.Flask("configured")
    configured.config.update(
        CACHECORE_GATEWAY_URL="http://from-config.test/v1",
        CACHECORE_COLLECT_STATS=True,
    )
    Cachecore(configured)
    client = get_client(configured)
    assert client.gateway_url == "http://from-config.test"
    assert client.tenant_id == "tenant-a"  # token still from the environment
    assert client.stats.requests == 0  # CACHECORE_COLLECT_STATS reached the client


def test_bad_or_missing_config_fails_at_init_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CACHECORE_GATEWAY_URL", raising=False)
    monkeypatch.delenv("CACHECORE_TOKEN", raising=False)
    app = flask.Flask("missing")
    with pytest.raises(CachecoreConfigError, match="CACHECORE_GATEWAY_URL"):
        Cachecore(app)
    app.config["CACHECORE_GATEWAY_URL"] = GATEWAY_URL
    app.config["CACHECORE_TOKEN"] = "not a token"
    with pytest.raises(CachecoreConfigError, match="whitespace"):
        Cachecore(app)


def test_one_extension_many_apps_and_clear_errors(
    cachecore_gateway: ReferenceGateway, cachecore_token: str
) -> None:
    cachecore = Cachecore(inner_transport=cachecore_gateway.transport())
    apps = [flask.Flask(f"app{i}") for i in range(2)]
    for app in apps:
        app.config.update(CACHECORE_GATEWAY_URL=GATEWAY_URL, CACHECORE_TOKEN=cachecore_token)
        cachecore.init_app(app)
    clients = [get_client(app) for app in apps]
    assert clients[0] is not clients[1]
    with apps[1].app_context():
        assert cachecore.client is clients[1]
        assert cachecore.client.invalidate("doc:1").ok
    with pytest.raises(RuntimeError, match="app context"):
        get_client()
    with pytest.raises(CachecoreConfigError, match="init_app"):
        get_client(flask.Flask("bare"))


def test_close_and_garbage_collection_close_the_client(
    cachecore_gateway: ReferenceGateway, cachecore_token: str
) -> None:
    cachecore = Cachecore(inner_transport=cachecore_gateway.transport())
    app = flask.Flask("closing")
    app.config.update(CACHECORE_GATEWAY_URL=GATEWAY_URL, CACHECORE_TOKEN=cachecore_token)
    cachecore.init_app(app)
    client = get_client(app)
    assert client.invalidate("doc:1").ok
    cachecore.close(app)
    cachecore.close(app)  # idempotent
    with pytest.raises(CachecoreClosedError, match="closed"):
        client.invalidate("doc:1")
    with pytest.raises(CachecoreConfigError):
        get_client(app)

    other = flask.Flask("collected")
    other.config.update(CACHECORE_GATEWAY_URL=GATEWAY_URL, CACHECORE_TOKEN=cachecore_token)
    cachecore.init_app(other)
    orphan = get_client(other)
    del other
    gc.collect()
    with pytest.raises(CachecoreClosedError, match="closed"):
        orphan.invalidate("doc:1")
