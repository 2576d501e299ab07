"""The Django app: installing it adds a system check of ``settings.CACHECORE``.

Tracking models works without it; the check only moves a missing gateway URL
or token from the first save of a tracked model to ``manage.py check`` / startup.
"""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig  # type: ignore[import-untyped]
from django.core import checks  # type: ignore[import-untyped]
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]

from cachecore.errors import CachecoreConfigError


class CachecoreConfig(AppConfig):  # type: ignore[misc]
    name = "cachecore.contrib.django"
    label = "cachecore"
    verbose_name = "Cachecore"

    def ready(self) -> None:
        checks.register(check_settings)


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """``cachecore.E001`` when ``settings.CACHECORE`` (or the environment) cannot build a client."""
    from cachecore.contrib.django._client import SETTING, close_client, get_client

    try:
        get_client()
    except (CachecoreConfigError, ImproperlyConfigured) as exc:
        close_client()
        return [
            checks.Error(
                f"Cachecore is not configured: {exc}",
                hint=f"set settings.{SETTING} = {{'GATEWAY_URL': ..., 'TOKEN': ...}} "
                "or the CACHECORE_GATEWAY_URL and CACHECORE_TOKEN environment variables",
                id="cachecore.E001",
            )
        ]
    return []
