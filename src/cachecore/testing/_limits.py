"""How long the loopback server waits for a client, and how many clients it holds.

``ServerLimits`` is plain data, checked once at construction, with no uvicorn
import: ``serve(gateway, limits=ServerLimits(...))`` and ``cachecore gateway
--max-connections ...`` build one; ``_guard.py`` enforces the parts uvicorn does
not (see its docstring).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

try:  # POSIX only: elsewhere the descriptor limit is not known, so not used
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None  # type: ignore[assignment]

#: The connection cap when the descriptor limit allows it (local use: a test suite,
#: a few processes on a laptop).
DEFAULT_MAX_CONNECTIONS = 512
#: Descriptors kept out of the connection cap for the gateway's own needs: the
#: listening socket, logs, an upstream's connection pool, the interpreter's files.
FD_MARGIN = 64


def nofile_soft_limit() -> int | None:
    """The process's soft ``RLIMIT_NOFILE``, or ``None`` when unknown or unlimited."""
    if resource is None:  # pragma: no cover - Windows
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY or soft <= 0 else int(soft)


def connection_cap_for(soft_limit: int | None) -> int:
    """The most connections worth accepting under a soft descriptor limit.

    ``soft_limit - FD_MARGIN`` (half the limit when it is small), at least 1; with
    no known limit, ``DEFAULT_MAX_CONNECTIONS``.
    """
    if soft_limit is None:
        return DEFAULT_MAX_CONNECTIONS
    room = soft_limit - FD_MARGIN if soft_limit > 2 * FD_MARGIN else soft_limit // 2
    return max(1, room)


def default_max_connections() -> int:
    """``DEFAULT_MAX_CONNECTIONS``, lowered below this process's descriptor limit."""
    return min(DEFAULT_MAX_CONNECTIONS, connection_cap_for(nofile_soft_limit()))


def _positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"ServerLimits.{name} must be a number of seconds, not {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"ServerLimits.{name} must be a finite number of seconds > 0, not {value!r}"
        )


@dataclass(frozen=True)
class ServerLimits:
    """What one client may hold on the loopback server (``serve``, ``cachecore gateway``).

    - ``header_timeout``: seconds a connection has to deliver a complete request
      head, counted from connecting or from its first bytes after a response; a
      connection that sends nothing at all is closed after it too.
    - ``idle_timeout``: seconds an idle keep-alive connection is kept between
      requests (uvicorn's ``timeout_keep_alive``).
    - ``body_timeout``: seconds, from the end of the head, to receive the whole
      request body; a slower upload is answered 408 and the connection closed.
    - ``max_connections``: connections open at once; further ones are answered a
      bare 503 and closed at accept, and one WARNING is logged per burst.
      ``None`` (the default): 512, lowered below the soft ``RLIMIT_NOFILE``
      minus a margin on POSIX, so the cap is reached before descriptors run out.
    - ``max_header_bytes``: the largest request head (uvicorn's
      ``h11_max_incomplete_event_size``); a larger one is answered 400.
    - ``backlog``: connections the kernel queues before they are accepted.
    """

    header_timeout: float = 10.0
    idle_timeout: float = 5.0
    body_timeout: float = 30.0
    max_connections: int | None = None
    max_header_bytes: int = 16 * 1024
    backlog: int = 128

    def __post_init__(self) -> None:
        for name in ("header_timeout", "idle_timeout", "body_timeout"):
            _positive(name, getattr(self, name))
        for name in ("max_connections", "max_header_bytes", "backlog"):
            value = getattr(self, name)
            if value is None and name == "max_connections":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ServerLimits.{name} must be an integer >= 1, not {value!r}")
        if self.max_header_bytes < 1024:
            raise ValueError(
                "ServerLimits.max_header_bytes must be >= 1024 (a request head with a token)"
            )
        cap = connection_cap_for(nofile_soft_limit())
        if self.max_connections is not None and self.max_connections > cap:
            raise ValueError(
                f"ServerLimits.max_connections={self.max_connections} is more than this process"
                f" can hold open ({cap}: the soft RLIMIT_NOFILE minus {FD_MARGIN} for the"
                " gateway itself); lower it, or raise the limit (ulimit -n)"
            )

    @property
    def connection_cap(self) -> int:
        """``max_connections``, or the default for this process when it is ``None``."""
        return (
            self.max_connections if self.max_connections is not None else default_max_connections()
        )
