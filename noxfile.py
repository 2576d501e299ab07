"""Sessions: ``nox`` runs lint, the test suite on every installed Python, the core
tests at the declared dependency floors, the end-to-end tests against openai 1.x
and 2.x, the strict docs build, and the peer suites (httpx's and openai's own
tests through our transport). ``nox -s bench``, ``fuzz`` and ``codegen`` are on
demand.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "tests", "floors", "openai_compat", "docs", "peers"]
nox.options.error_on_missing_interpreters = False

SUPPORTED = ["3.10", "3.11", "3.12", "3.13"]


def _installed_pythons() -> list[str]:
    """The supported Pythons on this machine, making pyenv versions visible to nox.

    pyenv's shims answer for every version but fail for those not selected, so
    each installed pyenv version's own bin folder goes first on PATH.
    """
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = []
    for version in SUPPORTED:
        bins = sorted(glob.glob(os.path.join(root, "versions", f"{version}.*", "bin")))
        if bins:
            os.environ["PATH"] = bins[-1] + os.pathsep + os.environ.get("PATH", "")
        path = shutil.which(f"python{version}")
        if path is not None and os.sep + "shims" + os.sep not in path:
            found.append(version)
    return found or [f"{sys.version_info.major}.{sys.version_info.minor}"]


PYTHONS = _installed_pythons()
DEFAULT_PYTHON = "3.11" if "3.11" in PYTHONS else PYTHONS[-1]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole test suite (unit, generated sync twin, gateway, end to end)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


def _floors() -> list[str]:
    """The run-time dependencies pinned at the lower bounds pyproject.toml declares."""
    import tomllib

    with open("pyproject.toml", "rb") as f:
        declared = tomllib.load(f)["project"]["dependencies"]
    pins = []
    for requirement in declared:
        name, sep, version = requirement.partition(">=")
        if not sep:
            raise ValueError(f"a run-time dependency without a >= floor: {requirement!r}")
        pins.append(f"{name.strip()}=={version.strip()}")
    return pins


@nox.session(python=PYTHONS[0])
def floors(session: nox.Session) -> None:
    """The unit and core tests (both twins) with httpx, pydantic and anyio at their floors.

    On the oldest installed Python (3.10 on CI). The test tools are pinned where
    the newest ones need more than the floors give: respx 0.20 for httpx 0.25,
    trio 0.22 for anyio 3.7.
    """
    session.install("-e", ".", *_floors())
    session.install(
        "pytest>=8",
        "pytest-timeout>=2.2",
        "hypothesis>=6.100",
        "respx==0.20.2",
        "trio==0.22.2",
        "openai>=1.0",  # the newest that takes these floors (2.x on Python 3.10)
        "uvicorn>=0.23",
        "numpy>=1.24",
        "unasync>=0.6",
        "setuptools>=61",
        "ruff==0.17.6",  # test_codegen formats the twins with the pinned ruff
        *_floors(),  # again: the tools above must not lift them
    )
    session.run("python", "-m", "pip", "list", "--format=freeze", silent=False)
    session.run(
        "python", "-m", "pytest", "tests/unit", "tests/_async", "tests/_sync", *session.posargs
    )


@nox.session(python=DEFAULT_PYTHON)
@nox.parametrize("openai", ["1", "2"])
def openai_compat(session: nox.Session, openai: str) -> None:
    """The end-to-end tests with an older openai major (the main run uses 3.x)."""
    session.install("-e", ".[test]")
    session.install(f"openai>={openai},<{int(openai) + 1}")
    session.run("python", "-m", "pytest", "-m", "e2e", *session.posargs)


@nox.session(python=DEFAULT_PYTHON)
def lint(session: nox.Session) -> None:
    """ruff, the format check, mypy --strict, and the codegen drift check."""
    session.install("-e", ".[lint,test,gateway]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    session.run("python", "codegen/make_sync.py", "--check")


@nox.session(python=DEFAULT_PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation site; `mkdocs build --strict` fails on any warning.

    The docs' code blocks run in the `tests` session (tests/docs).
    """
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", "-d", "site", *session.posargs)


@nox.session(python=DEFAULT_PYTHON)
def codegen(session: nox.Session) -> None:
    """Regenerate the sync twin from the async source."""
    session.install("unasync>=0.6", "setuptools>=61", "ruff==0.17.6")
    session.run("python", "codegen/make_sync.py", *session.posargs)


@nox.session(python=DEFAULT_PYTHON)
def bench(session: nox.Session) -> None:
    """The seven benchmarks of docs/performance.md, against 0.1.0 and plain httpx; prints the table."""
    session.install("-e", ".[gateway,http2]", "openai>=1.0", "hypercorn>=0.16")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session(python=DEFAULT_PYTHON)
def fuzz(session: nox.Session) -> None:
    """The hypothesis fuzz tests of tests/hardening with a large budget (20,000 examples each)."""
    session.install("-e", ".[test,gateway]")
    examples = os.environ.get("CACHECORE_FUZZ_EXAMPLES", "20000")
    session.run(
        "python",
        "-m",
        "pytest",
        "tests/hardening/test_fuzz.py",
        "tests/hardening/test_security_sdk.py::test_dep_ids_cannot_inject_headers",
        "-p",
        "no:timeout",
        *session.posargs,
        env={"CACHECORE_FUZZ_EXAMPLES": examples},
    )


@nox.session(python=DEFAULT_PYTHON)
@nox.parametrize("suite", ["httpx", "openai2", "openai3"])
def peers(session: nox.Session, suite: str) -> None:
    """httpx's and openai's own test suites, plain and with every client through our transport.

    Fails on a test that passes plain and fails wrapped (peers/allowlist.py aside);
    see peers/README.md. ``nox -s "peers(suite='httpx')"`` runs one suite.
    """
    session.install("-r", f"peers/requirements/{suite}.txt", "-e", ".")
    session.run("python", "peers/run.py", suite, *session.posargs)
