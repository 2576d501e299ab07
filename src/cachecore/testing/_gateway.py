"""The reference gateway core: one request in, one response out (PROTOCOL.md section 6).

Routing, authentication, rate limiting, the L1/L2 cache and invalidation all
happen here, in plain Python with no framework, so the in-process transports
and the ASGI server give byte-for-byte the same answers. Thread-safe: cache
state sits behind one lock, and the upstream is called outside it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from cachecore._wire import (
    AGE_HEADER,
    AUTHORIZATION_HEADER,
    CACHE_HEADER,
    CHAT_COMPLETIONS_PATH,
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
from cachecore.testing._store import Entry, Hit, TenantCache
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

_Handler = Callable[[GatewayRequest, Claims | None, dict[str, Any]], GatewayResponse]


@dataclass(frozen=True, slots=True)
class GatewayStats:
    """Counters since the gateway started (or since ``clear()``), and entries per tenant."""

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


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the gateway saw it, for assertions in tests."""

    method: str
    path: str
    headers: dict[str, str]
    status: int
    cache: str | None = None
    tenant_id: str | None = None


def namespace_of(claims: Claims) -> str:
    """The tenant namespace: tenant and roles, hashed (the hint is its first 12 hex)."""
    text = claims.tenant_id + "\x00" + ",".join(claims.roles)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class _Counters:
    values: dict[str, int] = field(default_factory=dict)

    def bump(self, name: str, by: int = 1) -> None:
        self.values[name] = self.values.get(name, 0) + by


class ReferenceGateway:
    """An in-repo Cachecore gateway for tests, demos and offline use.

    ``transport()`` / ``async_transport()`` plug it into httpx without sockets;
    ``asgi_app()`` (or ``serve(gateway)``) runs it on loopback.
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
        self._counters = _Counters()

    # -- conveniences for tests -------------------------------------------------

    def mint_token(self, tenant_id: str, **kwargs: Any) -> str:
        """``mint_token(self.config.secret, tenant_id, **kwargs)``."""
        return mint_token(self.config.secret, tenant_id, **kwargs)

    def add_fault(self, fault: Fault, *, path: str | None = None, times: int = 1) -> None:
        """Answer the next ``times`` requests on ``path`` (any path if ``None``) with ``fault``."""
        self.faults.add(fault, path=path, times=times)

    def stats(self) -> GatewayStats:
        with self._lock:
            c = dict(self._counters.values)
            entries = {t: len(cache.entries) for t, cache in self._tenants.items()}
        names = GatewayStats.__dataclass_fields__
        return GatewayStats(**{n: c.get(n, 0) for n in names if n != "entries"}, entries=entries)

    def entry_count(self, tenant_id: str) -> int:
        with self._lock:
            cache = self._tenants.get(tenant_id)
            return len(cache.entries) if cache else 0

    def dep_version(self, tenant_id: str, dep_id: str) -> str | None:
        """The hash last recorded by ``/v1/invalidate`` for ``dep_id`` in ``tenant_id``."""
        with self._lock:
            cache = self._tenants.get(tenant_id)
            return cache.dep_versions.get(dep_id) if cache else None

    def clear(self) -> None:
        """Forget every entry, counter, recorded request and fault."""
        with self._lock:
            self._tenants.clear()
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

    # -- the core ---------------------------------------------------------------

    def handle(self, request: GatewayRequest) -> GatewayResponse:
        """Answer one request. Never raises; never sleeps (the face waits ``delay``)."""
        record: dict[str, Any] = {}
        fault = self.faults.take(request.method, request.path)
        if fault is not None and fault.status is not None:
            response = self._fault_response(fault)
        else:
            try:
                response = self._route(request, record)
            except Exception:  # a bug, never bad input: keep serving
                log.exception("reference gateway failed on %s %s", request.method, request.path)
                response = error(500, "internal_error", "the reference gateway failed; see its log")
            if fault is not None:
                response.delay += fault.delay
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

    @staticmethod
    def _fault_response(fault: Fault) -> GatewayResponse:
        assert fault.status is not None
        headers = (
            [] if fault.retry_after is None else [(RETRY_AFTER_HEADER, str(fault.retry_after))]
        )
        response = error(fault.status, "injected_fault", fault.message, headers)
        response.delay = fault.delay
        return response

    def _route(self, request: GatewayRequest, record: dict[str, Any]) -> GatewayResponse:
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
                f"request bodies are capped at {self.config.max_body_bytes} bytes",
            )
        bypass = request.path == CHAT_COMPLETIONS_PATH and TOKEN_HEADER_LC not in request.headers
        claims = self._authenticate(request, scope, bypass)
        if isinstance(claims, GatewayResponse):
            return claims
        record["tenant"] = claims.tenant_id
        wait = self._limiter.acquire(claims.tenant_id)
        if wait is not None:
            with self._lock:
                self._counters.bump("rate_limited")
            return error(
                429,
                "rate_limited",
                f"tenant rate limit of {self.config.rate_limit:g} requests/s exceeded; retry in {wait} s",
                [(RETRY_AFTER_HEADER, str(wait))],
            )
        body = self._json_body(request)
        if isinstance(body, GatewayResponse):
            return body
        if request.path == INVALIDATE_PATH:
            return self._invalidate(claims, body)
        try:
            chat = fmt.check_chat_request(body)
        except fmt.BadRequest as exc:
            return error(400, exc.code, exc.message)
        if bypass:
            return self._bypass(chat)
        return self._cached_chat(request, claims, chat)

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
            claims = verify_token(
                token,
                self.config.secret,
                leeway=self.config.jwt_leeway,
                max_lifetime=self.config.max_token_lifetime,
            )
        except TokenRejected as exc:
            return error(401, exc.code, exc.message)
        if claims.tenant_id in self.blocked_tenants:
            return error(403, "tenant_blocked", "this tenant is blocked on this gateway")
        if scope and claims.scope is not None and not (claims.scope & ({scope} | WILDCARD_SCOPES)):
            return error(403, "insufficient_scope", f"the token's scope does not include {scope!r}")
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

    def _invalidate(self, claims: Claims, body: dict[str, Any]) -> GatewayResponse:
        for name in ("dep_id", "new_hash"):
            reason = bad_identifier_reason(body.get(name))
            if reason is not None:
                return error(400, "invalid_field", f"'{name}' {reason}")
        dep_id, new_hash = str(body["dep_id"]), str(body["new_hash"])
        with self._lock:
            evicted = self._tenant(claims.tenant_id).invalidate(dep_id, new_hash)
            self._counters.bump("invalidations")
            self._counters.bump("evicted_invalidate", evicted)
        return GatewayResponse.json(
            200, {"dep_id": dep_id, "new_hash": new_hash, "evicted": evicted}
        )

    def _tenant(self, tenant_id: str) -> TenantCache:
        cache = self._tenants.get(tenant_id)
        if cache is None:
            cache = TenantCache(self.config.max_entries, self.config.use_numpy)
            self._tenants[tenant_id] = cache
        return cache

    def _call_upstream(self, chat: dict[str, Any]) -> dict[str, Any] | GatewayResponse:
        with self._lock:
            self._counters.bump("upstream_calls")
        try:
            return self.upstream.complete(chat)
        except UpstreamError as exc:
            return error(502, "upstream_error", str(exc))

    def _bypass(self, chat: dict[str, Any]) -> GatewayResponse:
        completion = self._call_upstream(chat)
        if isinstance(completion, GatewayResponse):
            return completion
        with self._lock:
            self._counters.bump("bypasses")
        response = self._answer(chat, completion, [(CACHE_HEADER, "BYPASS")])
        response.delay = self.upstream.latency
        return response

    def _cached_chat(
        self, request: GatewayRequest, claims: Claims, chat: dict[str, Any]
    ) -> GatewayResponse:
        try:
            deps = dict(decode_deps(request.headers.get(DEPS_HEADER_LC, "")))
        except ValueError as exc:
            return error(400, "invalid_deps_header", str(exc))
        namespace = namespace_of(claims)
        key = fmt.cache_key(namespace, chat)
        hit = self._lookup(claims.tenant_id, key, namespace, chat, deps)
        if isinstance(hit, Hit):
            return self._hit_response(chat, hit, namespace)
        vector = hit
        completion = self._call_upstream(chat)
        if isinstance(completion, GatewayResponse):
            return completion
        entry = Entry(key, completion, deps, self.config.clock())
        with self._lock:
            self._counters.bump("misses")
            evicted = self._tenant(claims.tenant_id).store(entry, vector, namespace, chat["model"])
            self._counters.bump("evicted_lru", evicted)
        headers = [(CACHE_HEADER, "MISS"), (NAMESPACE_HINT_HEADER, namespace[:12])]
        response = self._answer(chat, completion, headers)
        response.delay = self.upstream.latency
        return response

    def _lookup(
        self, tenant_id: str, key: str, namespace: str, chat: dict[str, Any], deps: dict[str, str]
    ) -> Hit | list[float]:
        """An L1 or L2 hit, or the prompt's vector (to store the answer under)."""
        with self._lock:
            hit = self._tenant(tenant_id).exact(key, deps)
        if hit is not None:
            return hit
        vector = list(self.embedder(fmt.prompt_text(chat)))  # outside the lock: the slow part
        threshold = self.config.l2_threshold
        if threshold is not None:
            with self._lock:
                hit = self._tenant(tenant_id).similar(
                    vector, namespace, chat["model"], threshold, deps
                )
            if hit is not None:
                return hit
        return vector

    def _hit_response(self, chat: dict[str, Any], hit: Hit, namespace: str) -> GatewayResponse:
        age = max(0, int(self.config.clock() - hit.entry.written_at))
        headers = [(AGE_HEADER, str(age)), (NAMESPACE_HINT_HEADER, namespace[:12])]
        if hit.similarity is None:
            headers.insert(0, (CACHE_HEADER, "HIT_L1"))
        else:
            headers[:0] = [(CACHE_HEADER, "HIT_L2"), (SIMILARITY_HEADER, f"{hit.similarity:.4f}")]
        with self._lock:
            self._counters.bump("hits_l1" if hit.similarity is None else "hits_l2")
        return self._answer(chat, hit.entry.completion, headers)

    @staticmethod
    def _answer(
        chat: dict[str, Any], completion: dict[str, Any], headers: list[tuple[str, str]]
    ) -> GatewayResponse:
        headers.append((REQUEST_ID_HEADER, f"req_{uuid.uuid4().hex[:16]}"))
        if not fmt.wants_stream(chat):
            return GatewayResponse.json(200, completion, headers)
        events = fmt.sse_events(completion, include_usage=fmt.include_usage(chat))
        sse_headers = [("content-type", SSE_TYPE), ("cache-control", "no-cache"), *headers]
        return GatewayResponse(200, sse_headers, chunks=events)
