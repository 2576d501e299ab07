"""The peer test suites: whose tests, which library's clients get wrapped, which gateway."""

from __future__ import annotations

from dataclasses import dataclass

#: openai's tests point every client at ``TEST_API_BASE_URL``, by default the
#: Prism mock server's address (tests/conftest.py); respx answers in its place.
OPENAI_TEST_BASE_URL = "http://127.0.0.1:4010"

#: httpx's ``server`` fixture (tests/conftest.py) is uvicorn with its default
#: host and port: ``Config(app=app, lifespan="off", loop="asyncio")``.
HTTPX_TEST_SERVER_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class Suite:
    name: str
    #: The sdist whose tests/ run, as a pip requirement; the session installs the
    #: same version from its requirements file (peers/requirements/<name>.txt).
    sdist: str
    #: The import name whose ``Client``/``AsyncClient`` the wrapped run patches.
    library: str
    #: ``gateway_url`` of every wrapping transport: requests to its origin get the
    #: tenant token, as requests to a real gateway would.
    gateway: str
    #: Top-level folders of the sdist left out when unpacking: the library's own
    #: source, so that the installed wheel of the same version is what is tested.
    source_dirs: tuple[str, ...]
    pytest_args: tuple[str, ...] = ()
    #: The wrapped run is known to regress: its regressions are reported but do
    #: not fail the session, and a wrapped run with none fails it (flip the flag).
    wrapped_expected_to_fail: bool = False


SUITES: dict[str, Suite] = {
    suite.name: suite
    for suite in (
        Suite(
            name="httpx",
            sdist="httpx==0.28.1",
            library="httpx",
            gateway=HTTPX_TEST_SERVER_URL,
            source_dirs=("httpx",),
            # No xdist: every worker would start the session server on port 8000.
        ),
        Suite(
            name="openai2",
            sdist="openai==2.54.0",
            library="httpx",
            gateway=OPENAI_TEST_BASE_URL,
            source_dirs=("src",),
            pytest_args=("-n", "2"),  # theirs is -n auto; 2 cores here
        ),
        Suite(
            name="openai3",
            sdist="openai==3.57.0",
            library="httpx2",
            gateway=OPENAI_TEST_BASE_URL,
            source_dirs=("src",),
            pytest_args=("-n", "2"),
        ),
    )
}
