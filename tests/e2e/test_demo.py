"""``python -m cachecore demo``: runs offline, walks the ladder, says what happened."""

from __future__ import annotations

import importlib.util
import io
import os
import re
import subprocess
import sys

import pytest

from cachecore import _demo
from cachecore._demo import _plan, run_demo

pytestmark = pytest.mark.e2e

ROW = re.compile(
    r"^\s*(\d+)\s{2}(.+?)\s{2,}(async|sync)\s+(\w+)\s+(\S+)\s+(\S+)\s+(\S+(?: s)?)\s+(\d+) ms$"
)


def rows_of(output: str) -> list[tuple[str, str, str]]:
    """(step label, client, status) of every table row."""
    found = []
    for line in output.splitlines():
        match = ROW.match(line)
        if match:
            found.append((match.group(2).strip(), match.group(3), match.group(5)))
    return found


def test_run_demo_walks_the_ladder() -> None:
    out = io.StringIO()
    assert run_demo(latency=0.05, color=False, out=out) == 0
    text = out.getvalue()
    assert "\x1b[" not in text, "color=False must print no escape codes"
    rows = rows_of(text)
    assert len(rows) == 20, text
    for client in ("async", "sync"):
        statuses = [status for _, c, status in rows if c == client]
        assert statuses == [
            "BYPASS", "MISS", "HIT_L1", "HIT_L2", "MISS", "MISS", "HIT_L1", "ok", "MISS", "BYPASS",
        ], text  # fmt: skip
        labels = [label for label, c, _ in rows if c == client]
        at = next(i for i, label in enumerate(labels) if label.startswith("invalidate("))
        # The invalidation turns the tagged hit back into a miss.
        assert statuses[at - 1 : at + 2] == ["HIT_L1", "ok", "MISS"]
    assert "rung 2 adds the token" in text
    assert re.search(r"HIT_L2\s+0\.9\d{3}", text), "an L2 hit shows its similarity"
    summary = re.search(r"(\d+) hits \((\d+) L1, (\d+) L2\), (\d+) misses, (\d+) bypasses", text)
    assert summary is not None
    assert summary.groups() == ("6", "4", "2", "8", "4")
    saved = re.search(r"Time saved: (\d+\.\d+) s", text)
    assert saved is not None
    assert float(saved.group(1)) > 0
    assert "All steps answered as expected." in text


def test_demo_command_runs_offline_in_a_subprocess() -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "cachecore", "demo", "--latency", "0.02"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stdout
    assert len(rows_of(done.stdout)) == 20
    assert "Time saved:" in done.stdout


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


def test_demo_reports_an_unexpected_status(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _plan.plan

    def wrong_plan(client: str) -> list[_plan.Step]:
        steps = plan(client)
        steps[2] = _plan.Step(2, "expects the impossible", steps[2].tenant, "MISS", steps[2].prompt)
        return steps

    monkeypatch.setattr(_plan, "plan", wrong_plan)
    out = io.StringIO()
    assert run_demo(latency=0.0, color=False, out=out) == 1
    last = out.getvalue().strip().splitlines()[-1]
    assert (
        last
        == "cachecore demo: step 3 (async, expects the impossible) answered HIT_L1, expected MISS"
    )
