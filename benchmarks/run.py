"""Run all seven benchmarks and print the table with PASS/MISS per target (``nox -s bench``).

    python benchmarks/run.py [--quick] [--json results.json]

Installs cachecore-python 0.1.0 into ``.bench/cc010`` (``pip --target``) when it
is not there, so both versions are measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

from _util import HERE, V010_DIR, run_script


def ensure_v010() -> None:
    if not (V010_DIR / "cachecore" / "__init__.py").exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--target",
                str(V010_DIR),
                "cachecore-python==0.1.0",
            ],
            check=True,
        )


class Server:
    """``_slow_gateway.py`` in a subprocess; ``.url`` once it listens."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "_slow_gateway.py"), *args],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().split()[1]
        time.sleep(0.5)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def invalidation(quick: bool, v010_cap: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    server = Server()
    try:
        url = server.url
        sizes = [1000, 5000] if quick else [1000, 5000, 20000]
        for n in sizes:
            out[f"ours_{n}"] = run_script("bench_invalidate.py", "--url", url, "--n", str(n))
        for n in (1000, 5000):
            out[f"httpx_{n}"] = run_script(
                "bench_invalidate.py", "--url", url, "--impl", "httpx", "--n", str(n)
            )
        out["v010_1000"] = run_script(
            "bench_invalidate.py",
            "--url",
            url,
            "--impl",
            "v010",
            "--n",
            "1000",
            impl="v010",
            timeout=v010_cap * 2,
        )
        out["v010_5000"] = run_script(
            "bench_invalidate.py",
            "--url",
            url,
            "--impl",
            "v010",
            "--n",
            "5000",
            impl="v010",
            timeout=v010_cap,
        )
    finally:
        server.close()
    # HTTP/2 trial: same server software for both protocols (hypercorn speaks both).
    try:
        import hypercorn  # noqa: F401
    except ImportError:
        out["http2"] = None
        return out
    server = Server("--server", "hypercorn")
    try:
        out["h2_trial_http1"] = run_script(
            "bench_invalidate.py", "--url", server.url, "--n", "1000"
        )
        out["h2_trial_http2"] = run_script(
            "bench_invalidate.py", "--url", server.url, "--n", "1000", "--http2"
        )
    finally:
        server.close()
    return out


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def table(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    t = r["transport"]
    # The target: the transport adds under 1% to a cache hit through openai with a
    # plain client (benchmark 5). 0.1.0 is shown for scale; it wrote into the
    # caller's request through httpx's private attributes, which 0.3 no longer does.
    budget_us = r["e2e"]["plain_ms"] * 1e3 * 0.01
    cases = [f"{mode}_{deps}" for mode in ("async", "sync") for deps in ("nodeps", "2deps")]
    cases += [name for name in ("async_nodeps_httpx2", "sync_nodeps_httpx2") if name in t]
    for name in cases:
        case = t[name]
        ours = case["ours"]
        old = case.get("v010")
        scale = "-" if old is None else f"0.1.0 async {old:.2f} µs"
        rows.append(
            (
                f"1 transport {name.replace('_', ' ')}",
                f"{ours:.2f} µs",
                scale,
                f"{verdict(ours <= budget_us)} (target <= {budget_us:.1f} µs, 1% of a hit)",
            )
        )
    inv = r["invalidation"]

    def secs(res: dict[str, Any]) -> str:
        if "timeout" in res:
            return f"did not finish in {res['timeout']:.0f} s"
        return f"{res['seconds']:.2f} s, {res['ok']}/{res['n']} ok"

    o1, o5 = inv["ours_1000"], inv["ours_5000"]
    v1 = inv["v010_1000"]
    v1_s = v1.get("seconds", v1.get("timeout"))
    speedup = v1_s / o1["seconds"]
    rows.append(
        (
            "2 invalidate_many 1,000",
            secs(o1),
            f"0.1.0 {secs(v1)}; httpx/32 {secs(inv['httpx_1000'])}",
            f"{verdict(speedup >= 10 and o1['ok'] == 1000)} ({speedup:.1f}x faster than 0.1.0"
            + (", a lower bound" if "timeout" in v1 else "")
            + ")",
        )
    )
    growth = o5["seconds"] / o1["seconds"]
    rows.append(
        (
            "2 invalidate_many 5,000",
            secs(o5),
            f"0.1.0 {secs(inv['v010_5000'])}; httpx/32 {secs(inv['httpx_5000'])}",
            f"{verdict(growth <= 6 and o5['ok'] == 5000)} (5,000/1,000 = {growth:.2f}x, target <= 6x)",
        )
    )
    if "ours_20000" in inv:
        o20 = inv["ours_20000"]
        rows.append(
            (
                "2 invalidate_many 20,000",
                f"{secs(o20)}, peak RSS +{o20['peak_rss_growth_mb']:.1f} MB",
                "-",
                f"{verdict(o20['peak_rss_growth_mb'] < 50 and o20['ok'] == 20000)} (target < 50 MB)",
            )
        )
    if inv.get("h2_trial_http1"):
        h1, h2 = inv["h2_trial_http1"], inv["h2_trial_http2"]
        rows.append(
            (
                "2 HTTP/2 trial 1,000 (hypercorn)",
                f"http2 {secs(h2)}",
                f"http1.1 {secs(h1)}",
                "HTTP/2 "
                + ("wins" if h2["seconds"] < h1["seconds"] else "loses")
                + f" ({h2['seconds'] / h1['seconds']:.2f}x)",
            )
        )
    imp = r["import"]
    rows.append(
        (
            "3 import cachecore",
            f"{imp['cachecore_ms']:.0f} ms",
            f"httpx+pydantic {imp['base_ms']:.0f} ms",
            f"{verdict(imp['overhead'] <= 0.15 and not imp['eagerly_loaded'])} "
            f"(+{imp['overhead'] * 100:.0f}%, target <= 15%; eager: {imp['eagerly_loaded'] or 'none'})",
        )
    )
    g = r["gateway"]
    rows.append(
        ("4 gateway L1 lookup (core)", f"{g['l1_ms_10000']:.3f} ms", "at 10,000 entries", "-")
    )
    for n in (1000, 10000):
        if f"l2_ms_{n}" in g:
            rows.append(
                (
                    f"4 gateway L2 lookup {n:,}",
                    f"{g[f'l2_ms_{n}']:.3f} ms",
                    f"numpy={g['numpy']}",
                    f"{verdict(g[f'l2_ms_{n}'] < 5)} (target < 5 ms)" if n == 10000 else "-",
                )
            )
    rows.append(
        ("4 gateway memory/entry", f"{g['bytes_per_entry'] / 1024:.1f} KiB", "tracemalloc", "-")
    )
    rows.append(
        (
            "4 gateway L1 hits/s (uvicorn)",
            f"{g['rps']:.0f} req/s",
            f"with TCP_NODELAY bind: {g['rps_nodelay']:.0f} req/s",
            "-",
        )
    )
    load = r.get("gateway_load")
    if load is not None:
        for key, label, p50_target in (
            ("idle", "idle", 10.0),
            ("slow_misses", "60 slow misses in flight", 10.0),
            ("big_prompts", "3 max-size prompts embedding", 25.0),
        ):
            m = load[key]
            ok = m["hit_p50"] <= p50_target and m["health_p50"] <= p50_target
            ok = ok and m["hit_max"] <= 250 and m["health_max"] <= 250
            rows.append(
                (
                    f"7 gateway HIT_L1, {label}",
                    f"p50 {m['hit_p50']:.1f} ms, max {m['hit_max']:.0f} ms",
                    f"/health p50 {m['health_p50']:.1f} ms, max {m['health_max']:.0f} ms",
                    f"{verdict(ok)} (p50 <= {p50_target:.0f} ms, max <= 250 ms; 0.2.0: seconds)"
                    if key != "idle"
                    else "-",
                )
            )
    e = r["e2e"]
    for suffix, label in (("", "httpx"), ("_httpx2", "httpx2")):
        if f"ratio{suffix}" not in e:
            continue
        rows.append(
            (
                f"5 e2e HIT_L1 via openai, {label} client",
                f"{e[f'ours_ms{suffix}']:.3f} ms",
                f"plain {label} {e[f'plain_ms{suffix}']:.3f} ms (ratio {e[f'ratio{suffix}']:.3f})",
                f"{verdict(e[f'ratio{suffix}'] <= 1.01)} (target <= 1.01)",
            )
        )
    c = r["construct"]
    rows.append(
        (
            "6 client construction + close",
            f"{c['ours_ms']:.2f} ms",
            f"httpx.Client() {c['httpx_ms']:.2f} ms (ratio {c['ratio']:.2f})",
            f"{verdict(c['ratio'] <= 2)} (target <= 2x)",
        )
    )
    rows.append(
        (
            "6 + first invalidation's pools",
            f"{c['ours_first_use_ms']:.2f} ms",
            f"ratio {c['ratio_first_use']:.2f} to httpx.Client()",
            f"{verdict(c['ratio_first_use'] <= 2)} (target <= 2x)",
        )
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer rounds; no 20,000 run")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--v010-cap", type=float, default=60.0, help="timeout of 0.1.0's 5,000 run")
    args = parser.parse_args()
    ensure_v010()
    started = time.perf_counter()
    q = args.quick
    results: dict[str, Any] = {}
    print("1/7 transport overhead ...", flush=True)
    results["transport"] = run_script(
        "bench_transport.py", "--rounds", "7" if q else "15", "--n", "10000"
    )
    print("2/7 bulk invalidation ...", flush=True)
    results["invalidation"] = invalidation(q, args.v010_cap)
    print("3/7 import time ...", flush=True)
    results["import"] = run_script("bench_import.py", "--samples", "9" if q else "21")
    print("4/7 reference gateway ...", flush=True)
    results["gateway"] = run_script("bench_gateway.py", "--rps-seconds", "3" if q else "5")
    print("5/7 end to end ...", flush=True)
    results["e2e"] = run_script("bench_e2e.py", "--rounds", "5" if q else "15")
    print("6/7 construction ...", flush=True)
    results["construct"] = run_script("bench_construct.py", "--rounds", "5" if q else "9")
    print("7/7 reference gateway under load ...", flush=True)
    results["gateway_load"] = run_script(
        "bench_gateway_load.py", "--delay", "3" if q else "5", "--samples", "20" if q else "40"
    )
    results["total_seconds"] = time.perf_counter() - started
    results["python"] = sys.version.split()[0]
    results["cpus"] = os.cpu_count()
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    rows = table(results)
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    header = ("benchmark", "cachecore 0.2.0", "baseline (same run)", "target")
    widths = [max(w, len(h)) for w, h in zip(widths, header)]
    line = " | ".join(h.ljust(w) for h, w in zip(header, widths))
    print("\n" + line + "\n" + "-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths)))
    print(
        f"\ntotal {results['total_seconds']:.0f} s on {results['cpus']} CPUs, Python {results['python']}"
    )


if __name__ == "__main__":
    main()
