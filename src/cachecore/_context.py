"""Per-request cache settings, carried in a ``ContextVar``.

``request_context(deps=..., bypass=...)`` pushes a frame; the transport reads
the innermost frame on every request. A ``ContextVar`` is per thread, and each
asyncio or trio task works on a copy, so concurrent calls never see each
other's deps. The deps header is encoded once, when the block is entered,
never per request. Shared by both twins: nothing here does I/O.

Generators. A block inside a generator (or async generator, or a streaming
response body) is entered in the context of whoever first advances it, and may
be closed from another thread or task: a plain ``ContextVar.reset`` would then
raise ``ValueError`` and leave the frame in force where it was set. So a block's
exit never resets: it marks its frame closed, and points the variable back at
the nearest open enclosing frame when it is still the current one. Readers skip
closed frames. A frame nested in a block that has ended (an outer block that
exited while a generator's inner block stays suspended) drops what it inherited
from it: each frame keeps its own deps and bypass, and its combined settings are
recomputed from its open ancestors whenever a block has closed since they were
last checked (one integer comparison per request otherwise). A block's settings
therefore end with the block wherever it ends, and its exit never raises.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from types import TracebackType
from typing import Any

from . import _wire
from ._models import CacheStatus, Dep
from .errors import CachecoreConfigError

__all__ = ["RequestContext", "RequestHandle", "current_frame"]


class RequestHandle:
    """What one ``request_context`` block saw: the cache status of each response.

    Frameworks such as LangChain or CrewAI hide response headers; the handle
    still tells you whether their calls were hits::

        with cc.request_context(deps=[Dep("doc:1")]) as ctx:
            chain.invoke(...)
        print(ctx.last.status, ctx.hits, ctx.misses)
    """

    __slots__ = ("__weakref__", "_statuses", "bypass", "deps")

    def __init__(self, deps: tuple[Dep, ...], bypass: bool) -> None:
        self.deps = deps
        self.bypass = bypass
        # A CacheStatus, or the response headers it is parsed from on first read:
        # parsing costs microseconds, so the transport's hot path leaves it to the reader.
        self._statuses: list[CacheStatus | Any] = []

    def _record(self, status: CacheStatus | Any) -> None:
        """Add a response's status (or the headers to parse it from, when read)."""
        self._statuses.append(status)

    def _resolved(self) -> list[CacheStatus]:
        items = self._statuses
        for i, item in enumerate(items):
            if not isinstance(item, CacheStatus):
                items[i] = CacheStatus.from_headers(item)
        return items

    @property
    def statuses(self) -> list[CacheStatus]:
        """The status of every gateway response made inside the block, in order."""
        return list(self._resolved())

    @property
    def last(self) -> CacheStatus | None:
        """The status of the most recent response, or ``None`` before the first."""
        items = self._statuses
        if not items:
            return None
        if not isinstance(items[-1], CacheStatus):
            items[-1] = CacheStatus.from_headers(items[-1])
        last: CacheStatus = items[-1]
        return last

    @property
    def hits(self) -> int:
        return sum(1 for s in self._resolved() if s.hit)

    @property
    def misses(self) -> int:
        return sum(1 for s in self._resolved() if s.status == "MISS")

    def __len__(self) -> int:
        return len(self._statuses)

    def __repr__(self) -> str:
        return (
            f"RequestHandle(deps={list(self.deps)!r}, bypass={self.bypass}, "
            f"statuses={[s.status for s in self._resolved()]!r})"
        )


class _Frame:
    """One active ``request_context`` block, linked to the one it is nested in.

    ``own_deps``/``own_bypass`` are what the block declared; ``deps``/``bypass``
    and the encoded header combine them with every open enclosing block, as of
    ``generation`` (see ``current_frame``).
    """

    __slots__ = (
        "bypass",
        "closed",
        "deps",
        "deps_header",
        "deps_item",
        "generation",
        "handle",
        "own_bypass",
        "own_deps",
        "parent",
    )

    def __init__(
        self,
        own_deps: tuple[Dep, ...],
        own_bypass: bool,
        handle: RequestHandle,
        parent: _Frame | None,
    ) -> None:
        self.own_deps = own_deps
        self.own_bypass = own_bypass
        self.handle = handle
        self.parent = parent
        self.closed = False
        self.deps: tuple[Dep, ...] = ()
        self.bypass = False
        self.deps_header: str | None = None
        self.deps_item: tuple[str, str] | None = None
        self.generation = -1
        self.combine()

    def combine(self) -> None:
        """Recompute the settings from this block and its open enclosing blocks."""
        generation = _generation  # read first: a block closing meanwhile makes this stale
        chain = []
        frame: _Frame | None = self
        while frame is not None:
            if not frame.closed:
                chain.append(frame)
            frame = frame.parent
        chain.reverse()
        # Nested blocks combine: outer deps first, no duplicates; bypass sticks. A
        # block on its own sends its deps as declared.
        if len(chain) == 1:
            deps = self.own_deps
        else:
            deps = tuple(dict.fromkeys(d for f in chain for d in f.own_deps))
        header = _wire.encode_deps((d.dep_id, d.expected_hash) for d in deps) if deps else None
        self.deps = deps
        self.bypass = any(f.own_bypass for f in chain)
        self.deps_header = header
        # The header to set, encoded here rather than per request.
        self.deps_item = None if header is None else (_wire.DEPS_HEADER, header)
        self.generation = generation

    def record(self, status: CacheStatus | Any) -> None:
        """Record a response's status in this block's handle and every enclosing open one.

        ``status`` is a ``CacheStatus``, or response headers to parse when read.
        """
        frame: _Frame | None = self
        while frame is not None:
            if not frame.closed:
                frame.handle._record(status)
            frame = frame.parent


def _open(frame: _Frame | None) -> _Frame | None:
    while frame is not None and frame.closed:
        frame = frame.parent
    return frame


_current: ContextVar[_Frame | None] = ContextVar("cachecore_request_context", default=None)

#: How many blocks have closed so far; a frame whose ``generation`` differs may
#: have inherited settings from a block that has ended since.
_generation = 0


def current_frame() -> _Frame | None:
    """The innermost open frame in this thread/task, or ``None``."""
    frame = _current.get()
    if frame is None or frame.generation == _generation:
        return frame
    frame = _open(frame)
    if frame is not None and frame.generation != _generation:
        frame.combine()
    return frame


def _coerce_deps(deps: Iterable[Dep | str] | None) -> tuple[Dep, ...]:
    if deps is None:
        return ()
    if isinstance(deps, (str, bytes, Dep)):
        raise CachecoreConfigError(
            f"deps must be a list of Dep, got a single {type(deps).__name__}: "
            f"write deps=[Dep(...)] instead of deps=Dep(...)"
        )
    try:
        items = list(deps)
    except TypeError:
        raise CachecoreConfigError(
            f"deps must be a list of Dep, got {type(deps).__name__}"
        ) from None
    out: list[Dep] = []
    for i, item in enumerate(items):
        if isinstance(item, Dep):
            out.append(item)
        elif isinstance(item, str):
            out.append(Dep(item))
        else:
            raise CachecoreConfigError(
                f"deps[{i}] must be a Dep or a dependency id string, got {type(item).__name__}"
            )
    return tuple(out)


class RequestContext:
    """The context manager returned by ``request_context``: a plain ``with`` in both twins."""

    __slots__ = ("_bypass", "_deps", "_frame")

    def __init__(self, deps: Iterable[Dep | str] | None = None, bypass: bool = False) -> None:
        if not isinstance(bypass, bool):
            raise CachecoreConfigError(f"bypass must be True or False, got {bypass!r}")
        self._deps = _coerce_deps(deps)
        self._bypass = bypass
        self._frame: _Frame | None = None

    def __enter__(self) -> RequestHandle:
        if self._frame is not None:
            raise RuntimeError("this request_context is already active; create a new one")
        parent = current_frame()
        handle = RequestHandle((), False)
        frame = _Frame(self._deps, self._bypass, handle, parent)
        handle.deps, handle.bypass = frame.deps, frame.bypass
        if frame.deps_header is not None and len(frame.deps_header) > _wire.MAX_DEPS_HEADER_BYTES:
            raise CachecoreConfigError(
                f"{len(frame.deps)} deps encode to {len(frame.deps_header)} bytes, over the "
                f"{_wire.MAX_DEPS_HEADER_BYTES}-byte limit of the {_wire.DEPS_HEADER} header: "
                "declare fewer or coarser dependencies (e.g. table:products instead of one per row)"
            )
        self._frame = frame
        _current.set(frame)
        return handle

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Never ``_current.reset(token)``: that raises when the block is closed from
        # another thread or task (a generator), and would leave the frame in force
        # where it was set. See the module docstring.
        global _generation
        frame, self._frame = self._frame, None
        if frame is None:
            return
        frame.closed = True
        _generation += 1
        if _current.get() is frame:
            _current.set(_open(frame.parent))
