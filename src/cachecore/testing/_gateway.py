"""The reference gateway core: one request in, one response out (PROTOCOL.md section 6).

Routing, authentication, rate limiting, the L1/L2 cache and invalidation all
happen here, in plain Python with no framework, so the in-process transports
and the ASGI server give byte-for-byte the same answers.

The request flow (``_route``) is a generator that does no I/O of its own: it
yields a ``Compute`` step for CPU work that may be long (parsing a large body,
hashing it, embedding a long prompt) and a ``CallUpstream`` step for the miss.
``handle`` (sync faces) runs the steps inline; ``handle_async`` (the ASGI server,
the async transport) awaits the upstream on the event loop and sends heavy
``Compute`` steps to a few worker threads. So a cache hit or ``/health`` answers
in milliseconds while other tenants' slow misses and long prompts are under way.

Thread-safe: cache state sits behind one lock, taken only for short
bookkeeping; embedding and the upstream call happen outside it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
import httpx

from cachecore._concurrency import running_loop
from cachecore._wire import (
    AGE_HEADER,
    AUTHORIZATION_HEADER,
    CACHE_HEADER,
    CHAT_COMPLETIONS_PATH,
    DEPS_HEADER,
    DEPS_HEADER_LC,
    HEALTH_PATH,
    INVALIDATE_PATH,
    NAMESPACE_HINT_HEADER,
    REQUEST_ID_HEADER,
    RETRY_AFTER_HEADER,
    SIMILARITY_HEADER,
    TOKEN_HEADER,
    TOKEN_HEADER_LC,
    bad_identifier_reason,
    decode_deps,
)
from cachecore.testing import _openai_format as fmt
from cachecore.testing._config import GatewayConfig
from cachecore.testing._embed import NgramEmbedder
from cachecore.testing._faults import Fault, FaultQueue
from cachecore.testing._http import JSON_TYPE, SSE_TYPE, GatewayRequest, GatewayResponse, error
from cachecore.testing._jwt import Claims, TokenRejected, mint_token, verify_token
from cachecore.testing._ratelimit import RateLimiter
from cachecore.testing._store import Entry, Hit, TenantCache, deps_fingerprint, entry_size
from cachecore.testing._upstream import OfflineModel, Upstream, UpstreamError

log = logging.getLogger("cachecore.testing")

#: path -> (method, scope a token's ``scope`` claim must include)
ROUTES: dict[str, tuple[str, str | None]] = {
    HEALTH_PATH: ("GET", None),
    CHAT_COMPLETIONS_PATH: ("POST", "chat"),
    INVALIDATE_PATH: ("POST", "invalidate"),
}
#: Scopes that grant every endpoint.
WILDCARD_SCOPES = frozenset({"*", "admin"})

#: Bodies larger than this are parsed and hashed off the event loop (async faces).
HEAVY_BODY_BYTES = 64 * 1024
#: Prompts longer than this are embedded off the event loop (async faces).
HEAVY_PROMPT_CHARS = 4096

#: Verified tokens remembered (LRU), so a hit does not recompute the HMAC.
VERIFIED_TOKENS = 1024
#: How often (seconds) expired entries of every tenant are swept when ``ttl`` is set.
SWEEP_INTERVAL = 1.0


def _setting(field: str, flag: str) -> str:
    """Where a refused request's limit is set: in Python, and on ``cachecore gateway``."""
    return f" (GatewayConfig.{field}; cachecore gateway {flag})"


@dataclass(frozen=True, slots=True)
class Compute:
    """CPU work of the flow; the async faces run it in a worker thread when ``heavy``."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    heavy: bool


@dataclass(frozen=True, slots=True)
class CallUpstream:
    """The upstream call of a miss or a bypass (answers a completion or an error response)."""

    chat: dict[str, Any]
    heavy: bool


_Flow = Generator["Compute | CallUpstream", Any, GatewayResponse]


@dataclass(frozen=True, slots=True)
class GatewayStats:
    """Counters since the gateway started (or since ``clear()``), and usage per tenant.

    ``entries``, ``bytes``, ``groups`` (L2 scopes: namespace, model, deps) and
    ``dep_versions`` are per tenant; ``total_bytes`` is their sum of ``bytes``, held
    under ``GatewayConfig.max_total_bytes``.
    """

    hits_l1: int
    hits_l2: int
    misses: int
    bypasses: int
    upstream_calls: int
    evicted_lru: int
    evicted_invalidate: int
    invalidations: int
    rate_limited: int
    entries: dict[str, int]
    evicted_ttl: int = 0
    evicted_bytes: int = 0
    stale_not_stored: int = 0
    too_large_not_stored: int = 0
    bytes: dict[str, int] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)
    dep_versions: dict[str, int] = field(default_factory=dict)
    total_bytes: int = 0


_PER_TENANT = ("entries", "bytes", "groups", "dep_versions", "total_bytes")


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the gateway saw it, for assertions in tests."""

    method: str
    path: str
    headers: dict[str, str]
    status: int
    cache: str | None = None
    tenant_id: str | None = None


def _servable(completion: object) -> dict[str, Any] | GatewayResponse:
    """The upstream's completion if the gateway can cache and serve it, else a 502."""
    problem = fmt.completion_problem(completion)
    if problem is not None:
        return error(
            502, "upstream_error", f"the upstream answered a bad chat.completion: {problem}"
        )
    assert isinstance(completion, dict)
    return completion


def _shape(chat: dict[str, Any]) -> str:
    """A digest of all but the prompt's text: with namespace and deps, the L2 scope."""
    return hashlib.sha256(fmt.l2_scope(chat).encode("utf-8")).hexdigest()


def namespace_of(claims: Claims) -> str:
    """The tenant namespace: tenant and roles as canonical JSON, hashed.

    JSON keeps the encoding unambiguous: roles ``["admin,analyst"]`` and
    ``["admin", "analyst"]`` are different namespaces, whatever the characters.
    The namespace hint is its first 12 hex digits.
    """
    text = json.dumps([claims.tenant_id, list(claims.roles)], separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class _Counters:
    values: dict[str, int] = field(default_factory=dict)

    def bump(self, name: str, by: int = 1) -> None:
        self.values[name] = self.values.get(name, 0) + by


@dataclass(frozen=True)
class _Limiters:
    cpu: anyio.CapacityLimiter
    upstream: anyio.CapacityLimiter


class _PerLoopLimiters:
    """One pair of limiters per running event loop (anyio's belong to the loop that uses
    them), forgotten with the loop: nothing to close, so no watcher task is needed."""

    def __init__(self, cpu: int, upstream: int) -> None:
        self._sizes = (cpu, upstream)
        self._items: weakref.WeakKeyDictionary[Any, _Limiters] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self) -> _Limiters:
        loop = running_loop()
        with self._lock:
            limiters = self._items.get(loop)
            if limiters is None:
                cpu, upstream = self._sizes
                limiters = _Limiters(anyio.CapacityLimiter(cpu), anyio.CapacityLimiter(upstream))
                self._items[loop] = limiters
            return limiters


class ReferenceGateway:
    """An in-repo Cachecore gateway for tests, demos and offline use.

    ``transport()`` / ``async_transport()`` plug it into httpx without sockets;
    ``asgi_app()`` (or ``serve(gateway)``) runs it on loopback. A single-process
    gateway for tests and local use, not for production.
    """

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.upstream: Upstream = config.upstream or OfflineModel()
        self.embedder = config.embedder or NgramEmbedder()
        self.blocked_tenants: set[str] = set(config.blocked_tenants)
        self.faults = FaultQueue()
        self.requests: deque[RecordedRequest] = deque(maxlen=1000)
        self._limiter = RateLimiter(config.rate_limit, config.burst, config.clock)
        self._lock = threading.Lock()
        self._tenants: dict[str, TenantCache] = {}
        self._verified_tokens: OrderedDict[str, Claims] = OrderedDict()
        self._total_bytes = 0
        self._last_sweep = config.clock()
        self._counters = _Counters()
        self._limiters = _PerLoopLimiters(config.cpu_workers, config.upstream_concurrency)

    # -- conveniences for tests -------------------------------------------------

    def mint_token(self, tenant_id: str, **kwargs: Any) -> str:
        """``mint_token(self.config.secret, tenant_id, **kwargs)``."""
        return mint_token(self.config.secret, tenant_id, **kwargs)

    def add_fault(self, fault: Fault, *, path: str | None = None, times: int = 1) -> None:
        """Answer the next ``times`` requests on ``path`` (any path if ``None``) with ``fault``."""
        self.faults.add(fault, path=path, times=times)

    def stats(self) -> GatewayStats:
        with self._lock:
            self._sweep(self.config.clock(), force=True)
            c = dict(self._counters.values)
            tenants = self._tenants.items()
            usage: dict[str, Any] = {
                "entries": {t: len(cache.entries) for t, cache in tenants},
                "bytes": {t: cache.bytes for t, cache in tenants},
                "groups": {t: cache.group_count for t, cache in tenants},
                "dep_versions": {t: len(cache.dep_versions) for t, cache in tenants},
                "total_bytes": self._total_bytes,
            }
        counts: dict[str, Any] = {n: c.get(n, 0) for n in GatewayStats.__dataclass_fields__}
        counts.update(usage)
        return GatewayStats(**counts)

    def entry_count(self, tenant_id: str) -> int:
        with self._lock:
            cache = self._tenants.get(tenant_id)
            return len(cache.entries) if cache else 0

    def dep_version(self, tenant_id: str, dep_id: str) -> str | None:
        """The hash last recorded by ``/v1/invalidate`` for ``dep_id`` in ``tenant_id``."""
        with self._lock:
            cache = self._tenants.get(tenant_id)
            version = cache.dep_versions.get(dep_id) if cache else None
            return None if version is None else version[0]

    def clear(self) -> None:
        """Forget every entry, counter, recorded request and fault."""
        with self._lock:
            self._tenants.clear()
            self._total_bytes = 0
            self._counters = _Counters()
        self.requests.clear()
        self.faults.clear()

    def transport(self) -> httpx.BaseTransport:
        from cachecore.testing._sync._transport import GatewayTransport

        return GatewayTransport(self)

    def async_transport(self) -> httpx.AsyncBaseTransport:
        from cachecore.testing._async._transport import AsyncGatewayTransport

        return AsyncGatewayTransport(self)

    def asgi_app(self) -> Callable[..., Any]:
        from cachecore.testing._asgi import GatewayASGIApp

        return GatewayASGIApp(self)

    # -- the drivers ------------------------------------------------------------

    def handle(self, request: GatewayRequest) -> GatewayResponse:
        """Answer one request, every step inline. Never raises; never sleeps (the face
        waits ``delay``)."""
        record: dict[str, Any] = {}
        try:
            flow = self._flow(request, record)
            value: Any = None
            while True:
                try:
                    step = flow.send(value)
                except StopIteration as done:
                    response: GatewayResponse = done.value
                    break
                if isinstance(step, Compute):
                    value = step.fn(*step.args)
                else:
                    value = self._call_upstream(step.chat)
        except Exception:  # a bug, never bad input: keep serving
            response = self._internal_error(request)
        return self._done(request, response, record)

    async def handle_async(self, request: GatewayRequest) -> GatewayResponse:
        """``handle`` for event loops: the upstream awaited, heavy work in worker threads."""
        record: dict[str, Any] = {}
        try:
            flow = self._flow(request, record)
            value: Any = None
            while True:
                try:
                    step = flow.send(value)
                except StopIteration as done:
                    response: GatewayResponse = done.value
                    break
                if isinstance(step, Compute):
                    value = await self._compute_async(step)
                else:
                    value = await self._call_upstream_async(step)
        except Exception:  # a bug, never bad input: keep serving
            response = self._internal_error(request)
        return self._done(request, response, record)

    async def _compute_async(self, step: Compute) -> Any:
        if not step.heavy:
            return step.fn(*step.args)
        limiter = self._limiters.get().cpu
        return await anyio.to_thread.run_sync(step.fn, *step.args, limiter=limiter)

    async def _call_upstream_async(self, step: CallUpstream) -> dict[str, Any] | GatewayResponse:
        acomplete = getattr(self.upstream, "acomplete", None)
        if acomplete is None:
            if self.upstream.blocking:
                limiter = self._limiters.get().upstream
            elif step.heavy:
                limiter = self._limiters.get().cpu
            else:
                return self._call_upstream(step.chat)
            return await anyio.to_thread.run_sync(self._call_upstream, step.chat, limiter=limiter)
        self._count("upstream_calls")
        try:
            completion: object = await acomplete(step.chat)
        except UpstreamError as exc:
            return error(502, "upstream_error", str(exc))
        return _servable(completion)

    def _call_upstream(self, chat: dict[str, Any]) -> dict[str, Any] | GatewayResponse:
        self._count("upstream_calls")
        try:
            completion: object = self.upstream.complete(chat)
        except UpstreamError as exc:
            return error(502, "upstream_error", str(exc))
        return _servable(completion)

    @staticmethod
    def _internal_error(request: GatewayRequest) -> GatewayResponse:
        log.exception("reference gateway failed on %s %s", request.method, request.path[:200])
        return error(500, "internal_error", "the reference gateway failed; see its log")

    def _done(
        self, request: GatewayRequest, response: GatewayResponse, record: dict[str, Any]
    ) -> GatewayResponse:
        """Add a delay-only fault's wait, and record the request (both drivers, every answer)."""
        fault: Fault | None = record.get("fault")
        if fault is not None:
            response.delay += fault.delay
        response.tenant = record.get("tenant")
        self.requests.append(
            RecordedRequest(
                request.method,
                request.path,
                dict(request.headers),
                response.status,
                response.header(CACHE_HEADER),
                record.get("tenant"),
            )
        )
        return response

    def _count(self, name: str, by: int = 1) -> None:
        with self._lock:
            self._counters.bump(name, by)

    @staticmethod
    def _fault_response(fault: Fault) -> GatewayResponse:
        assert fault.status is not None
        headers = (
            [] if fault.retry_after is None else [(RETRY_AFTER_HEADER, str(fault.retry_after))]
        )
        response = error(fault.status, "injected_fault", fault.message, headers)
        response.delay = fault.delay
        return response

    # -- the flow ---------------------------------------------------------------

    def _flow(self, request: GatewayRequest, record: dict[str, Any]) -> _Flow:
        """An injected fault's answer, or the routed request (a delay-only fault waits)."""
        fault = self.faults.take(request.method, request.path)
        if fault is not None and fault.status is not None:
            return self._fault_response(fault)
        record["fault"] = fault
        return (yield from self._route(request, record))

    def _route(self, request: GatewayRequest, record: dict[str, Any]) -> _Flow:
        route = ROUTES.get(request.path)
        if route is None:
            return error(404, "unknown_path", f"no such endpoint: {request.path[:200]}")
        method, scope = route
        if request.method != method:
            return error(
                405,
                "method_not_allowed",
                f"{request.path} only accepts {method}",
                [("allow", method)],
            )
        if request.path == HEALTH_PATH:
            return GatewayResponse.json(200, {"status": "ok"})
        if len(request.body) > self.config.max_body_bytes:
            return error(
                413,
                "body_too_large",
                f"request bodies are capped at {self.config.max_body_bytes} bytes"
                " (GatewayConfig.max_body_bytes)",
            )
        bypass = request.path == CHAT_COMPLETIONS_PATH and TOKEN_HEADER_LC not in request.headers
        claims = self._authenticate(request, scope, bypass)
        if isinstance(claims, GatewayResponse):
            return claims
        record["tenant"] = claims.tenant_id
        wait = self._limiter.acquire(claims.tenant_id)
        if wait is not None:
            self._count("rate_limited")
            return error(
                429,
                "rate_limited",
                f"tenant rate limit of {self.config.rate_limit:g} requests/s exceeded; retry in {wait} s",
                [(RETRY_AFTER_HEADER, str(wait))],
            )
        heavy = len(request.body) > HEAVY_BODY_BYTES
        body = yield Compute(self._json_body, (request,), heavy)
        if isinstance(body, GatewayResponse):
            return body
        if request.path == INVALIDATE_PATH:
            return self._invalidate(claims, body)
        try:
            chat = fmt.check_chat_request(body)
        except fmt.BadRequest as exc:
            return error(400, exc.code, exc.message)
        if len(chat["model"]) > self.config.max_model_chars:
            return error(
                400,
                "model_too_long",
                f"'model' has {len(chat['model'])} characters; the reference gateway accepts"
                f" at most {self.config.max_model_chars}"
                + _setting("max_model_chars", "--max-model-chars N"),
            )
        if bypass:
            completion = yield CallUpstream(chat, heavy)
            if isinstance(completion, GatewayResponse):
                return completion
            self._count("bypasses")
            response = self._answer(chat, completion, [(CACHE_HEADER, "BYPASS")])
            response.delay = self.upstream.latency
            return response
        return (yield from self._cached_chat(request, claims, chat, heavy))

    def _authenticate(
        self, request: GatewayRequest, scope: str | None, bypass: bool
    ) -> Claims | GatewayResponse:
        token = request.headers.get(TOKEN_HEADER_LC)
        if token is None or (request.path == INVALIDATE_PATH and not token.strip()):
            auth = request.headers.get(AUTHORIZATION_HEADER.lower(), "")
            scheme, _, value = auth.strip().partition(" ")
            token = value.strip() if scheme.lower() == "bearer" and value.strip() else None
        if not token:
            where = (
                "Authorization: Bearer" if bypass else f"{TOKEN_HEADER} or Authorization: Bearer"
            )
            return error(401, "missing_token", f"no tenant token: send it in {where}")
        try:
            claims = self._verified(token)
        except TokenRejected as exc:
            return error(401, exc.code, exc.message)
        if claims.tenant_id in self.blocked_tenants:
            return error(403, "tenant_blocked", "this tenant is blocked on this gateway")
        if scope and claims.scope is not None and not (claims.scope & ({scope} | WILDCARD_SCOPES)):
            return error(403, "insufficient_scope", f"the token's scope does not include {scope!r}")
        return claims

    def _verified(self, token: str) -> Claims:
        """``verify_token``, remembered for the token's life: a hit skips the HMAC.

        Only verified tokens are remembered (at most ``VERIFIED_TOKENS``), and a
        remembered one is dropped once it expires, so it is re-verified, and refused.
        """
        with self._lock:
            claims = self._verified_tokens.get(token)
            if claims is not None:
                if time.time() <= claims.expires_at + self.config.jwt_leeway:
                    self._verified_tokens.move_to_end(token)
                    return claims
                del self._verified_tokens[token]
        claims = verify_token(
            token,
            self.config.secret,
            leeway=self.config.jwt_leeway,
            max_lifetime=self.config.max_token_lifetime,
        )
        with self._lock:
            self._verified_tokens[token] = claims
            while len(self._verified_tokens) > VERIFIED_TOKENS:
                self._verified_tokens.popitem(last=False)
        return claims

    @staticmethod
    def _json_body(request: GatewayRequest) -> dict[str, Any] | GatewayResponse:
        ctype = request.headers.get("content-type")
        if ctype is not None and ctype.split(";")[0].strip().lower() != JSON_TYPE:
            return error(415, "unsupported_media_type", f"send Content-Type: {JSON_TYPE}")
        try:
            body = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            return error(400, "invalid_json", f"the request body is not valid JSON: {exc}")
        except RecursionError:  # nested deeper than the parser's stack
            return error(400, "invalid_json", "the request body is JSON nested too deeply")
        if not isinstance(body, dict):
            return error(400, "invalid_body", "the request body must be a JSON object")
        return body

    def _too_long(self, what: str, value: str) -> GatewayResponse | None:
        return self._dep_too_long(what, value) if len(value) > self.config.max_dep_chars else None

    def _dep_too_long(self, what: str, value: str) -> GatewayResponse:
        return error(
            400,
            "dep_too_long",
            f"{what} has {len(value)} characters; the reference gateway accepts at most"
            f" {self.config.max_dep_chars}" + _setting("max_dep_chars", "--max-dep-chars N"),
        )

    def _invalidate(self, claims: Claims, body: dict[str, Any]) -> GatewayResponse:
        for name in ("dep_id", "new_hash"):
            value = body.get(name)
            reason = bad_identifier_reason(value)
            if reason is not None:
                return error(400, "invalid_field", f"'{name}' {reason}")
            too_long = self._too_long(f"'{name}'", str(value))
            if too_long is not None:
                return too_long
        dep_id, new_hash = str(body["dep_id"]), str(body["new_hash"])
        with self._lock:
            cache = self._tenant(claims.tenant_id)
            before = cache.bytes
            evicted = cache.invalidate(dep_id, new_hash)
            self._total_bytes += cache.bytes - before
            self._counters.bump("invalidations")
            self._counters.bump("evicted_invalidate", evicted)
            self._counters.bump("evicted_bytes", self._enforce_total_bytes())
        return GatewayResponse.json(
            200, {"dep_id": dep_id, "new_hash": new_hash, "evicted": evicted}
        )

    def _tenant(self, tenant_id: str) -> TenantCache:
        cache = self._tenants.get(tenant_id)
        if cache is None:
            config = self.config
            cache = TenantCache(
                config.max_entries, config.max_tenant_bytes, config.use_numpy, config.ttl
            )
            self._tenants[tenant_id] = cache
        return cache

    def _deps(self, request: GatewayRequest) -> dict[str, str] | GatewayResponse:
        try:
            pairs = decode_deps(request.headers.get(DEPS_HEADER_LC, ""))
        except ValueError as exc:
            return error(400, "invalid_deps_header", str(exc))
        deps: dict[str, str] = {}
        for dep_id, expected in pairs:
            if deps.setdefault(dep_id, expected) != expected:
                return error(
                    400,
                    "invalid_deps_header",
                    f"{DEPS_HEADER} declares dep {dep_id[:40]!r} twice with different hashes",
                )
        if len(deps) > self.config.max_deps:
            return error(
                400,
                "too_many_deps",
                f"{DEPS_HEADER} declares {len(deps)} deps; the reference gateway accepts at"
                f" most {self.config.max_deps} per request" + _setting("max_deps", "--max-deps N"),
            )
        limit = self.config.max_dep_chars
        for dep_id, expected in deps.items():
            for what, value in (("dep id", dep_id), ("the expected hash of dep", expected)):
                if len(value) > limit:  # the dep is named (shortened) only then
                    shown = repr(dep_id[:40]) + ("..." if len(dep_id) > 40 else "")
                    return self._dep_too_long(f"{what} {shown}", value)
        return deps

    def _cached_chat(
        self, request: GatewayRequest, claims: Claims, chat: dict[str, Any], heavy: bool
    ) -> _Flow:
        deps = self._deps(request)
        if isinstance(deps, GatewayResponse):
            return deps
        namespace = namespace_of(claims)
        threshold = self.config.l2_threshold
        text = fmt.prompt_text(chat) if threshold is not None else ""
        if len(text) > self.config.max_prompt_chars:
            return error(
                413,
                "prompt_too_long",
                f"the prompt text (each message's role and text) has {len(text)} characters;"
                f" the reference gateway embeds at most {self.config.max_prompt_chars} for L2"
                " (GatewayConfig.max_prompt_chars, or l2_threshold=None to cache without L2;"
                " cachecore gateway --max-prompt-chars N, or --l2-threshold off)",
            )
        fingerprint = deps_fingerprint(deps)
        key = yield Compute(fmt.cache_key, (namespace, chat, fingerprint), heavy)
        tenant_id = claims.tenant_id
        with self._lock:
            cache = self._tenant(tenant_id)
            self._expire(cache, self.config.clock())
            since = cache.epoch
            hit = cache.exact(key, self.config.clock())
        if hit is not None:
            return self._hit_response(chat, hit, namespace)
        shape = yield Compute(_shape, (chat,), heavy)
        scope = (namespace, fingerprint, shape)
        vector: Sequence[float] = ()
        why = [f"deps:{len(deps)}"]
        if threshold is not None:
            vector = yield Compute(self._embed, (text,), len(text) > HEAVY_PROMPT_CHARS)
            with self._lock:
                found = cache.similar(vector, scope, threshold, self.config.clock())
            if isinstance(found, Hit):
                return self._hit_response(chat, found, namespace)
            best = "none" if found is None else f"{found:.3f}"
            why.append(f"l2_best:{best}<{threshold:g}")
        completion = yield CallUpstream(chat, heavy)
        if isinstance(completion, GatewayResponse):
            return completion
        entry = Entry(key, completion, deps, self.config.clock(), group=scope)
        entry.size = entry_size(entry, len(vector) * 8)
        outcome = self._store(tenant_id, cache, entry, vector, since)
        if outcome:
            why.append(outcome)
        headers = [(CACHE_HEADER, "MISS"), (NAMESPACE_HINT_HEADER, namespace[:12])]
        response = self._answer(chat, completion, headers)
        response.delay = self.upstream.latency
        response.why = ",".join(why)
        return response

    def _embed(self, text: str) -> list[float]:
        return list(self.embedder(text))

    def _store(
        self,
        tenant_id: str,
        cache: TenantCache,
        entry: Entry,
        vector: Sequence[float],
        since: int,
    ) -> str:
        """Store a miss's answer; say why it was not stored (``""`` when it was)."""
        with self._lock:
            self._counters.bump("misses")
            if self._tenants.get(tenant_id) is not cache:
                return "not_stored:cleared"  # clear() ran while the miss was in flight
            self._sweep(entry.written_at)
            self._expire(cache, entry.written_at)
            before = cache.bytes
            result = cache.store(entry, vector, since)
            self._total_bytes += cache.bytes - before
            self._counters.bump("evicted_lru", result.evicted)
            self._counters.bump("stale_not_stored", int(result.stale))
            self._counters.bump("too_large_not_stored", int(result.too_large))
            self._counters.bump("evicted_bytes", self._enforce_total_bytes())
        if result.stale:
            return "not_stored:dep_invalidated_in_flight"
        return "not_stored:too_large" if result.too_large else ""

    def _enforce_total_bytes(self) -> int:
        """Evict from the tenant holding the most bytes until under the global cap (locked)."""
        cap = self.config.max_total_bytes
        evicted = 0
        while cap is not None and self._total_bytes > cap:
            biggest = max(self._tenants.values(), key=lambda cache: cache.bytes, default=None)
            if biggest is None or biggest.bytes == 0:
                break
            self._total_bytes -= biggest.shed()
            evicted += 1
        return evicted

    def _sweep(self, now: float, *, force: bool = False) -> None:
        """Drop every tenant's expired entries, at most once per ``SWEEP_INTERVAL`` (locked)."""
        if self.config.ttl is None or (not force and now - self._last_sweep < SWEEP_INTERVAL):
            return
        self._last_sweep = now
        for cache in self._tenants.values():
            self._expire(cache, now)

    def _expire(self, cache: TenantCache, now: float) -> None:
        """Drop one tenant's expired entries (locked; cheap when none are)."""
        before = cache.bytes
        self._counters.bump("evicted_ttl", cache.expire(now))
        self._total_bytes += cache.bytes - before

    def _hit_response(self, chat: dict[str, Any], hit: Hit, namespace: str) -> GatewayResponse:
        age = max(0, int(self.config.clock() - hit.entry.written_at))
        headers = [(AGE_HEADER, str(age)), (NAMESPACE_HINT_HEADER, namespace[:12])]
        if hit.similarity is None:
            headers.insert(0, (CACHE_HEADER, "HIT_L1"))
        else:
            headers[:0] = [(CACHE_HEADER, "HIT_L2"), (SIMILARITY_HEADER, f"{hit.similarity:.4f}")]
        self._count("hits_l1" if hit.similarity is None else "hits_l2")
        return self._answer(chat, hit.entry.completion, headers)

    @staticmethod
    def _answer(
        chat: dict[str, Any], completion: dict[str, Any], headers: list[tuple[str, str]]
    ) -> GatewayResponse:
        headers.append((REQUEST_ID_HEADER, f"req_{uuid.uuid4().hex[:16]}"))
        if not fmt.wants_stream(chat):
            return GatewayResponse.json(200, completion, headers)
        # Built now, not lazily: a failure is this request's 500, not a broken stream.
        events = list(fmt.sse_events(completion, include_usage=fmt.include_usage(chat)))
        sse_headers = [("content-type", SSE_TYPE), ("cache-control", "no-cache"), *headers]
        return GatewayResponse(200, sse_headers, chunks=events)
