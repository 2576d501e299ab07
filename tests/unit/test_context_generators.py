"""``request_context`` inside generators closed elsewhere: exit never raises, settings end.

A generator's ``with`` block is entered where the generator is first advanced
and may be closed from another thread or task (garbage collection, a framework
iterating a streaming body from worker threads). Before 0.3 that made the exit
raise ``ValueError: <Token> was created in a different Context`` and left the
block's deps in force on the thread that entered it.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor

import anyio
import httpx
import pytest

from cachecore import CachecoreClient, Dep, SyncCachecoreClient, _wire

GATEWAY = "http://gw.test"
TOKEN = "cc_live_k1.generator-token"
CHAT = f"{GATEWAY}/v1/chat/completions"


class Recorder:
    def __init__(self) -> None:
        self.deps: list[list[tuple[str, str]] | None] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        value = request.headers.get(_wire.DEPS_HEADER)
        with self.lock:
            self.deps.append(None if value is None else _wire.decode_deps(value))
        return httpx.Response(200, headers={_wire.CACHE_HEADER: "MISS"}, json={})


def sync_setup() -> tuple[Recorder, SyncCachecoreClient, httpx.Client]:
    rec = Recorder()
    cc = SyncCachecoreClient(GATEWAY, TOKEN, inner_transport=httpx.MockTransport(rec))
    return rec, cc, httpx.Client(transport=cc.transport)


def test_generator_closed_from_another_thread() -> None:
    rec, cc, http = sync_setup()

    def answers() -> Iterator[int]:
        with cc.request_context(deps=[Dep("doc:gen")]):
            yield http.post(CHAT).status_code
            yield http.post(CHAT).status_code

    gen = answers()
    with ThreadPoolExecutor(max_workers=1) as worker:  # one thread: "thread A"
        assert worker.submit(next, gen).result() == 200
        gen.close()  # from this thread: the block's exit runs here, and must not raise
        worker.submit(http.post, CHAT).result()  # an unrelated request, back on thread A
    http.close()
    cc.close()
    assert rec.deps == [[("doc:gen", "v1")], None], "the closed block's deps outlived it"


def test_generator_collected_on_another_thread_exits_quietly() -> None:
    rec, cc, http = sync_setup()
    errors: list[BaseException] = []

    def answers() -> Iterator[None]:
        with cc.request_context(deps=[Dep("doc:gc")]) as ctx:
            http.post(CHAT)
            yield
        assert ctx.last is not None  # reached only on close: never

    gen = answers()
    thread_a = threading.Thread(target=next, args=(gen,))
    thread_a.start()
    thread_a.join()

    def close_it() -> None:
        try:
            gen.close()
        except BaseException as exc:
            errors.append(exc)

    thread_b = threading.Thread(target=close_it)
    thread_b.start()
    thread_b.join()
    http.post(CHAT)
    cc.close()
    assert errors == []
    assert rec.deps == [[("doc:gc", "v1")], None]


def test_streaming_body_advanced_from_worker_threads_in_copied_contexts() -> None:
    """Starlette iterates a sync body in a thread pool, each step in a copy of the context."""
    rec, cc, http = sync_setup()

    def body() -> Iterator[bytes]:
        with cc.request_context(deps=[Dep("doc:stream")]):
            http.post(CHAT)
            yield b"one"
            yield b"two"

    gen = body()
    with ThreadPoolExecutor(max_workers=2) as pool:
        steps = [pool.submit(contextvars.copy_context().run, next, gen).result() for _ in range(2)]
        with pytest.raises(StopIteration):
            pool.submit(contextvars.copy_context().run, next, gen).result()
        pool.submit(http.post, CHAT).result()
        pool.submit(http.post, CHAT).result()
    http.close()
    cc.close()
    assert steps == [b"one", b"two"]
    assert rec.deps == [[("doc:stream", "v1")], None, None]


def test_nested_blocks_closed_out_of_order_keep_only_the_open_ones() -> None:
    rec, cc, http = sync_setup()
    outer = cc.request_context(deps=[Dep("doc:outer")])
    inner = cc.request_context(deps=[Dep("doc:inner")])
    outer.__enter__()
    inner.__enter__()
    http.post(CHAT)
    outer.__exit__(None, None, None)  # out of order: the inner block is still open
    http.post(CHAT)  # the outer block has ended: its dep must not ride on the inner one
    inner.__exit__(None, None, None)
    http.post(CHAT)
    http.close()
    cc.close()
    assert rec.deps == [
        [("doc:outer", "v1"), ("doc:inner", "v1")],
        [("doc:inner", "v1")],
        None,
    ]


def test_an_ended_outer_block_does_not_live_on_in_a_suspended_generator() -> None:
    rec = Recorder()
    sent_tokens: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent_tokens.append(request.headers.get(_wire.TOKEN_HEADER))
        return rec(request)

    cc = SyncCachecoreClient(GATEWAY, TOKEN, inner_transport=httpx.MockTransport(handler))
    http = httpx.Client(transport=cc.transport)

    def steps() -> Iterator[None]:
        with cc.request_context(deps=[Dep("doc:gen")]):
            yield
            yield

    with cc.request_context(deps=[Dep("doc:outer")], bypass=True):
        gen = steps()
        next(gen)  # the generator's block opens inside the bypassed outer one
        http.post(CHAT)
    http.post(CHAT)  # the outer block ended: no bypass, no doc:outer
    gen.close()
    http.post(CHAT)
    http.close()
    cc.close()
    assert sent_tokens == [None, TOKEN, TOKEN]
    assert rec.deps == [[("doc:outer", "v1"), ("doc:gen", "v1")], [("doc:gen", "v1")], None]


@pytest.mark.anyio
async def test_async_generator_closed_from_another_task() -> None:
    rec = Recorder()
    cc = CachecoreClient(GATEWAY, TOKEN, inner_transport=httpx.MockTransport(rec))
    http = httpx.AsyncClient(transport=cc.transport)

    async def answers() -> AsyncIterator[int]:
        with cc.request_context(deps=[Dep("doc:agen")]):
            yield (await http.post(CHAT)).status_code
            yield (await http.post(CHAT)).status_code

    agen = answers()
    assert await agen.__anext__() == 200
    async with anyio.create_task_group() as tg:
        tg.start_soon(agen.aclose)  # another task closes it; its exit must not raise
    await http.post(CHAT)  # this task entered the block: its settings must be gone
    await http.aclose()
    await cc.aclose()
    assert rec.deps == [[("doc:agen", "v1")], None]
