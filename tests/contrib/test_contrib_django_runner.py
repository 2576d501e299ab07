"""The Django integration under Django's own test runner, not pytest's.

Runs ``python -m django test`` on ``django_runner/runner_checks.py`` in a
subprocess and checks that every case ran and passed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("django")
pytest.importorskip("openai")

HERE = Path(__file__).resolve().parent


def test_django_test_runner_passes() -> None:
    env = dict(os.environ)
    paths = [str(HERE / "django_runner"), str(HERE), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "django",
            "test",
            "runner_checks",
            "--settings=runner_settings",
            "-v",
            "2",
        ],
        cwd=HERE / "django_runner",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, report[-4000:]
    assert "Ran 4 tests" in report, report[-4000:]
    assert "OK" in report.splitlines()[-1] or "\nOK" in report
