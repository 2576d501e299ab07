"""``CachecoreClient``: one tenant's handle on the gateway.

It owns three things: the transport to plug under an LLM SDK, the request
context that steers it, and the invalidation calls. Everything it checks and
decides is shared with the sync twin (``_config``, ``_auth``, ``_context``,
``_invalidation``); this file only does the I/O.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from .. import _doctor, _httplib, _invalidation, _wire
from .._auth import TokenInfo, TokenProvider, TokenSource
from .._concurrency import AsyncPerLoop, AsyncWorkerPool, async_sleep
from .._config import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    POOL_CONNECTIONS,
    GatewayErrors,
    check_count,
    check_dep_id,
    check_dep_ids,
    check_gateway_errors,
    check_http2,
    check_new_hash,
    check_retry_policy,
    check_timeout,
    resolve_gateway_url,
)
from .._context import RequestContext
from .._models import CacheStats, Dep, InvalidateResult, PingResult
from .._retry import RetryPolicy
from .._stats import StatsRecorder
from ..errors import CachecoreClosedError, CachecoreConfigError, CachecoreError
from ._transport import AsyncCachecoreTransport, AsyncSharedCachecoreTransport, send_through

if TYPE_CHECKING:
    from openai import AsyncOpenAI

__all__ = ["CachecoreClient"]


class CachecoreClient:
    """One tenant's client for the Cachecore gateway.

    Args:
        gateway_url: The gateway's base URL (default: ``CACHECORE_GATEWAY_URL``).
        tenant_jwt: The tenant token, or a callable returning the current one
            for rotation (default: ``CACHECORE_TOKEN``).
        timeout: Seconds (or an ``httpx.Timeout``) for invalidation calls.
        max_retries: Retries of a failed invalidation (connection errors,
            timeouts, 429, 502/503/504), with jittered exponential backoff.
        retry_policy: The backoff and the cap on ``Retry-After`` waits
            (``cachecore.RetryPolicy``); ``max_retries`` still sets the number of retries.
        max_concurrency: Invalidations in flight at once in ``invalidate_many``.
        http2: Offer HTTP/2 (negotiated over TLS) on the connections this client
            opens; default: on when ``h2`` is installed (extra ``http2``).
        inner_transport: The transport to send through (a proxy, a mock, the
            in-process reference gateway); default: a pooled HTTP transport.
        gateway_errors: ``"raise"`` typed errors from the transport on 401/403/429,
            ``"return"`` the answer to the LLM SDK with the error attached, or
            ``"auto"``: raise, except under openai 1.x/2.x (see ``cachecore.errors``).
        collect_stats: Keep running counts of hits and misses (``.stats``).
        debug: Log each gateway answer's cache status at DEBUG.
    """

    def __init__(
        self,
        gateway_url: str | None = None,
        tenant_jwt: TokenSource | None = None,
        *,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_policy: RetryPolicy | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        inner_transport: httpx.AsyncBaseTransport | None = None,
        gateway_errors: GatewayErrors = "auto",
        collect_stats: bool = False,
        debug: bool = False,
        http2: bool | None = None,
    ) -> None:
        self._url = resolve_gateway_url(gateway_url)
        self._token = TokenProvider(tenant_jwt)
        self._retry = dataclasses.replace(
            check_retry_policy(retry_policy),
            max_retries=check_count(max_retries, name="max_retries", minimum=0),
        )
        concurrency = check_count(max_concurrency, name="max_concurrency", minimum=1)
        self._pool = AsyncWorkerPool(concurrency)
        self._stats = StatsRecorder() if collect_stats else None
        use_http2 = check_http2(http2)
        self._transport = AsyncSharedCachecoreTransport(
            gateway_url=self._url,
            tenant_jwt=self._token,
            inner_transport=inner_transport,
            http2=use_http2,
            gateway_errors=check_gateway_errors(gateway_errors),
            retry_policy=self._retry,
            stats=self._stats,
            debug=debug,
        )
        timeout_ = check_timeout(timeout)

        # Invalidations go through several small pools rather than one large one:
        # httpcore's pool bookkeeping costs grow with its size, and one pool of 32
        # connections spends 4x the CPU per request of eight pools of 4
        # (docs/performance.md, benchmark 2). A caller's transport is used as is.
        # They are made on first use in each event loop (see AsyncPerLoop).
        def make_pools() -> list[httpx.AsyncClient]:
            transports: list[httpx.AsyncBaseTransport]
            if inner_transport is None:
                limits = httpx.Limits(
                    max_connections=POOL_CONNECTIONS, max_keepalive_connections=POOL_CONNECTIONS
                )
                shards = -(-concurrency // POOL_CONNECTIONS)
                # One SSL context for all shards: each costs ~20 ms to build (it loads
                # the CA bundle), and httpcore sets ALPN on it per connection.
                ssl_context = httpx.create_ssl_context()
                transports = [
                    httpx.AsyncHTTPTransport(limits=limits, http2=use_http2, verify=ssl_context)
                    for _ in range(shards)
                ]
            else:
                transports = [_Borrowed(inner_transport)]
            return [
                httpx.AsyncClient(
                    base_url=self._url, timeout=timeout_, transport=t, follow_redirects=False
                )
                for t in transports
            ]

        self._pools = AsyncPerLoop(make_pools, _aclose_all)
        self._closed = False
        self._turn = itertools.count()

    # -- what users plug in and read ------------------------------------------------

    @property
    def transport(self) -> AsyncCachecoreTransport:
        """The httpx transport to give your LLM SDK's ``http_client``."""
        return self._transport

    @property
    def gateway_url(self) -> str:
        return str(self._url).rstrip("/")

    @property
    def token_info(self) -> TokenInfo | None:
        """Tenant id, expiry, roles and scope read from the token (not verified)."""
        return self._token.info()

    @property
    def tenant_id(self) -> str | None:
        info = self._token.info()
        return info.tenant_id if info else None

    @property
    def stats(self) -> CacheStats:
        """Running counts of gateway answers through ``transport``."""
        if self._stats is None:
            raise CachecoreError("stats are off for this client: pass collect_stats=True")
        return self._stats.snapshot()

    def openai(self, **kwargs: Any) -> AsyncOpenAI:
        """An ``openai.AsyncOpenAI`` wired to the gateway through ``transport``.

        ``base_url`` is the gateway's ``/v1``, ``api_key`` the tenant token, and
        the HTTP client openai's own default one (httpx2 under openai 3.x, httpx
        before) on ``cc.transport``. Other keyword arguments (``max_retries``,
        ``timeout``, ``default_headers``, ...) go to ``AsyncOpenAI`` as they are.
        The client is yours: close it (``close()``/``with``); ``cc`` stays open.
        """
        try:
            import openai
        except ImportError:
            raise ImportError(
                "cc.openai() needs the openai package: pip install 'cachecore-python[openai]'"
            ) from None
        if "http_client" in kwargs:
            raise CachecoreConfigError(
                "cc.openai() builds the HTTP client on cc.transport; to bring your own, "
                "build openai's client yourself with http_client=...(transport=cc.transport)"
            )
        kwargs.setdefault("base_url", f"{self.gateway_url}/v1")
        kwargs.setdefault("api_key", self._token.current())
        # Typed as httpx's transport, and openai 3.x's client is httpx2's: both work.
        transport: Any = self._transport
        http_client = openai.DefaultAsyncHttpxClient(transport=transport)
        return openai.AsyncOpenAI(http_client=http_client, **kwargs)

    async def ping(self) -> PingResult:
        """Check the gateway and the token: reachable (``/health``, with latency), scheme,
        token readable, tenant, expiry, clock skew. Never raises for what it finds:
        read ``ok`` and ``checks`` (``print(result)`` gives one line per check).
        """
        self._check_open()
        token = self._token.current()
        started = time.perf_counter()
        answer: httpx.Response | Exception
        try:
            answer = await self._next_pool().get(_wire.HEALTH_PATH.lstrip("/"))
        except _invalidation.TRANSPORT_ERRORS as exc:
            answer = exc
        return _doctor.report(self._url, token, answer, time.perf_counter() - started)

    def request_context(
        self, deps: Iterable[Dep | str] | None = None, bypass: bool = False
    ) -> RequestContext:
        """Declare deps for, or bypass the cache on, the LLM calls inside a ``with`` block.

        Yields a handle recording the ``CacheStatus`` of each response made inside.
        """
        return RequestContext(deps, bypass)

    # -- invalidation ---------------------------------------------------------------

    async def invalidate(self, dep_id: str, new_hash: str | None = None) -> InvalidateResult:
        """Evict every entry of this tenant that declared ``dep_id`` with another hash.

        ``new_hash`` defaults to a random UUID. Never raises for a gateway answer:
        read ``result.ok`` (a failure is also logged at WARNING).
        """
        dep_id = check_dep_id(dep_id)
        version = check_new_hash(new_hash) or _invalidation.new_version()
        self._check_open()
        return await self._invalidate(dep_id, version)

    async def invalidate_many(
        self, dep_ids: Sequence[str], new_hash: str | None = None
    ) -> list[InvalidateResult]:
        """Invalidate several deps concurrently (at most ``max_concurrency`` at once).

        Returns one result per requested dep, in input order. Each dep gets
        ``new_hash``, or its own random UUID when it is ``None``.
        """
        ids = check_dep_ids(dep_ids)
        fixed = check_new_hash(new_hash)
        self._check_open()
        unique = list(dict.fromkeys(ids))
        jobs = [(dep_id, fixed or _invalidation.new_version()) for dep_id in unique]
        outcomes = await self._pool.map(self._invalidate_job, jobs)
        by_id = dict(zip(unique, outcomes))
        return [by_id[dep_id] for dep_id in ids]

    async def _invalidate_job(self, job: tuple[str, str]) -> InvalidateResult:
        return await self._invalidate(*job)

    async def _invalidate(self, dep_id: str, new_hash: str) -> InvalidateResult:
        steps = _invalidation.attempts(dep_id, new_hash, self._token.current, self._retry)
        step = next(steps)
        try:
            while True:
                if isinstance(step, _invalidation.Wait):
                    await async_sleep(step.seconds)
                    step = steps.send(None)
                    continue
                answer: httpx.Response | Exception
                try:
                    answer = await self._next_pool().post(
                        step.path, json=step.body, headers=step.headers
                    )
                except _invalidation.TRANSPORT_ERRORS as exc:
                    answer = exc
                step = steps.send(answer)
        except StopIteration as done:
            result: InvalidateResult = done.value
            return result

    def _next_pool(self) -> httpx.AsyncClient:
        self._check_open()
        pools = self._pools.get()
        return pools[next(self._turn) % len(pools)]

    def _check_open(self) -> None:
        if self._closed:
            raise CachecoreClosedError(
                f"{self!r} is closed: make a new client, or close this one only "
                "after its last invalidation"
            )

    # -- lifecycle ------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the connection pools this client opened (not an ``inner_transport`` it was given)."""
        self._closed = True
        await self._pools.aclose()
        await self._transport.shutdown()

    @property
    def is_closed(self) -> bool:
        """True once the client has been closed."""
        return self._closed

    async def __aenter__(self) -> CachecoreClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(gateway_url={self.gateway_url!r}, tenant_id={self.tenant_id!r})"
        )


class _Borrowed(httpx.AsyncBaseTransport):
    """A caller's transport used for invalidations, left open for its owner to close.

    Invalidations are httpx requests; an httpx2 inner transport gets them bridged.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self._lib = _httplib.library_of_transport(inner)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response: httpx.Response = await send_through(self._inner, self._lib, request, httpx)
        return response

    async def aclose(self) -> None:
        pass


async def _aclose_all(clients: list[httpx.AsyncClient]) -> None:
    for client in clients:
        await client.aclose()
