"""Helpers shared by the benchmark scripts: timing, statistics, subprocess plumbing.

Every script runs standalone (``python benchmarks/bench_x.py``) and prints one
JSON object on its last stdout line; ``run.py`` collects them into the table.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: Where ``run.py`` installs cachecore-python 0.1.0 (``pip --target``), unless overridden.
V010_DIR = Path(os.environ.get("CACHECORE_V010_DIR", ROOT / ".bench" / "cc010"))


def median(values: list[float]) -> float:
    return statistics.median(values)


def emit(result: dict[str, Any]) -> None:
    """Print the result as the last line of stdout (what ``run_script`` reads)."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def env_for(impl: str) -> dict[str, str]:
    """Environment for a subprocess that imports ``cachecore`` as ``impl`` ('ours' or 'v010')."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if impl == "v010":
        if not (V010_DIR / "cachecore" / "__init__.py").exists():
            raise RuntimeError(
                f"cachecore-python 0.1.0 is not installed in {V010_DIR}: run "
                f"pip install --no-deps --target {V010_DIR} cachecore-python==0.1.0"
            )
        env["PYTHONPATH"] = str(V010_DIR)  # ahead of site-packages (and our editable .pth)
    return env


def run_script(
    script: str, *args: str, impl: str = "ours", timeout: float | None = None
) -> dict[str, Any]:
    """Run ``benchmarks/<script>`` in a fresh interpreter; return its JSON result.

    On a timeout the result is ``{"timeout": <seconds>}``.
    """
    cmd = [sys.executable, str(HERE / script), *args]
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, env=env_for(impl), capture_output=True, text=True, timeout=timeout, cwd=ROOT
        )
    except subprocess.TimeoutExpired:
        return {"timeout": timeout, "elapsed": time.perf_counter() - start}
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1])


def load_v010() -> Any:
    """Import cachecore-python 0.1.0 under its own name, then forget it in ``sys.modules``.

    Both versions are the ``cachecore`` package; 0.1.0's functions keep their own
    module globals, so after this the current ``cachecore`` imports normally and
    both can be timed side by side in one process. Returns 0.1.0's package module.
    """
    saved = {k: v for k, v in sys.modules.items() if k == "cachecore" or k.startswith("cachecore.")}
    for k in saved:
        del sys.modules[k]
    sys.path.insert(0, str(V010_DIR))
    try:
        import cachecore as v010

        assert not hasattr(v010, "__version__") or v010.__version__.startswith("0.1"), v010.__file__
        assert Path(v010.__file__).resolve().is_relative_to(V010_DIR.resolve()), v010.__file__
    finally:
        sys.path.remove(str(V010_DIR))
        for k in [k for k in sys.modules if k == "cachecore" or k.startswith("cachecore.")]:
            del sys.modules[k]
        sys.modules.update(saved)
    return v010
