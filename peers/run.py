"""Run a peer project's own test suite plain, then through Cachecore's transport, and compare.

    python peers/run.py SUITE [--cache DIR] [--timeout S] [-- PYTEST_ARGS...]

Run by ``nox -s peers`` in a venv holding the suite's requirements and this
project. Downloads the suite's sdist (cached), unpacks its tests, runs pytest
twice with ``--junitxml`` (plain; wrapped: ``cachecore_peers_wrap.pth`` in this
venv's site-packages), and exits 1 on a test that passes plain and fails wrapped
unless peers/allowlist.py lists it. See peers/README.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from allowlist import ALLOWLIST, allow_entry, allowed
from junit import PASSED, Comparison, Outcome, compare, read
from suites import SUITES, Suite

HERE = Path(__file__).resolve().parent
PATCH_DIR = HERE / "patch"
PLUGIN_DIR = HERE / "plugin"
PTH_NAME = "cachecore_peers_wrap.pth"
#: The .pth line that runs at interpreter start (a line starting with "import").
PTH_IMPORT = "import cachecore_peers_wrap; cachecore_peers_wrap.install_from_env()"

#: The per-test timeout (pytest-timeout), unless --timeout says otherwise: 5x the
#: slowest peer test here (6 s), so a transport that hangs costs 30 s, not minutes.
TIMEOUT = 30


@dataclass(frozen=True)
class Run:
    mode: str  # "plain" or "wrapped"
    junit: Path
    log: Path
    seconds: float
    exit_code: int


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", choices=sorted(SUITES))
    parser.add_argument("--cache", type=Path, default=HERE.parent / ".nox" / "peers-cache")
    parser.add_argument("--timeout", type=int, default=TIMEOUT, help="seconds per test")
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    pytest_args = argv[split + 1 :]  # after --: more pytest arguments
    suite = SUITES[args.suite]
    cache: Path = args.cache.resolve()

    tree = unpack(download(suite, cache / "sdists"), cache / "trees", suite.source_dirs)
    results = cache / "results"
    results.mkdir(parents=True, exist_ok=True)
    runs = [
        run_pytest(suite, tree, mode, results, args.timeout, pytest_args)
        for mode in ("plain", "wrapped")
    ]
    plain, wrapped = (read(run.junit, tree) for run in runs)
    comparison = compare(plain, wrapped, lambda node_id: allowed(suite.name, node_id))
    print_summary(suite, runs, comparison, results, set(plain))
    return verdict(suite, plain, comparison, results)


def download(suite: Suite, folder: Path) -> Path:
    """The suite's sdist, from PyPI the first time."""
    name, version = suite.sdist.split("==")
    found = sorted(folder.glob(f"{name}-{version}.tar.gz"))
    if not found:
        folder.mkdir(parents=True, exist_ok=True)
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
        subprocess.run([*pip, "--no-binary", ":all:", suite.sdist, "-d", str(folder)], check=True)
        found = sorted(folder.glob(f"{name}-{version}.tar.gz"))
    if not found:
        raise SystemExit(f"pip download {suite.sdist} left no {name}-{version}.tar.gz in {folder}")
    return found[0]


def unpack(sdist: Path, folder: Path, source_dirs: tuple[str, ...]) -> Path:
    """The sdist's tree, without the library's own source (the installed wheel is tested)."""
    root = sdist.name.removesuffix(".tar.gz")
    tree = folder / root
    done = tree / ".peers-unpacked"
    if done.exists():
        return tree
    shutil.rmtree(tree, ignore_errors=True)
    skipped = tuple(f"{root}/{d}/" for d in source_dirs)
    with tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers() if not (m.name + "/").startswith(skipped)]
        archive.extractall(folder, members=members, filter="data")
    done.touch()
    return tree


def run_pytest(
    suite: Suite, tree: Path, mode: str, results: Path, timeout: int, extra: list[str]
) -> Run:
    junit = results / f"{suite.name}-{mode}.xml"
    log = results / f"{suite.name}-{mode}.log"
    marks = results / f"{suite.name}-marks"
    junit.unlink(missing_ok=True)
    env = dict(os.environ)
    env["CACHECORE_PEERS_SUITE"] = suite.name
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGIN_DIR), env.get("PYTHONPATH")]))
    for name in ("CACHECORE_PEERS_WRAP", "CACHECORE_PEERS_GATEWAY", "CACHECORE_PEERS_MARKS"):
        env.pop(name, None)
    pth = Path(sysconfig.get_paths()["purelib"]) / PTH_NAME
    pth.unlink(missing_ok=True)  # a run killed mid-way may have left it
    if mode == "wrapped":
        shutil.rmtree(marks, ignore_errors=True)
        marks.mkdir()
        env["CACHECORE_PEERS_WRAP"] = suite.library
        env["CACHECORE_PEERS_GATEWAY"] = suite.gateway
        env["CACHECORE_PEERS_MARKS"] = str(marks)
        pth.write_text(f"{PATCH_DIR}\n{PTH_IMPORT}\n")
    command = [
        sys.executable, "-m", "pytest",
        "-p", "no:cacheprovider",  # nothing written into the unpacked tree
        "-p", "no:cachecore",  # this project's fixtures plugin: not the peer's environment
        "-p", "cachecore_peers_deselect",
        "-p", "cachecore_peers_settle",  # waits for threads a test leaves behind
        f"--timeout={timeout}",
        f"--junitxml={junit}",
        "-rfE",
        # Python's own traceback format: pytest's re-parses source with ast, which
        # 3.11.7 can crash on (SystemError: AST constructor recursion depth
        # mismatch), taking an xdist worker and its tests down with it.
        "--tb=native",
        *suite.pytest_args,
        *extra,
    ]  # fmt: skip
    print(
        f"\n== {suite.name} {mode}: {' '.join(command[1:])}\n   (in {tree}, log {log})", flush=True
    )
    start = time.monotonic()
    try:
        with log.open("w") as out:
            code = subprocess.run(
                command, cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT
            ).returncode
    finally:
        pth.unlink(missing_ok=True)
    seconds = time.monotonic() - start
    tail = log.read_text(errors="replace").rstrip().splitlines()[-1:]
    print(f"   {tail[0] if tail else '(no output)'}  [{seconds:.0f} s, exit {code}]", flush=True)
    return Run(mode, junit, log, seconds, code)


def print_summary(
    suite: Suite, runs: list[Run], c: Comparison, results: Path, ran: set[str]
) -> None:
    plain, wrapped = runs
    print(f"\n== {suite.name} ({suite.sdist}, {suite.library} clients, gateway {suite.gateway})")
    print(f"   passed plain    {c.passed_plain:6d}   ({plain.seconds:.0f} s)")
    print(f"   passed wrapped  {c.passed_wrapped:6d}   ({wrapped.seconds:.0f} s)")
    print(f"   regressions     {len(c.regressions):6d}")
    print(f"   allow-listed    {len(c.allowed):6d}")
    for node_id, message in c.regressions.items():
        print(f"   REGRESSION {node_id}\n              {message[:200]}")
    for entry, reason in ALLOWLIST.get(suite.name, {}).items():
        used = sum(allow_entry(suite.name, node_id) == entry for node_id in c.allowed)
        if used:
            print(f"   allowed    {entry} ({used}): {reason}")
        elif any(allow_entry(suite.name, node_id) == entry for node_id in ran):
            print(f"   note: allow-list entry no longer needed: {entry}")
    for node_id in c.fixed:
        print(f"   note: fails plain, passes wrapped: {node_id}")
    report = results / f"{suite.name}-regressions.txt"
    report.write_text("".join(f"{k}\t{v}\n" for k, v in c.regressions.items()))
    print(f"   regressions written to {report}")


def verdict(suite: Suite, plain: dict[str, Outcome], c: Comparison, results: Path) -> int:
    if not any(o.status == PASSED for o in plain.values()):
        print(f"   ERROR: no test passed plain: the {suite.name} setup is broken")
        return 2
    if not any((results / f"{suite.name}-marks").iterdir()):
        print(f"   ERROR: the wrapped run wrapped no {suite.library} client: no patch loaded")
        return 2
    if suite.wrapped_expected_to_fail:  # strict, like xfail_strict
        flag = f"wrapped_expected_to_fail of {suite.name} in peers/suites.py"
        if c.regressions:
            print(f"   EXPECTED TO FAIL ({flag}): not failing the session")
            return 0
        print(f"   No regressions while expected to fail: set {flag} to False")
        return 1
    return 1 if c.regressions else 0


if __name__ == "__main__":
    sys.exit(main())
