"""``python -m cachecore`` / ``cachecore``: command-line tools.

One function per subcommand (``_cmd_<name>``) registered in ``_SUBCOMMANDS``;
each imports what it needs when it runs, so ``import cachecore`` stays light and
a new subcommand (``demo``, ``invalidate``, ``token``) is one parser function
and one command function.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from cachecore._cli import (
    SECRET_ENV,
    SecretUnusable,
    add_doctor,
    add_invalidate,
    add_token,
    read_secret,
)

if TYPE_CHECKING:
    from cachecore.testing import ServerLimits


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0 to 65535, got {port}")
    return port


def _add_gateway(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "gateway",
        help="run the reference gateway (needs cachecore-python[gateway])",
        description="Run the Cachecore reference gateway: a single-process gateway for"
        " tests and local use, not for production. It prints one access-log line per"
        " request on stderr (--quiet: none).",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; others get a warning: a test gateway)",
    )
    p.add_argument(
        "--port", type=_port, default=8080, help="port (default 8080; 0 picks a free one)"
    )
    secret = p.add_mutually_exclusive_group()
    secret.add_argument(
        "--secret-file",
        metavar="PATH",
        help=f"file holding the HS256 secret, at least 32 bytes ('-': stdin; default: ${SECRET_ENV})",
    )
    secret.add_argument(
        "--secret", help="the secret itself: discouraged, it shows in ps and shell history"
    )
    p.add_argument(
        "--max-token-lifetime",
        type=_positive_seconds,
        metavar="SECONDS",
        help="refuse tokens that expire further than this from now (default: no limit)",
    )
    p.add_argument(
        "--rate-limit",
        type=_per_second,
        default=0.0,
        metavar="PER_SECOND",
        help="requests per second per tenant, 0 = off (default 0)",
    )
    p.add_argument("--upstream", help="OpenAI-compatible base URL (…/v1); default: offline model")
    p.add_argument(
        "--upstream-key-env", default="OPENAI_API_KEY", help="env var with the upstream key"
    )
    _add_gateway_server_options(p)
    _add_gateway_cache_options(p)
    p.set_defaults(run=_cmd_gateway)


# -- cachecore gateway: cache bounds --------------------------------------------------


#: What ``--l2-threshold off`` and ``--max-total-mb off`` parse to: ``None`` in ``GatewayConfig``.
_OFF = "off"


def _number(text: str, convert: Callable[[str], float]) -> float:
    try:
        return convert(text)
    except ValueError:
        kind = "a whole number" if convert is int else "a number"
        raise argparse.ArgumentTypeError(f"must be {kind}, got {text!r}") from None


def _megabytes(text: str) -> int:
    value = _number(text, float)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of MiB, got {text!r}")
    if int(value * 1024 * 1024) < 1:
        raise argparse.ArgumentTypeError(f"must be at least one byte's worth of MiB, got {text!r}")
    return int(value * 1024 * 1024)


def _or_off(parse: Callable[[str], float]) -> Callable[[str], float | str]:
    """``parse``, or ``_OFF`` for ``off`` (any case, spaces around)."""

    def parse_or_off(text: str) -> float | str:
        return _OFF if text.strip().lower() == _OFF else parse(text)

    return parse_or_off


def _positive_int(text: str) -> int:
    value = int(_number(text, int))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def _dep_chars(text: str) -> int:
    from cachecore.testing._config import MIN_DEP_CHARS

    value = _positive_int(text)
    if value < MIN_DEP_CHARS:
        raise argparse.ArgumentTypeError(
            f"must be at least {MIN_DEP_CHARS} (invalidate()'s default new hash has"
            f" {MIN_DEP_CHARS} characters), got {text!r}"
        )
    return value


def _per_second(text: str) -> float:
    value = _number(text, float)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 (off) or a positive number, got {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    value = _number(text, float)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _similarity(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number in (0, 1], or off, got {text!r}"
        ) from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], or off, got {text!r}")
    return value


#: ``GatewayConfig`` fields set by ``_add_gateway_cache_options`` (default: the config's).
_BOUNDS = (
    "l2_threshold",
    "max_entries",
    "max_tenant_bytes",
    "max_total_bytes",
    "max_prompt_chars",
    "max_model_chars",
    "max_dep_chars",
    "max_deps",
)


def _gateway_bounds(args: argparse.Namespace) -> dict[str, Any]:
    """The bounds given on the command line (``off`` is ``None``); the rest keep their defaults."""
    given = {name: getattr(args, name) for name in _BOUNDS}
    return {name: None if v == _OFF else v for name, v in given.items() if v is not None}


def _add_gateway_cache_options(p: argparse.ArgumentParser) -> None:
    bounds = p.add_argument_group("cache bounds (GatewayConfig, on the Testing page of the docs)")
    bounds.add_argument(
        "--l2-threshold",
        type=_or_off(_similarity),
        metavar="SIMILARITY|off",
        help="minimum cosine similarity for an L2 hit, or off: exact (L1) hits only (default 0.87)",
    )
    bounds.add_argument(
        "--max-entries",
        type=_positive_int,
        metavar="N",
        help="entries kept per tenant (default 10000)",
    )
    bounds.add_argument(
        "--ttl",
        type=_positive_seconds,
        metavar="SECONDS",
        default=None,
        help="seconds an entry is served (default: until evicted)",
    )
    bounds.add_argument(
        "--max-tenant-mb",
        type=_megabytes,
        dest="max_tenant_bytes",
        metavar="MiB",
        help="MiB of entries and dep versions per tenant (default 64)",
    )
    bounds.add_argument(
        "--max-total-mb",
        type=_or_off(_megabytes),
        dest="max_total_bytes",
        metavar="MiB|off",
        help="MiB across all tenants (over it, the biggest tenant is evicted first), or off"
        " for no global cap (default 512)",
    )
    bounds.add_argument(
        "--max-prompt-chars",
        type=_positive_int,
        metavar="N",
        help="longest prompt embedded for L2; longer ones get 413 while L2 is on (default 200000)",
    )
    bounds.add_argument(
        "--max-model-chars",
        type=_positive_int,
        metavar="N",
        help="longest model name; longer ones get 400 (default 256)",
    )
    bounds.add_argument(
        "--max-dep-chars",
        type=_dep_chars,
        metavar="N",
        help="longest dep id or hash, at least 32; longer ones get 400 (default 512)",
    )
    bounds.add_argument(
        "--max-deps",
        type=_positive_int,
        metavar="N",
        help="deps one request may declare; more get 400 (default 64)",
    )


# -- cachecore gateway: server limits and the access log ------------------------------


def _add_gateway_server_options(p: argparse.ArgumentParser) -> None:
    limits = p.add_argument_group("server limits (ServerLimits, on the Testing page of the docs)")
    limits.add_argument(
        "--max-connections",
        type=_positive_int,
        metavar="N",
        default=None,
        help="connections open at once; more are answered 503 and closed"
        " (default 512, lowered below the open-files limit, ulimit -n)",
    )
    limits.add_argument(
        "--header-timeout",
        type=_positive_seconds,
        metavar="SECONDS",
        default=10.0,
        help="seconds for a connection to send a complete request head (default 10)",
    )
    limits.add_argument(
        "--idle-timeout",
        type=_positive_seconds,
        metavar="SECONDS",
        default=5.0,
        help="seconds an idle keep-alive connection is kept (default 5)",
    )
    limits.add_argument(
        "--body-timeout",
        type=_positive_seconds,
        metavar="SECONDS",
        default=30.0,
        help="seconds to receive a request body; slower uploads get 408 (default 30)",
    )
    p.add_argument("--quiet", action="store_true", help="no access-log lines (warnings still show)")


def _gateway_limits(args: argparse.Namespace) -> ServerLimits:
    from cachecore.testing import ServerLimits

    return ServerLimits(
        header_timeout=args.header_timeout,
        idle_timeout=args.idle_timeout,
        body_timeout=args.body_timeout,
        max_connections=args.max_connections,
    )


def _configure_gateway_logging(quiet: bool) -> None:
    """The command's logging (a library never configures it): cachecore.testing to stderr."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("cachecore.testing")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logging.getLogger("cachecore.testing.access").setLevel(
        logging.WARNING if quiet else logging.INFO
    )


def _is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (127.0.0.0/8, ::1) or ``localhost``."""
    import ipaddress

    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name (or "" for every interface): not known to be loopback
        return False


def _gateway_secret(args: argparse.Namespace) -> str:
    """``--secret`` (with a warning), else ``--secret-file`` or ``$CACHECORE_JWT_SECRET``."""
    from cachecore.testing._jwt import secret_problem

    if args.secret is None:
        return read_secret(args.secret_file)
    print(
        "cachecore gateway: warning: --secret shows the secret in ps and shell history;"
        f" set {SECRET_ENV} or pass --secret-file PATH instead",
        file=sys.stderr,
    )
    problem = secret_problem(args.secret)
    if problem is not None:
        raise SecretUnusable(f"--secret: {problem}")
    return str(args.secret)


def _mint_hint(args: argparse.Namespace) -> tuple[str, str]:
    """How to mint a token for this gateway: (what it needs, the command).

    The command stands on a line of its own and holds nothing but the command, so
    it runs as pasted in any POSIX shell (zsh reads ``#`` as an argument by default).
    """
    if args.secret_file is None:
        return f"with the same secret in {SECRET_ENV}", "cachecore token mint --tenant NAME"
    if args.secret_file == "-":
        return "with the same secret on stdin", "cachecore token mint --secret-file - --tenant NAME"
    path = shlex.quote("--secret-file=" + os.path.abspath(args.secret_file))
    return "from the same file", f"cachecore token mint {path} --tenant NAME"


def _cmd_gateway(args: argparse.Namespace) -> int:
    try:
        secret = _gateway_secret(args)
    except SecretUnusable as exc:
        print(f"cachecore gateway: {exc}", file=sys.stderr)
        return 2
    from cachecore.testing import GatewayConfig, HTTPUpstream, ReferenceGateway, Upstream
    from cachecore.testing._server import bind, make_server, url_of

    upstream: Upstream | None = None
    if args.upstream:
        key = os.environ.get(args.upstream_key_env, "")
        if not key:
            print(f"cachecore gateway: --upstream needs ${args.upstream_key_env}", file=sys.stderr)
            return 2
        upstream = HTTPUpstream(args.upstream, key)
    try:
        # Bounds given on the command line; the others keep GatewayConfig's defaults.
        config = GatewayConfig(
            secret=secret,
            rate_limit=args.rate_limit,
            max_token_lifetime=args.max_token_lifetime,
            upstream=upstream,
            ttl=args.ttl,
            **_gateway_bounds(args),
        )
        limits = _gateway_limits(args)
        server = make_server(
            ReferenceGateway(config), log_level="warning" if args.quiet else "info", limits=limits
        )
        sock = bind(args.host, args.port)
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"cachecore gateway: {exc}", file=sys.stderr)
        return 2
    if not _is_loopback(args.host):
        print(
            f"cachecore gateway: warning: listening on {args.host}, reachable from other"
            " machines. This is a single-process reference gateway for tests and local"
            " use, not for production.",
            file=sys.stderr,
            flush=True,
        )
    print(f"cachecore reference gateway listening on {url_of(sock)}", flush=True)
    needs, command = _mint_hint(args)
    print(f"  a tenant token, {needs}:\n    {command}", flush=True)
    _configure_gateway_logging(args.quiet)
    server.run(sockets=[sock])
    return 0


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="walk the adoption ladder offline against a local gateway (needs cachecore-python[demo])",
    )
    p.add_argument(
        "--latency",
        type=float,
        default=0.25,
        help="simulated upstream latency of the offline model, in seconds (default 0.25)",
    )
    p.add_argument(
        "--sync",
        action="store_true",
        help="walk with the sync SDK (OpenAI, SyncCachecoreClient) instead of the async one",
    )
    p.add_argument(
        "--price-per-million",
        type=float,
        default=2.0,
        metavar="USD",
        help="US dollars per million tokens, to price the tokens that cache hits saved"
        " (default 2.00, an illustrative figure: pass your model's)",
    )
    p.add_argument(
        "--no-color", action="store_true", help="plain output, no ANSI colours (also: $NO_COLOR)"
    )
    p.set_defaults(run=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from cachecore._demo import run_demo

    return run_demo(
        latency=args.latency,
        color=False if args.no_color else None,
        sync=args.sync,
        price_per_million=args.price_per_million,
    )


_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _add_demo,
    _add_gateway,
    add_doctor,
    add_invalidate,
    add_token,
]


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="cachecore", description="Cachecore command-line tools")
    parser.add_argument("--version", action="version", version=f"cachecore-python {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "token":
        # Never echoed: a shell that expanded a variable may have put a secret here.
        parser.error(
            f"{len(extra)} unrecognized argument(s), not shown: one may hold a secret or a token"
        )
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
