"""The ``invalidate`` and ``token`` subcommands of ``cachecore`` / ``python -m cachecore``.

Thin shells over the SDK: ``invalidate`` is ``SyncCachecoreClient.invalidate_many``
and ``token inspect`` is ``cachecore._auth.read_token``. Neither ever prints
the token, and a missing setting is one line on stderr, not a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from typing import Any

from ._auth import TOKEN_ENV
from ._config import GATEWAY_URL_ENV


def add_invalidate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "invalidate",
        help="invalidate dependencies (token from $CACHECORE_TOKEN)",
        description=(
            "Evict every cached answer of your tenant that declared one of DEP. "
            f"The tenant token is read from ${TOKEN_ENV}, never from the command line."
        ),
    )
    p.add_argument("deps", nargs="*", metavar="DEP", help="dependency id, e.g. table:products")
    p.add_argument(
        "--from-file",
        metavar="PATH",
        help="read deps from a file, one per line ('-': stdin; blank lines and # comments skipped)",
    )
    p.add_argument("--new-hash", help="the dependency's new version (default: a random UUID)")
    p.add_argument("--gateway-url", help=f"gateway base URL (default: ${GATEWAY_URL_ENV})")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per call (default 30)")
    p.add_argument("--max-retries", type=int, default=3, help="retries per dep (default 3)")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.set_defaults(run=run_invalidate)


def _missing_setting(args: argparse.Namespace) -> str | None:
    """For a command that talks to the gateway: the setting it lacks, said as one line."""
    if not (args.gateway_url or os.environ.get(GATEWAY_URL_ENV)):
        return f"no gateway URL: pass --gateway-url or set {GATEWAY_URL_ENV}"
    if not os.environ.get(TOKEN_ENV):
        return f"no tenant token: set {TOKEN_ENV}"
    return None


def run_invalidate(args: argparse.Namespace) -> int:
    from . import SyncCachecoreClient
    from .errors import CachecoreConfigError

    deps = list(args.deps)
    if args.from_file:
        try:
            deps += read_deps(args.from_file)
        except OSError as exc:
            return _fail(f"cannot read {args.from_file!r}: {exc.strerror}")
    if not deps:
        return _fail("no deps: name them, or pass --from-file PATH ('-' for stdin)")
    missing = _missing_setting(args)
    if missing:
        return _fail(missing)
    # The SDK logs failed invalidations at WARNING; here every outcome is printed,
    # so the logger is muted for the call (and restored: main() may run in-process).
    sdk_logger = logging.getLogger("cachecore")
    was_disabled, sdk_logger.disabled = sdk_logger.disabled, True
    try:
        with SyncCachecoreClient(
            gateway_url=args.gateway_url, timeout=args.timeout, max_retries=args.max_retries
        ) as cc:
            started = time.perf_counter()
            results = _invalidate_all(cc, deps, args.new_hash, show_progress=not args.json)
            elapsed = time.perf_counter() - started
    except CachecoreConfigError as exc:
        return _fail(str(exc))
    finally:
        sdk_logger.disabled = was_disabled
    if args.json:
        payload: list[dict[str, Any]] = [r.model_dump(mode="json") for r in results]
        print(json.dumps({"ok": all(r.ok for r in results), "results": payload}, indent=2))
    else:
        for r in results:  # results on stdout, one line each
            if r.ok:
                print(f"ok      {r.dep_id}  new_hash={r.new_hash}")
            else:
                status = f" (HTTP {r.status_code})" if r.status_code is not None else ""
                print(f"FAILED  {r.dep_id}  after {r.attempts} attempt(s){status}")
    failed = [r for r in results if not r.ok]
    for r in failed:  # explained once, on stderr, where scripts and CI logs look
        print(f"cachecore: {r.error}", file=sys.stderr)  # the error names the dep
    print(
        f"cachecore: {len(results) - len(failed)} ok, {len(failed)} failed in {elapsed:.1f} s",
        file=sys.stderr,
    )
    return 0 if not failed else 1


#: Deps from which a run counts as long: below, it is over before a bar would help.
PROGRESS_FROM = 200
#: Deps per ``invalidate_many`` call while a bar is shown (it advances per chunk).
PROGRESS_CHUNK = 128


def _invalidate_all(
    cc: Any, deps: list[str], new_hash: str | None, *, show_progress: bool
) -> list[Any]:
    """``cc.invalidate_many(deps)``, with a progress bar on stderr for a long run on a terminal.

    The bar is tqdm's (extra ``progress``); without tqdm, one line says how to get it.
    """
    if not show_progress or len(deps) < PROGRESS_FROM or not sys.stderr.isatty():
        return list(cc.invalidate_many(deps, new_hash=new_hash))
    try:
        from tqdm import tqdm
    except ImportError:
        print(
            f"cachecore: invalidating {len(deps)} deps "
            "(pip install 'cachecore-python[progress]' for a progress bar)",
            file=sys.stderr,
        )
        return list(cc.invalidate_many(deps, new_hash=new_hash))
    unique = list(dict.fromkeys(deps))  # a repeated dep is sent once, as invalidate_many does
    by_id: dict[str, Any] = {}
    try:
        size = os.get_terminal_size(sys.stderr.fileno())
        width, height = size.columns, size.lines
    except OSError:
        width = height = 0
    # A terminal that reports no size (0x0: some ptys, CI consoles) would make tqdm
    # draw nothing (no room): assume 80x24 there.
    bar_args: dict[str, Any] = {
        "unit": "dep",
        "desc": "invalidating",
        "ncols": min(width or 80, 100),
        "nrows": height or 24,
    }
    with tqdm(total=len(unique), file=sys.stderr, **bar_args) as bar:
        for start in range(0, len(unique), PROGRESS_CHUNK):
            chunk = unique[start : start + PROGRESS_CHUNK]
            for result in cc.invalidate_many(chunk, new_hash=new_hash):
                by_id[result.dep_id] = result
            bar.update(len(chunk))
    return [by_id[dep] for dep in deps]


def read_deps(path: str) -> list[str]:
    """Dep ids from ``path`` ('-': stdin), one per line; blank lines and ``#`` comments skipped."""
    if path == "-":
        lines = sys.stdin.read().splitlines()
    else:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    stripped = (line.strip() for line in lines)
    return [line for line in stripped if line and not line.startswith("#")]


def add_doctor(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "doctor",
        help="check the gateway and the tenant token (reachable, scheme, token, expiry, clock)",
        description=(
            f"One line per check; exit 0 only if all pass. Reads ${GATEWAY_URL_ENV} and "
            f"${TOKEN_ENV}; never prints the token."
        ),
    )
    p.add_argument("--gateway-url", help=f"gateway base URL (default: ${GATEWAY_URL_ENV})")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.set_defaults(run=run_doctor)


def run_doctor(args: argparse.Namespace) -> int:
    from . import SyncCachecoreClient
    from .errors import CachecoreConfigError

    missing = _missing_setting(args)
    if missing:
        return _fail(missing)
    try:
        with SyncCachecoreClient(
            gateway_url=args.gateway_url, timeout=args.timeout, max_retries=0
        ) as cc:
            result = cc.ping()
    except CachecoreConfigError as exc:
        return _fail(str(exc))
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        print(result)
    return 0 if result.ok else 1


def add_token(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("token", help="tenant token tools")
    tsub = p.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    inspect = tsub.add_parser(
        "inspect",
        help="show tenant id, scope and expiry without printing the token",
        description=f"Read a tenant token's claims (not verified). Default: ${TOKEN_ENV}; '-' reads stdin.",
    )
    inspect.add_argument(
        "token", nargs="?", help=f"the token, '-' for stdin (default: ${TOKEN_ENV})"
    )
    inspect.add_argument("--json", action="store_true", help="one JSON document on stdout")
    inspect.set_defaults(run=run_token_inspect)
    mint = tsub.add_parser(
        "mint",
        allow_abbrev=False,  # "--secret VALUE" must not be taken for --secret-file
        help="mint a tenant token for the reference gateway (cachecore gateway)",
        description=(
            "Sign a tenant token with the reference gateway's HS256 secret and print it "
            f"alone on stdout. The secret comes from ${SECRET_ENV} or --secret-file, "
            "never from the command line (it would show in ps and shell history)."
        ),
    )
    mint.add_argument("--tenant", required=True, help="the tenant id (its cache namespace)")
    mint.add_argument(
        "--ttl", type=float, default=3600.0, help="seconds until it expires (default 3600)"
    )
    mint.add_argument("--roles", nargs="+", default=None, metavar="ROLE", help="role claims")
    mint.add_argument("--scope", default=None, help="scope claim")
    mint.add_argument(
        "--secret-file",
        metavar="PATH",
        help=f"file holding the secret, at least 32 bytes (default: ${SECRET_ENV}); '-' for stdin",
    )
    mint.add_argument("--secret", nargs="?", action=_RefuseSecretValue, help=argparse.SUPPRESS)
    mint.set_defaults(run=run_token_mint)


class _RefuseSecretValue(argparse.Action):
    """``--secret VALUE`` on ``token mint``: refused without repeating the value."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        parser.error(
            f"--secret is not accepted: the secret would show in ps and shell history;"
            f" set ${SECRET_ENV} or pass --secret-file PATH ('-' for stdin)"
        )


#: The reference gateway's signing secret, as ``cachecore gateway`` reads it.
SECRET_ENV = "CACHECORE_JWT_SECRET"


class SecretUnusable(Exception):
    """The gateway secret is missing, unreadable or too weak; the message says which, never it."""


def read_secret(secret_file: str | None) -> str:
    """The reference gateway's HS256 secret, as ``cachecore gateway`` and ``token mint`` read it.

    From ``secret_file`` (``'-'``: the first line of stdin) with trailing newlines
    stripped, else ``$CACHECORE_JWT_SECRET``. Raises ``SecretUnusable`` when there
    is none, the file cannot be read, or the secret is shorter than 32 bytes or blank.
    """
    from .testing._jwt import secret_problem

    if secret_file == "-":
        secret = sys.stdin.readline().rstrip("\r\n")
        where = "the secret read from stdin"
    elif secret_file:
        try:
            with open(secret_file, encoding="utf-8") as f:
                secret = f.read().rstrip("\r\n")
        except OSError as exc:
            raise SecretUnusable(
                f"cannot read the secret file {secret_file!r}: {exc.strerror}"
            ) from None
        where = f"the secret in {secret_file!r}"
    else:
        secret = os.environ.get(SECRET_ENV, "")
        where = f"${SECRET_ENV}"
    if not secret:
        raise SecretUnusable(f"no secret: set {SECRET_ENV} or pass --secret-file PATH")
    problem = secret_problem(secret)
    if problem is not None:
        raise SecretUnusable(f"{where}: {problem}")
    return secret


def run_token_mint(args: argparse.Namespace) -> int:
    from .testing import mint_token
    from .testing._jwt import MAX_ROLE_CHARS, MAX_ROLES, MAX_TENANT_CHARS, acceptable_name

    try:
        secret = read_secret(args.secret_file)
    except SecretUnusable as exc:
        return _fail(str(exc))
    if not acceptable_name(args.tenant, MAX_TENANT_CHARS):
        return _fail(
            f"--tenant must be printable, not blank and at most {MAX_TENANT_CHARS} characters"
        )
    roles = args.roles or []
    if len(roles) > MAX_ROLES or not all(r and acceptable_name(r, MAX_ROLE_CHARS) for r in roles):
        return _fail(
            f"--roles: at most {MAX_ROLES}, each printable, not blank and at most"
            f" {MAX_ROLE_CHARS} characters (the gateway refuses others)"
        )
    if not args.ttl > 0:
        return _fail(f"--ttl must be a positive number of seconds, got {args.ttl}")
    print(mint_token(secret, args.tenant, expires_in=args.ttl, roles=args.roles, scope=args.scope))
    return 0


def run_token_inspect(args: argparse.Namespace) -> int:
    from ._auth import read_token

    token = args.token
    if token == "-":
        token = sys.stdin.readline().strip()
    if not token:
        token = os.environ.get(TOKEN_ENV, "")
    if not token:
        return _fail(f"no token: pass one, '-' for stdin, or set {TOKEN_ENV}")
    info = read_token(token)
    if info is None:
        return _fail("not a readable tenant token (expected cc_<env>_<id>.<JWT> or a JWT)")
    fields: dict[str, Any] = {
        "tenant_id": info.tenant_id,
        "prefix": info.prefix or None,
        "roles": list(info.roles),
        "scope": info.scope,
        "expires_at": info.expires_at.isoformat() if info.expires_at else None,
        "expired": info.expired,
        "verified": False,
    }
    if args.json:
        print(json.dumps(fields, indent=2))
    else:
        for key, value in fields.items():
            print(f"{key + ':':<11} {value if value not in (None, []) else '-'}")
    return 0


def _fail(message: str) -> int:
    print(f"cachecore: {message}", file=sys.stderr)
    return 2
