"""pytest fixtures for testing code that uses Cachecore, against the reference gateway.

Registered as the ``cachecore`` pytest11 entry point, so installing the package
makes them available everywhere. The gateway is in-process (no sockets) and
fresh per test; ``cachecore_server`` adds a real loopback server when a test
needs one (uvicorn, from the ``gateway`` extra). Client fixtures import the SDK
lazily so the plugin loads even when a test never touches a client.

The client fixtures are written once: ``cachecore_client`` (async) in
``cachecore/testing/_async/_fixtures.py``, and ``cachecore_sync_client`` generated
from it by ``codegen/make_sync.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cachecore.testing._async._fixtures import cachecore_client
from cachecore.testing._config import GatewayConfig
from cachecore.testing._gateway import ReferenceGateway
from cachecore.testing._jwt import mint_token
from cachecore.testing._sync._fixtures import cachecore_sync_client

__all__ = [
    "cachecore_client",
    "cachecore_gateway",
    "cachecore_mint",
    "cachecore_secret",
    "cachecore_server",
    "cachecore_sync_client",
    "cachecore_tenant",
    "cachecore_token",
]


@pytest.fixture
def cachecore_secret() -> str:
    """The HS256 secret the test gateway signs and checks tenant tokens with.

    Override it with one of at least 32 bytes: ``GatewayConfig`` refuses shorter ones.
    """
    return "cachecore-test-secret-of-at-least-32-bytes"


@pytest.fixture
def cachecore_tenant() -> str:
    """The tenant id of ``cachecore_token``; override it to test another tenant."""
    return "tenant-a"


@pytest.fixture
def cachecore_gateway(cachecore_secret: str) -> ReferenceGateway:
    """A fresh in-process reference gateway (offline model, default settings)."""
    return ReferenceGateway(GatewayConfig(secret=cachecore_secret))


@pytest.fixture
def cachecore_mint(cachecore_secret: str) -> Callable[..., str]:
    """``cachecore_mint(tenant_id, **kwargs)``: mint tokens for the test gateway."""

    def mint(tenant_id: str | None, **kwargs: Any) -> str:
        return mint_token(cachecore_secret, tenant_id, **kwargs)

    return mint


@pytest.fixture
def cachecore_token(cachecore_mint: Callable[..., str], cachecore_tenant: str) -> str:
    """A valid token (one hour) for ``cachecore_tenant``."""
    return cachecore_mint(cachecore_tenant)


@pytest.fixture
def cachecore_server(cachecore_gateway: ReferenceGateway) -> Iterator[str]:
    """``cachecore_gateway`` served on 127.0.0.1 (ephemeral port); yields the base URL."""
    pytest.importorskip("uvicorn", reason="needs the gateway extra: cachecore-python[gateway]")
    from cachecore.testing._server import serve

    with serve(cachecore_gateway) as url:
        yield url
