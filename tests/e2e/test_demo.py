"""``python -m cachecore demo``: runs offline, walks the ladder once, says what happened."""

from __future__ import annotations

import importlib.util
import io
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cachecore import _demo
from cachecore.__main__ import build_parser
from cachecore._demo import _plan, run_demo
from cachecore._demo._async import walk as async_walk
from cachecore._demo._sync import walk as sync_walk

pytestmark = pytest.mark.e2e

# #, step, tenant, status, similarity, age, latency, tokens
ROW = re.compile(
    r"^\s*(\d+)\s{2}(.+?)\s{2,}(acme|globex)\s+(\w+)\s+(\S+)\s+(-|\d+ s)\s+(\d+) ms\s+(-|\d+)$"
)
EXPECTED = [
    "BYPASS", "MISS", "HIT_L1", "HIT_L2", "MISS", "MISS", "HIT_L1", "HIT_L2", "ok", "MISS", "BYPASS"
]  # fmt: skip
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def rows_of(output: str) -> list[tuple[str, str, str]]:
    """(step label, status, tokens) of every table row."""
    found = []
    for line in output.splitlines():
        match = ROW.match(line)
        if match:
            found.append((match.group(2).strip(), match.group(4), match.group(8)))
    return found


def assert_narrow(text: str) -> None:
    wide = [line for line in ANSI.sub("", text).splitlines() if len(line) > _demo.MAX_WIDTH]
    assert not wide, f"lines over {_demo.MAX_WIDTH} columns: {wide}"


def saved_tokens(text: str) -> int:
    """The summary's token figure, checked against the table's hit rows."""
    match = re.search(r"^Tokens saved: (\d+) \(", text, re.MULTILINE)
    assert match is not None, text
    hits = [int(tokens) for _, status, tokens in rows_of(text) if status.startswith("HIT")]
    assert int(match.group(1)) == sum(hits) > 0, text
    return sum(hits)


def offline_env() -> dict[str, str]:
    env = {**os.environ, "NO_COLOR": "1"}
    # No proxy to reach; and stdout a block-buffered pipe, as for a user's `| tee`.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        env.pop(name, None)
    env.pop("PYTHONUNBUFFERED", None)
    return env


@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
def test_run_demo_walks_the_ladder_once(sync: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # One walk, with the flavour asked for: the other twin is never called.
    used, unused = (sync_walk, async_walk) if sync else (async_walk, sync_walk)
    calls: list[str] = []
    real = used.walk

    def counted(*args: Any) -> Any:
        calls.append(args[2])
        return real(*args)

    def never(*args: Any) -> Any:
        raise AssertionError("the other twin's walk ran")

    monkeypatch.setattr(used, "walk", counted)
    monkeypatch.setattr(unused, "walk", never)
    out = io.StringIO()
    assert run_demo(latency=0.05, color=False, out=out, sync=sync) == 0, out.getvalue()
    text = out.getvalue()
    flavour = "sync" if sync else "async"
    assert calls == [flavour]
    assert f"with the {flavour} SDK" in text.splitlines()[0]
    assert "\x1b[" not in text, "color=False must print no escape codes"
    assert_narrow(text)
    rows = rows_of(text)
    assert [status for _, status, _ in rows] == EXPECTED, text
    labels = [label for label, _, _ in rows]
    at = next(i for i, label in enumerate(labels) if label.startswith("invalidate("))
    # Tagged: MISS, HIT_L1, a paraphrase with the same Dep HIT_L2, and the
    # invalidation turns the tagged call back into a miss.
    tagged = [status for _, status, _ in rows][at - 3 : at + 2]
    assert tagged == ["MISS", "HIT_L1", "HIT_L2", "ok", "MISS"]
    assert all(tokens.isdigit() for _, status, tokens in rows if status != "ok"), text
    assert "rung 2 adds the token" in text
    assert re.search(r"HIT_L2\s+0\.9\d{3}", text), "an L2 hit shows its similarity"
    summary = re.search(r"(\d+) hits \((\d+) L1, (\d+) L2\), (\d+) misses, (\d+) bypasses", text)
    assert summary is not None
    assert summary.groups() == ("4", "2", "2", "4", "2")
    saved = re.search(r"Time saved: (\d+\.\d+) s", text)
    assert saved is not None
    assert float(saved.group(1)) > 0
    tokens = saved_tokens(text)
    cost = _demo._dollars(tokens * _demo.DEFAULT_PRICE_PER_MILLION / 1e6)
    assert f"Cost saved: {cost} at $2.00 per million tokens" in text
    assert text.rstrip().endswith("All steps answered as expected.")


def test_rows_are_printed_as_their_steps_complete() -> None:
    """The README's first command, as a user runs it: the header first, then a row at a time."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cachecore", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=offline_env(),
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    seen: list[tuple[float, str]] = []
    started = time.monotonic()
    for line in proc.stdout:
        seen.append((time.monotonic() - started, line.rstrip("\n")))
    stderr = proc.stderr.read()
    assert proc.wait(timeout=60) == 0, stderr
    text = "\n".join(line for _, line in seen)
    assert_narrow(text)
    assert "\x1b[" not in text
    assert len(rows_of(text)) == len(EXPECTED), text
    header = next(i for i, (_, line) in enumerate(seen) if line.lstrip().startswith("#  step"))
    first_row = next(i for i, (_, line) in enumerate(seen) if ROW.match(line))
    summary = next(i for i, (_, line) in enumerate(seen) if line.startswith("Time saved:"))
    assert header < first_row < summary
    # Six calls of 250 ms reach the offline model after the first row: a table printed
    # only at the end (or an unflushed pipe) would deliver every line at once.
    assert seen[summary][0] - seen[first_row][0] > 1.0, seen


def test_sync_flag_in_a_subprocess() -> None:
    done = subprocess.run(
        [
            sys.executable, "-m", "cachecore", "demo", "--sync", "--latency", "0.02",
            "--price-per-million", "1000000",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=offline_env(),
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert_narrow(done.stdout + done.stderr)
    assert "with the sync SDK (OpenAI + SyncCachecoreClient)" in done.stdout
    assert [status for _, status, _ in rows_of(done.stdout)] == EXPECTED, done.stdout
    tokens = saved_tokens(done.stdout)
    # A dollar per token: the cost is the token count.
    assert f"Cost saved: ${tokens}.00 at $1000000.00 per million tokens" in done.stdout


def test_colored_output_stays_narrow() -> None:
    out = io.StringIO()
    assert run_demo(latency=0.0, color=True, out=out) == 0
    assert "\x1b[" in out.getvalue()
    assert_narrow(out.getvalue())


def test_price_default_is_documented_and_checked() -> None:
    args = build_parser().parse_args(["demo"])
    assert args.price_per_million == _demo.DEFAULT_PRICE_PER_MILLION
    assert args.sync is False
    for price in (-1.0, float("nan"), float("inf")):
        out = io.StringIO()
        assert run_demo(price_per_million=price, out=out) == 1
        assert out.getvalue().startswith("cachecore demo: --price-per-million must be"), price


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (0.0, "$0.00"),
        (2.0, "$2.00"),
        (0.075, "$0.075"),
        (0.0000904, "$0.000090"),
        (12.345, "$12.35"),
    ],
)
def test_dollars(amount: float, text: str) -> None:
    assert _demo._dollars(amount) == text


def test_a_long_unexpected_status_keeps_lines_narrow() -> None:
    """A wider cell than planned takes its room from the step column."""
    steps = _plan.plan()
    table = _demo._Table(steps, lambda text, _code: text)
    step = max(steps, key=lambda s: len(s.label))
    row = _plan.Row(step, "async", "HIT_L1_STALE", None, 12345, 12345.0, 123456)
    (line,) = table.add(row)[-1:]
    assert len(line) <= _demo.MAX_WIDTH
    assert "HIT_L1_STALE" in line
    assert "12345 ms" in line
    assert "..." in line


def test_demo_explains_a_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "uvicorn" else real(name)

    monkeypatch.setattr(_demo.importlib.util, "find_spec", find_spec)
    out = io.StringIO()
    assert run_demo(out=out) == 1
    assert out.getvalue().strip() == (
        "cachecore demo: uvicorn not installed; run: pip install 'cachecore-python[demo]'"
    )


@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
def test_demo_reports_an_unexpected_status(sync: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    plan: Callable[[], list[_plan.Step]] = _plan.plan

    def wrong_plan() -> list[_plan.Step]:
        steps = plan()
        steps[2] = _plan.Step(2, "expects the impossible", steps[2].tenant, "MISS", steps[2].prompt)
        return steps

    monkeypatch.setattr(_plan, "plan", wrong_plan)
    out = io.StringIO()
    assert run_demo(latency=0.0, color=False, out=out, sync=sync) == 1
    lines = out.getvalue().strip().splitlines()
    flavour = "sync" if sync else "async"
    assert lines[-1] == (
        f"cachecore demo: step 3 ({flavour}, expects the impossible) answered HIT_L1, expected MISS"
    )
    assert len(rows_of(out.getvalue())) == len(EXPECTED), "every step still runs and is shown"
    assert "All steps answered as expected." not in out.getvalue()


def test_readme_shows_the_current_table_header() -> None:
    """The README's sample output keeps the demo's columns (and the width limit)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    sample = readme.split("## The demo", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    assert_narrow(sample)
    header = _demo._Table(_plan.plan(), lambda text, _code: text).header()
    assert "\n".join(header) in sample
