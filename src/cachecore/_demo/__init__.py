"""``python -m cachecore demo``: the three-rung adoption ladder, offline, in a few seconds.

Starts the reference gateway on loopback (a fresh random secret, the offline
model with a simulated upstream latency), then walks the ladder of the user
documentation with the real OpenAI SDK, async by default (``--sync``: the sync
twin of the walk, with ``OpenAI`` and ``SyncCachecoreClient``):

1. base URL swap: a plain ``OpenAI(base_url=...)`` sends no ``X-CacheCore-Token``,
   so the gateway answers ``BYPASS``;
2. tenant isolation: ``CachecoreClient``'s transport adds the token: a miss, an
   exact hit, a paraphrase served by L2, and another tenant that sees nothing;
3. dependency invalidation: a tagged answer is a hit until ``invalidate`` evicts
   it, then a miss again; a ``bypass=True`` call skips the cache.

Each row is printed (and flushed) as its step completes, under a header printed
first; no line is wider than ``MAX_WIDTH`` columns. The summary counts what the
hits saved: time (against the median miss), tokens (the ``usage`` of the cached
answers, prompt + completion) and their cost at a stated price per million tokens.

Statuses are read through the request-context handle (``ctx.last``), the path
that also works under frameworks hiding response headers. Every step states the
status it expects: any other answer makes the demo exit non-zero, naming the step.
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from typing import TextIO

from . import _plan
from ._plan import TENANT_A, TENANT_B, Row, Step

__all__ = ["run_demo"]

DEFAULT_LATENCY = 0.25
#: The price the summary puts on the tokens that cache hits saved, in US dollars per
#: million tokens (prompt and completion alike): an illustrative round figure, not any
#: provider's list price; ``--price-per-million`` sets your model's.
DEFAULT_PRICE_PER_MILLION = 2.0
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
        "note: no X-CacheCore-Token is sent, so the gateway forwards without caching",
        "(BYPASS); rung 2 adds the token.",
    ),
}


# -- output -----------------------------------------------------------------------

#: No line of the demo's output is wider than this (ANSI colour codes aside).
MAX_WIDTH = 100

_HEADERS = ("#", "step", "tenant", "status", "similarity", "age", "latency", "tokens")
_RIGHT = {0, 4, 5, 6, 7}
_STEP = 1
_STATUS = 3


def _cells(index: int, row: Row) -> tuple[str, ...]:
    return (
        str(index),
        row.step.label,
        row.step.tenant,
        row.status,
        "-" if row.similarity is None else f"{row.similarity:.4f}",
        "-" if row.age is None else f"{row.age} s",
        f"{row.latency_ms:.0f} ms",
        "-" if row.tokens is None else str(row.tokens),
    )


class _Table:
    """The table, printed a line at a time: the header first, then each row as it comes.

    Column widths are fixed before the first row, from the plan (labels, tenants,
    expected statuses) and the headers; a wider cell than planned (an unexpected
    status, a slow call) takes its room from the step column's padding, then from
    its label, so that no line is wider than ``MAX_WIDTH``.
    """

    def __init__(self, steps: list[Step], paint: Callable[[str, str], str]) -> None:
        self.paint = paint
        planned = [
            str(len(steps)),
            max((s.label for s in steps), key=len, default=""),
            max((s.tenant for s in steps), key=len, default=""),
            max((s.expect for s in steps), key=len, default=""),
            "0.0000",
            "0 s",
            "1000 ms",
            "1000",
        ]
        self.widths = [max(len(h), len(c)) for h, c in zip(_HEADERS, planned)]
        rest = sum(w for i, w in enumerate(self.widths) if i != _STEP) + 2 * (len(_HEADERS) - 1)
        self.widths[_STEP] = min(self.widths[_STEP], MAX_WIDTH - rest)
        self.rung: int | None = None
        self.count = 0

    def _line(self, cells: tuple[str, ...], color: str | None = None) -> str:
        texts = [
            cell.rjust(width) if col in _RIGHT else cell.ljust(width)
            for col, (cell, width) in enumerate(zip(cells, self.widths))
        ]
        over = len("  ".join(texts).rstrip()) - MAX_WIDTH
        if over > 0:
            room = max(0, len(texts[_STEP]) - over)
            label = texts[_STEP].rstrip()
            texts[_STEP] = (
                label.ljust(room) if len(label) <= room else label[: max(0, room - 3)] + "..."
            )
        if color is not None:
            texts[_STATUS] = self.paint(texts[_STATUS], color)
        return "  ".join(texts).rstrip()

    def header(self) -> list[str]:
        return [self._line(_HEADERS), "  ".join("-" * w for w in self.widths)]

    def add(self, row: Row) -> list[str]:
        """The lines for the next row: a rung heading first when the rung changes."""
        self.count += 1
        lines = []
        if row.step.rung != self.rung:
            self.rung = row.step.rung
            lines += ["", self.paint(RUNGS[self.rung], "1")]
            lines += [f"  {note}" for note in RUNG_NOTES.get(self.rung, ())]
        expected = row.status == row.step.expect
        color = _COLORS.get(row.status, "31") if expected else "31"
        lines.append(self._line(_cells(self.count, row), color))
        return lines


def _dollars(amount: float) -> str:
    """``$2.00``, ``$0.075``, ``$0.00010``: cents, or two significant digits below them."""
    if amount <= 0:
        return "$0.00"
    decimals = max(2, 1 - math.floor(math.log10(amount)))
    return f"${amount:.{decimals}f}"


def _summary(rows: list[Row], price_per_million: float) -> list[str]:
    calls = [r for r in rows if r.step.invalidate is None]
    hits = [r for r in calls if r.status.startswith("HIT")]
    misses = [r for r in calls if r.status == "MISS"]
    bypasses = [r for r in calls if r.status == "BYPASS"]
    l1 = sum(1 for r in hits if r.status.startswith("HIT_L1"))
    median_miss = statistics.median(r.latency_ms for r in misses) if misses else 0.0
    saved_ms = sum(max(0.0, median_miss - r.latency_ms) for r in hits)
    saved_tokens = sum(r.tokens or 0 for r in hits)
    cacheable = len(hits) + len(misses)
    rate = 100.0 * len(hits) / cacheable if cacheable else 0.0
    mean_hit = statistics.mean(r.latency_ms for r in hits) if hits else 0.0
    return [
        f"{len(calls)} LLM calls: {len(hits)} hits ({l1} L1, {len(hits) - l1} L2),"
        f" {len(misses)} misses, {len(bypasses)} bypasses; hit rate {rate:.0f}% of cacheable calls",
        f"Latency: median miss {median_miss:.0f} ms, mean hit {mean_hit:.0f} ms",
        f"Time saved: {saved_ms / 1000:.2f} s"
        f" (median miss latency minus hit latency, summed over the {len(hits)} hits)",
        f"Tokens saved: {saved_tokens} (prompt + completion usage of the {len(hits)} cached answers)",
        f"Cost saved: {_dollars(saved_tokens * price_per_million / 1e6)}"
        f" at {_dollars(price_per_million)} per million tokens (--price-per-million)",
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


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def run_demo(
    *,
    latency: float = DEFAULT_LATENCY,
    color: bool | None = None,
    out: TextIO | None = None,
    sync: bool = False,
    price_per_million: float = DEFAULT_PRICE_PER_MILLION,
) -> int:
    """Run the offline demo, print its table to ``out`` (stdout); return the exit code.

    ``latency`` is the simulated upstream latency of the offline model, in seconds.
    ``color=None`` colours only a terminal, and never when ``NO_COLOR`` is set.
    ``sync=True`` walks with the sync SDK (``OpenAI``, ``SyncCachecoreClient``)
    instead of the async one. ``price_per_million`` (US dollars per million tokens)
    prices the tokens the cache hits saved. Each row is printed, and flushed, as its
    step completes.
    """
    stream = out if out is not None else sys.stdout
    err = sys.stderr if out is None else stream

    def fail(message: str) -> int:
        stream.flush()
        print(f"cachecore demo: {message}", file=err, flush=True)
        return 1

    def say(*lines: str) -> None:
        for text in lines:
            print(text, file=stream)
        stream.flush()

    if not 0 <= latency <= 10:
        return fail(f"--latency must be between 0 and 10 seconds, got {latency:g}")
    if not 0 <= price_per_million < math.inf:
        return fail(f"--price-per-million must be a dollar amount >= 0, got {price_per_million:g}")
    missing = [m for m in ("openai", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        return fail(f"{' and '.join(missing)} not installed; run: {INSTALL_HINT}")
    if color is None:
        color = stream.isatty() and "NO_COLOR" not in os.environ
    paint = _painter(color)
    flavour = "sync" if sync else "async"
    sdk = "OpenAI + SyncCachecoreClient" if sync else "AsyncOpenAI + CachecoreClient"
    say(paint("Cachecore demo", "1") + f": the adoption ladder with the {flavour} SDK ({sdk})")

    from cachecore.testing import GatewayConfig, OfflineModel, ReferenceGateway, serve

    gateway = ReferenceGateway(
        GatewayConfig(secret=secrets.token_urlsafe(32), upstream=OfflineModel(latency=latency))
    )
    tokens = {tenant: gateway.mint_token(tenant) for tenant in (TENANT_A, TENANT_B)}
    table = _Table(_plan.plan(), paint)
    try:
        with serve(gateway) as url:
            say(
                f"Reference gateway on {url} (tenants {TENANT_A!r} and {TENANT_B!r}),",
                f"offline model with {latency * 1000:.0f} ms simulated upstream latency",
                "",
                *table.header(),
            )
            started = time.perf_counter()

            def report(row: Row) -> None:
                say(*table.add(row))

            if sync:
                from cachecore._demo._sync.walk import walk as walk_sync

                rows = walk_sync(url, tokens, flavour, report)
            else:
                from cachecore._demo._async.walk import walk as walk_async

                rows = asyncio.run(walk_async(url, tokens, flavour, report))
            elapsed = time.perf_counter() - started
    except Exception as exc:  # a demo reports, it does not dump a traceback
        return fail(f"{type(exc).__name__}: {exc}".splitlines()[0])

    stats = gateway.stats()
    say(
        "",
        *_summary(rows, price_per_million),
        f"Gateway: {_plural(stats.upstream_calls, 'upstream call')},"
        f" {_plural(stats.invalidations, 'invalidation')}"
        f" ({_plural(stats.evicted_invalidate, 'entry')} evicted), walk took {elapsed:.1f} s",
    )
    problem = _check(rows)
    if problem is not None:
        return fail(problem)
    say(paint("All steps answered as expected.", "32"))
    return 0
