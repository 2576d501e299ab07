"""Fixtures for the hardening suite (fault injection, concurrency, security, fuzzing)."""

from __future__ import annotations

import pytest
from hardening_helpers import make_gateway

from cachecore.testing import ReferenceGateway


@pytest.fixture
def gw() -> ReferenceGateway:
    return make_gateway()
