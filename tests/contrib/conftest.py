"""Fixtures for the framework integration tests.

The reference gateway's pytest plugin fixtures are imported here as well as
registered by the package's pytest11 entry point, so these tests run from a
plain checkout too. ``cachecore_gateway`` is overridden with L2 turned off:
these tests send prompts that differ only by an id ("summarise doc 1" / "doc 2"),
which a semantic match would answer from each other's entries.
"""

from __future__ import annotations

import pytest

from cachecore.testing import GatewayConfig, ReferenceGateway
from cachecore.testing.pytest_plugin import (  # noqa: F401
    cachecore_mint,
    cachecore_secret,
    cachecore_server,
    cachecore_tenant,
    cachecore_token,
)


@pytest.fixture
def cachecore_gateway(cachecore_secret: str) -> ReferenceGateway:  # noqa: F811
    """A fresh in-process reference gateway, exact-match (L1) caching only."""
    return ReferenceGateway(GatewayConfig(secret=cachecore_secret, l2_threshold=None))
