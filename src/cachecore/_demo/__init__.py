"""``python -m cachecore demo``: the three-rung adoption ladder, offline, in a few seconds.

Starts the reference gateway on loopback (a fresh random secret, the offline
model with a simulated upstream latency), then walks the ladder of the user
documentation with the real OpenAI SDK, async and sync:

1. base URL swap: a plain ``OpenAI(base_url=...)`` sends no ``X-CacheCore-Token``,
   so the gateway answers ``BYPASS``;
2. tenant isolation: ``CachecoreClient``'s transport adds the token: a miss, an
   exact hit, a paraphrase served by L2, and another tenant that sees nothing;
3. dependency invalidation: a tagged answer is a hit until ``invalidate`` evicts
   it, then a miss again; a ``bypass=True`` call skips the cache.

Statuses are read through the request-context handle (``ctx.last``), the path
that also works under frameworks hiding response headers. Every step states the
status it expects: any other answer makes the demo exit non-zero.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from typing import TextIO

from ._plan import TENANT_A, TENANT_B, Row

__all__ = ["run_demo"]

DEFAULT_LATENCY = 0.25
INSTALL_HINT = "pip install 'cachecore-python[demo]'"

_COLORS = {
    "HIT_L1": "32",  # green
    "HIT_L1_STALE": "32",
    "HIT_L2": "32",
    "MISS": "33",  # yellow
    "BYPASS": "36",  # cyan
    "ok": "35",  # magenta: an invalidation
}


RUNGS = {
    1: "Rung 1: base URL swap, OpenAI(base_url=gateway/v1, api_key=token)",
    2: "Rung 2: tenant isolation, CachecoreClient transport under the SDK",
    3: "Rung 3: dependency invalidation, request_context(deps=...) and invalidate()",
}
RUNG_NOTES = {
    1: (
        "no X-CacheCore-Token is sent, so the gateway forwards without caching (BYPASS);"
        " rung 2 adds the token."
    ),
}


# -- output -----------------------------------------------------------------------

_HEADERS = ("#", "step", "client", "tenant", "status", "similarity", "age", "latency")


def _cells(index: int, row: Row) -> tuple[str, ...]:
    return (
        str(index),
        row.step.label,
        row.client,
        row.step.tenant,
        row.status,
        "-" if row.similarity is None else f"{row.similarity:.4f}",
        "-" if row.age is None else f"{row.age} s",
        f"{row.latency_ms:.0f} ms",
    )


def _table(rows: list[Row], paint: Callable[[str, str], str]) -> list[str]:
    """Aligned lines; rung headings between groups; status cells coloured after padding."""
    numbered = [(i, row, _cells(i, row)) for i, row in enumerate(rows, 1)]
    widths = [len(h) for h in _HEADERS]
    for _, _, cells in numbered:
        widths = [max(w, len(c)) for w, c in zip(widths, cells)]
    right = {0, 5, 6, 7}

    def line(cells: tuple[str, ...], status: str | None = None) -> str:
        out = []
        for col, (cell, width) in enumerate(zip(cells, widths)):
            text = cell.rjust(width) if col in right else cell.ljust(width)
            if col == 4 and status is not None:
                text = paint(text, _COLORS.get(status, "31"))
            out.append(text)
        return "  ".join(out).rstrip()

    lines = [line(_HEADERS), "  ".join("-" * w for w in widths)]
    current: tuple[int, str] | None = None
    for _, row, cells in numbered:
        group = (row.step.rung, row.client)
        if group != current:
            current = group
            lines.append("")
            lines.append(paint(f"{RUNGS[row.step.rung]}  [{row.client}]", "1"))
            note = RUNG_NOTES.get(row.step.rung)
            if note:
                lines.append(f"  note: {note}")
        lines.append(line(cells, row.status))
    return lines


def _summary(rows: list[Row]) -> list[str]:
    calls = [r for r in rows if r.step.invalidate is None]
    hits = [r for r in calls if r.status.startswith("HIT")]
    misses = [r for r in calls if r.status == "MISS"]
    bypasses = [r for r in calls if r.status == "BYPASS"]
    l1 = sum(1 for r in hits if r.status.startswith("HIT_L1"))
    median_miss = statistics.median(r.latency_ms for r in misses) if misses else 0.0
    saved_ms = sum(max(0.0, median_miss - r.latency_ms) for r in hits)
    cacheable = len(hits) + len(misses)
    rate = 100.0 * len(hits) / cacheable if cacheable else 0.0
    mean_hit = statistics.mean(r.latency_ms for r in hits) if hits else 0.0
    return [
        f"Summary: {len(calls)} LLM calls: {len(hits)} hits ({l1} L1, {len(hits) - l1} L2),"
        f" {len(misses)} misses, {len(bypasses)} bypasses; hit rate {rate:.0f}% of cacheable calls",
        f"Latency: median miss {median_miss:.0f} ms, mean hit {mean_hit:.0f} ms",
        f"Time saved: {saved_ms / 1000:.2f} s"
        f" (sum over the {len(hits)} hits of median miss latency minus hit latency)",
    ]


def _check(rows: list[Row]) -> str | None:
    """The first step whose status is not the expected one, as a one-line message."""
    for i, row in enumerate(rows, 1):
        if row.status != row.step.expect:
            return (
                f"step {i} ({row.client}, {row.step.label}) answered {row.status},"
                f" expected {row.step.expect}"
            )
    return None


def _painter(color: bool) -> Callable[[str, str], str]:
    if not color:
        return lambda text, _code: text
    return lambda text, code: f"\x1b[{code}m{text}\x1b[0m"


def run_demo(
    *, latency: float = DEFAULT_LATENCY, color: bool | None = None, out: TextIO | None = None
) -> int:
    """Run the offline demo, print its table to ``out`` (stdout); return the exit code.

    ``latency`` is the simulated upstream latency of the offline model, in seconds.
    ``color=None`` colours only a terminal, and never when ``NO_COLOR`` is set.
    """
    stream = out if out is not None else sys.stdout
    err = sys.stderr if out is None else stream

    def fail(message: str) -> int:
        print(f"cachecore demo: {message}", file=err)
        return 1

    if latency < 0 or latency > 10:
        return fail(f"--latency must be between 0 and 10 seconds, got {latency:g}")
    missing = [m for m in ("openai", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        return fail(f"{' and '.join(missing)} not installed; run: {INSTALL_HINT}")
    if color is None:
        color = stream.isatty() and "NO_COLOR" not in os.environ
    paint = _painter(color)

    from cachecore.testing import GatewayConfig, OfflineModel, ReferenceGateway, serve

    gateway = ReferenceGateway(
        GatewayConfig(secret=secrets.token_urlsafe(32), upstream=OfflineModel(latency=latency))
    )
    tokens = {tenant: gateway.mint_token(tenant) for tenant in (TENANT_A, TENANT_B)}
    try:
        with serve(gateway) as url:
            print(
                paint("Cachecore demo", "1") + f": reference gateway on {url}, offline model"
                f" with {latency * 1000:.0f} ms simulated upstream latency, tenants"
                f" {TENANT_A!r} and {TENANT_B!r}",
                file=stream,
            )
            started = time.perf_counter()
            from cachecore._demo._async.walk import walk as walk_async
            from cachecore._demo._sync.walk import walk as walk_sync

            rows = asyncio.run(walk_async(url, tokens, "async"))
            rows += walk_sync(url, tokens, "sync")
            elapsed = time.perf_counter() - started
    except Exception as exc:  # a demo reports, it does not dump a traceback
        return fail(f"{type(exc).__name__}: {exc}".splitlines()[0])

    print("", file=stream)
    for text in _table(rows, paint):
        print(text, file=stream)
    print("", file=stream)
    for text in _summary(rows):
        print(text, file=stream)
    stats = gateway.stats()
    print(
        f"Gateway: {stats.upstream_calls} upstream calls, {stats.invalidations} invalidations"
        f" ({stats.evicted_invalidate} entries evicted), walk took {elapsed:.1f} s",
        file=stream,
    )
    problem = _check(rows)
    if problem is not None:
        return fail(problem)
    print(paint("All steps answered as expected.", "32"), file=stream)
    return 0
