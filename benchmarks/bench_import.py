"""Benchmark 3: import time of ``cachecore`` over ``httpx`` and ``pydantic`` alone.

Each sample is a fresh interpreter timing its own imports (interpreter start-up
left out); samples of the two alternate, and the figure is the ratio of medians.
Also checks that the gateway, CLI, demo and framework helpers were not imported.

    python benchmarks/bench_import.py [--samples 21]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from _util import emit, median

PROBE = """
import sys, time, json
t = time.perf_counter()
import httpx, pydantic
{extra}
elapsed = time.perf_counter() - t
lazy = ["cachecore.testing", "cachecore.__main__", "cachecore.contrib", "uvicorn", "numpy", "openai",
        "flask", "django", "langchain_openai", "langchain_core"]
print(json.dumps({{"s": elapsed, "loaded": [m for m in lazy if m in sys.modules]}}))
"""


def sample(extra: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(extra=extra)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=21)
    args = parser.parse_args()
    base, ours, loaded = [], [], set()
    sample("import cachecore")  # warm the bytecode caches
    for _ in range(args.samples):
        base.append(float(sample("")["s"]))  # type: ignore[arg-type]
        result = sample("import cachecore")
        ours.append(float(result["s"]))  # type: ignore[arg-type]
        loaded.update(result["loaded"])  # type: ignore[arg-type]
    b, o = median(base) * 1e3, median(ours) * 1e3
    emit({"base_ms": b, "cachecore_ms": o, "overhead": o / b - 1, "eagerly_loaded": sorted(loaded)})


if __name__ == "__main__":
    main()
