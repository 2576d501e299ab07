"""The pytest plugin's client fixture, for one flavour of the SDK.

Written once, async, in ``cachecore/testing/_async/_fixtures.py``; the sync
fixture is generated from it by ``codegen/make_sync.py``. The SDK is imported
lazily so the plugin loads even when a test never touches a client.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cachecore.testing._gateway import ReferenceGateway
from cachecore.testing._http import IN_PROCESS_URL


def _sdk(name: str) -> Any:
    return getattr(importlib.import_module("cachecore"), name)


@pytest.fixture
async def cachecore_client(
    cachecore_gateway: ReferenceGateway, cachecore_token: str
) -> AsyncIterator[Any]:
    """A ``cachecore.CachecoreClient`` wired to the in-process gateway."""
    client = _sdk("CachecoreClient")(
        gateway_url=IN_PROCESS_URL,
        tenant_jwt=cachecore_token,
        inner_transport=cachecore_gateway.async_transport(),
    )
    try:
        yield client
    finally:
        await client.aclose()
