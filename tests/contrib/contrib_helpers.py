"""Helpers shared by the framework integration tests (a uniquely named module, not conftest)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

import httpx

from cachecore._wire import CACHE_HEADER, CHAT_COMPLETIONS_PATH, DEPS_HEADER, decode_deps

MODEL = "gpt-4o-mini"


@dataclass(frozen=True)
class Seen:
    """One chat request as it reached the gateway: its prompt, its deps and the answer."""

    prompt: str
    deps: tuple[str, ...]
    cache: str | None
    thread: str


def _prompt(body: bytes) -> str:
    messages = json.loads(body)["messages"]
    return str(messages[-1]["content"])


class Recorder(httpx.BaseTransport):
    """An inner transport that notes what each chat request carried, then forwards it."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.seen: list[Seen] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        response = self.inner.handle_request(request)
        if request.url.path == CHAT_COMPLETIONS_PATH:
            deps = decode_deps(request.headers.get(DEPS_HEADER, ""))
            seen = Seen(
                _prompt(body),
                tuple(dep_id for dep_id, _ in deps),
                response.headers.get(CACHE_HEADER),
                threading.current_thread().name,
            )
            with self._lock:
                self.seen.append(seen)
        return response

    def close(self) -> None:
        self.inner.close()


class AsyncRecorder(httpx.AsyncBaseTransport):
    """``Recorder`` for the async client."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.seen: list[Seen] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        response = await self.inner.handle_async_request(request)
        if request.url.path == CHAT_COMPLETIONS_PATH:
            deps = decode_deps(request.headers.get(DEPS_HEADER, ""))
            self.seen.append(
                Seen(
                    _prompt(body),
                    tuple(dep_id for dep_id, _ in deps),
                    response.headers.get(CACHE_HEADER),
                    threading.current_thread().name,
                )
            )
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
