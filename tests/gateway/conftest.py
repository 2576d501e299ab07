"""Shared fixtures for the reference gateway tests.

The plugin's fixtures (``cachecore_gateway``, ``cachecore_token``, ...) come from
the package's pytest11 entry point, as they do for users.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from gateway_helpers import FakeClock, make_gateway

from cachecore.testing import IN_PROCESS_URL, ReferenceGateway


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def gw(clock: FakeClock) -> ReferenceGateway:
    return make_gateway(clock=clock)


@pytest.fixture
def http(gw: ReferenceGateway) -> Iterator[httpx.Client]:
    with httpx.Client(transport=gw.transport(), base_url=IN_PROCESS_URL) as client:
        yield client
