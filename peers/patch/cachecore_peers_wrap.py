"""Every httpx (or httpx2) client made in this process sends through Cachecore's transport.

Loaded at interpreter start by ``cachecore_peers_wrap.pth``, which ``peers/run.py``
writes into the session venv's site-packages for the wrapped run only (xdist
workers and test subprocesses load it too). Configured by the environment:

``CACHECORE_PEERS_WRAP``
    Comma-separated import names whose clients to wrap: ``httpx``, ``httpx2``.
``CACHECORE_PEERS_GATEWAY``
    The gateway URL given to the transport: its origin gets the tenant token.
``CACHECORE_PEERS_MARKS``
    A folder; each process touches ``<pid>-<library>`` there when it wraps its
    first client, so the runner can tell the patch really ran.

Nothing is imported eagerly: a post-import hook patches a library when the code
under test imports it, and Cachecore itself is imported at the first client.

How the transports are wrapped: httpx has no public accessor for a client's
transport or mounts (only the private ``_transport``/``_mounts``), so the patched
``Client.__init__``/``AsyncClient.__init__`` rewrites its ``transport=``,
``mounts=`` and ``proxy=`` arguments before calling the original, building the
transports httpx would have built itself:

- no ``transport=``: ``HTTPTransport(verify, cert, trust_env, http1, http2, limits)``
  with the client's arguments, their defaults read from the ``__init__`` signature;
- ``proxy=``: an ``all://`` mount ``HTTPTransport(..., proxy=proxy)``, as httpx
  mounts it (whatever ``transport=`` is);
- no ``transport=`` and ``trust_env``: one mount per environment proxy;
- every mount the caller passed, except ``None`` ones (those use the default).

Each resulting transport is wrapped once: ``inner_transport=<that transport>``.

Private names, where httpx offers no public equivalent, read only:

- ``_utils.get_environment_proxies()``, the library's own environment-proxy
  mapping: it differs between httpx and httpx2, and a copy would drift.
- ``_init_transport``/``_init_proxy_transport``, called only when a subclass
  overrides them: that is how httpx-aiohttp and openai's ``DefaultAioHttpClient``
  swap the default transport, and httpx itself builds through them.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import inspect
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["TOKEN", "install", "install_from_env", "patch_library"]

TOKEN = "cc_live_peer.eyJhbGciOiJIUzI1NiJ9.eyJ0ZW5hbnRfaWQiOiJwZWVyIn0.c2ln"

WRAP_ENV = "CACHECORE_PEERS_WRAP"
GATEWAY_ENV = "CACHECORE_PEERS_GATEWAY"
MARKS_ENV = "CACHECORE_PEERS_MARKS"

LIBRARIES = ("httpx", "httpx2")

#: The ``__init__`` arguments that httpx passes on to the transports it builds.
_TRANSPORT_OPTIONS = ("verify", "cert", "trust_env", "http1", "http2", "limits")

Wrap = Callable[[Any], Any]

#: The libraries already patched or waiting for their import. A venv's lib64 ->
#: lib symlink makes ``site`` read the same .pth file twice.
_installed: set[str] = set()


def install_from_env() -> None:
    """The ``.pth`` entry point: does nothing unless ``CACHECORE_PEERS_WRAP`` is set."""
    names = [name.strip() for name in os.environ.get(WRAP_ENV, "").split(",") if name.strip()]
    if not names:
        return
    gateway = os.environ.get(GATEWAY_ENV)
    if not gateway:
        raise RuntimeError(f"{WRAP_ENV} is set but {GATEWAY_ENV} is not")
    install(names, gateway, marks=os.environ.get(MARKS_ENV))


def install(libraries: Sequence[str], gateway: str, *, marks: str | None = None) -> None:
    """Patch each library now if it is loaded, else right after it is imported."""
    pending: dict[str, Callable[[ModuleType], None]] = {}
    for name in libraries:
        if name not in LIBRARIES:
            raise ValueError(f"cannot wrap {name!r}: only {', '.join(LIBRARIES)}")
        if name in _installed:
            continue
        _installed.add(name)
        patch = functools.partial(patch_library, gateway=gateway, marks=marks)
        if name in sys.modules:
            patch(sys.modules[name])
        else:
            pending[name] = patch
    if pending:
        sys.meta_path.insert(0, _PatchAfterImport(pending))


def patch_library(lib: ModuleType, *, gateway: str, marks: str | None = None) -> None:
    """Make ``lib.Client`` and ``lib.AsyncClient`` wrap every transport they get."""
    mark = _Mark(marks, lib.__name__)
    _patch_init(lib.Client, lib.HTTPTransport, _wrapper(False, gateway, mark), lib)
    _patch_init(lib.AsyncClient, lib.AsyncHTTPTransport, _wrapper(True, gateway, mark), lib)


def _patch_init(client_cls: type, transport_cls: type, wrap: Wrap, lib: ModuleType) -> None:
    original: Callable[..., None] = client_cls.__dict__["__init__"]
    parameters = inspect.signature(original).parameters
    defaults = {name: parameters[name].default for name in _TRANSPORT_OPTIONS}

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        options = {name: kwargs.get(name, defaults[name]) for name in _TRANSPORT_OPTIONS}
        build = _Builder(self, client_cls, transport_cls, lib, options)
        original(self, *args, **wrapped_arguments(kwargs, build, wrap, lib))

    client_cls.__init__ = __init__  # type: ignore[misc]


class _Builder:
    """Builds the transports a client would build for itself, with its options."""

    def __init__(
        self, client: Any, base: type, transport_cls: type, lib: ModuleType, options: dict[str, Any]
    ) -> None:
        self._client = client
        self._base = base
        self._transport_cls = transport_cls
        self._lib = lib
        self.options = options

    def _overrides(self, hook: str) -> bool:
        return getattr(type(self._client), hook) is not getattr(self._base, hook)

    def default(self) -> Any:
        if self._overrides("_init_transport"):
            return self._client._init_transport(**self.options)
        return self._transport_cls(**self.options)

    def proxied(self, proxy: Any) -> Any:
        if self._overrides("_init_proxy_transport"):
            lib = self._lib
            if isinstance(proxy, (str, lib.URL)):
                proxy = lib.Proxy(url=proxy)
            return self._client._init_proxy_transport(proxy, **self.options)
        return self._transport_cls(**self.options, proxy=proxy)


def wrapped_arguments(
    kwargs: Mapping[str, Any], build: _Builder, wrap: Wrap, lib: ModuleType
) -> dict[str, Any]:
    """The client's keyword arguments, with every transport it would use wrapped."""
    transport = kwargs.get("transport")
    proxy = kwargs.get("proxy")

    mounts: dict[str, Any] = {}  # in httpx's order: proxies first, then the caller's
    if proxy is not None:
        mounts["all://"] = wrap(build.proxied(proxy))
    elif transport is None and build.options["trust_env"]:
        for pattern, url in lib._utils.get_environment_proxies().items():
            mounts[pattern] = None if url is None else wrap(build.proxied(url))
    for pattern, mounted in (kwargs.get("mounts") or {}).items():
        mounts[pattern] = None if mounted is None else wrap(mounted)

    if transport is None:
        transport = build.default()
    return {**kwargs, "transport": wrap(transport), "mounts": mounts, "proxy": None}


def _wrapper(is_async: bool, gateway: str, mark: _Mark) -> Wrap:
    def wrap(transport: Any) -> Any:
        import cachecore  # here, not at import: the code under test loads its library first

        cls = cachecore.AsyncCachecoreTransport if is_async else cachecore.SyncCachecoreTransport
        if isinstance(
            transport, (cachecore.AsyncCachecoreTransport, cachecore.SyncCachecoreTransport)
        ):
            return transport
        mark.touch()
        return cls(gateway_url=gateway, tenant_jwt=TOKEN, inner_transport=transport)

    return wrap


class _Mark:
    """Touches ``<marks>/<pid>-<library>`` once per process, at the first wrap."""

    def __init__(self, folder: str | None, library: str) -> None:
        self._folder = folder
        self._library = library
        self._pid = 0

    def touch(self) -> None:
        if self._folder is None or self._pid == os.getpid():
            return
        self._pid = os.getpid()
        Path(self._folder, f"{self._pid}-{self._library}").touch()


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    """Runs a patch on a top-level module right after it is first imported."""

    def __init__(self, patches: dict[str, Callable[[ModuleType], None]]) -> None:
        self._patches = patches

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        patch = self._patches.get(fullname)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        del self._patches[fullname]
        spec.loader = _PatchingLoader(spec.loader, patch)
        return spec


class _PatchingLoader(importlib.abc.Loader):
    """The module's own loader, plus the patch after the module body has run."""

    def __init__(self, inner: importlib.abc.Loader, patch: Callable[[ModuleType], None]) -> None:
        self._inner = inner
        self._patch = patch

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._inner.exec_module(module)
        self._patch(module)

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package, ...
        return getattr(self._inner, name)
