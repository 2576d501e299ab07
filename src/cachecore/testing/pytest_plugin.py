"""pytest fixtures for testing code that uses Cachecore, against the reference gateway.

Registered as the ``cachecore`` pytest11 entry point, so installing the package
makes them available everywhere. The gateway is in-process (no sockets) and
fresh per test; ``cachecore_server`` adds a real loopback server when a test
needs one (uvicorn, from the ``gateway`` extra). Client fixtures import the SDK
lazily so the plugin loads even when a test never touches a client.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from cachecore.testing._config import GatewayConfig
from cachecore.testing._gateway import ReferenceGateway
from cachecore.testing._http import IN_PROCESS_URL
from cachecore.testing._jwt import mint_token


@pytest.fixture
def cachecore_secret() -> str:
    """The HS256 secret the test gateway signs and checks tenant tokens with."""
    return "cachecore-test-secret"


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


def _sdk(name: str) -> Any:
    return getattr(importlib.import_module("cachecore"), name)


@pytest.fixture
async def cachecore_client(
    cachecore_gateway: ReferenceGateway, cachecore_token: str
) -> AsyncIterator[Any]:
    """A ``cachecore.CachecoreClient`` wired to the in-process gateway (anyio tests)."""
    client = _sdk("CachecoreClient")(
        gateway_url=IN_PROCESS_URL,
        tenant_jwt=cachecore_token,
        inner_transport=cachecore_gateway.async_transport(),
    )
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def cachecore_sync_client(
    cachecore_gateway: ReferenceGateway, cachecore_token: str
) -> Iterator[Any]:
    """A ``cachecore.SyncCachecoreClient`` wired to the in-process gateway."""
    client = _sdk("SyncCachecoreClient")(
        gateway_url=IN_PROCESS_URL,
        tenant_jwt=cachecore_token,
        inner_transport=cachecore_gateway.transport(),
    )
    try:
        yield client
    finally:
        client.close()
