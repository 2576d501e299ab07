"""Flask: one ``SyncCachecoreClient`` per app, configured from ``app.config``.

::

    from cachecore.contrib.flask import Cachecore

    cachecore = Cachecore(app)          # or cachecore.init_app(app) in a factory

    @app.post("/summarise/<int:doc_id>")
    def summarise(doc_id):
        with cachecore.request_context(deps=[f"doc:{doc_id}"]) as handle:
            reply = openai_client.chat.completions.create(...)
        return {"text": reply.choices[0].message.content, "cache": handle.last.status}

Why one client per app and not one per request: the client owns the connection
pool to the gateway, and a pool per request would reconnect every time. The
client is thread-safe, and ``request_context`` lives in a ``ContextVar``, so
concurrent requests served by different threads never see each other's deps.

Configuration (``app.config``, each falling back to the environment variable
of the same name for the first two): ``CACHECORE_GATEWAY_URL``,
``CACHECORE_TOKEN``, ``CACHECORE_TIMEOUT``, ``CACHECORE_MAX_RETRIES``,
``CACHECORE_MAX_CONCURRENCY``, ``CACHECORE_GATEWAY_ERRORS``,
``CACHECORE_COLLECT_STATS``, ``CACHECORE_DEBUG``. Keyword arguments to
``Cachecore(...)`` / ``init_app(...)`` (e.g. ``inner_transport=``) override them.

Teardown: Flask has no "app shutdown" hook, and ``teardown_appcontext`` runs
after *every* request, which would throw the pool away each time. So the
client is closed when the app is garbage-collected or the interpreter exits
(``weakref.finalize``), or at once with ``Cachecore.close(app)``.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any

from cachecore import Dep, RequestContext, SyncCachecoreClient
from cachecore.contrib import CLIENT_SETTINGS, missing_extra
from cachecore.errors import CachecoreConfigError

try:
    import flask
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise missing_extra("Flask", "flask", exc) from exc

__all__ = ["CONFIG_KEYS", "EXTENSION_KEY", "Cachecore", "get_client"]

#: Where the per-app state lives: ``app.extensions[EXTENSION_KEY]``.
EXTENSION_KEY = "cachecore"

#: ``app.config`` key -> ``SyncCachecoreClient`` keyword argument.
CONFIG_KEYS: dict[str, str] = {f"CACHECORE_{key}": arg for key, arg in CLIENT_SETTINGS.items()}


class _AppState:
    """What the extension keeps per app: the client, and the finalizer that closes it."""

    __slots__ = ("client", "finalizer")

    def __init__(self, client: SyncCachecoreClient, finalizer: weakref.finalize[Any, Any]) -> None:
        self.client = client
        self.finalizer = finalizer


class Cachecore:
    """The Flask extension. One instance may serve several apps (factory pattern).

    Args:
        app: The app to set up now; omit it and call ``init_app`` later.
        **overrides: ``SyncCachecoreClient`` keyword arguments that win over
            ``app.config`` (``inner_transport=`` for a proxy or a test gateway).
    """

    def __init__(self, app: flask.Flask | None = None, **overrides: Any) -> None:
        self._overrides = overrides
        if app is not None:
            self.init_app(app)

    def init_app(self, app: flask.Flask, **overrides: Any) -> None:
        """Create ``app``'s client now, so a configuration error fails at startup."""
        options = _client_options(app.config)
        options.update(self._overrides)
        options.update(overrides)
        old = app.extensions.get(EXTENSION_KEY)
        if isinstance(old, _AppState):
            old.finalizer()  # init_app twice: do not leak the first pool
        client = SyncCachecoreClient(**options)
        app.extensions[EXTENSION_KEY] = _AppState(client, weakref.finalize(app, client.close))

    def get_client(self, app: flask.Flask | None = None) -> SyncCachecoreClient:
        """The client of ``app``, or of the app handling the current request."""
        return get_client(app)

    @property
    def client(self) -> SyncCachecoreClient:
        """The current app's client (needs an app context, as inside a handler)."""
        return get_client()

    def request_context(
        self, deps: Iterable[Dep | str] | None = None, bypass: bool = False
    ) -> RequestContext:
        """``client.request_context(...)`` for the current app: deps or bypass for a block."""
        return get_client().request_context(deps=deps, bypass=bypass)

    def close(self, app: flask.Flask | None = None) -> None:
        """Close ``app``'s client now (idempotent); ``get_client`` fails afterwards."""
        target = _app(app)
        state = target.extensions.pop(EXTENSION_KEY, None)
        if isinstance(state, _AppState):
            state.finalizer()


def _client_options(config: Any) -> dict[str, Any]:
    """The ``SyncCachecoreClient`` keyword arguments set in a Flask config mapping."""
    return {arg: config[key] for key, arg in CONFIG_KEYS.items() if config.get(key) is not None}


def get_client(app: flask.Flask | None = None) -> SyncCachecoreClient:
    """The ``SyncCachecoreClient`` of ``app`` (default: ``flask.current_app``)."""
    target = _app(app)
    state = target.extensions.get(EXTENSION_KEY)
    if not isinstance(state, _AppState):
        raise CachecoreConfigError(
            f"Flask app {target.name!r} has no Cachecore client: call "
            "Cachecore(app) or Cachecore().init_app(app) when creating it"
        )
    return state.client


def _app(app: flask.Flask | None) -> flask.Flask:
    if app is not None:
        return app
    if not flask.has_app_context():
        raise RuntimeError(
            "no Flask app context: call this inside a request handler, "
            "within app.app_context(), or pass the app explicitly"
        )
    current: flask.Flask = flask.current_app._get_current_object()  # type: ignore[attr-defined]
    return current
