"""The settings-driven client: ``settings.CACHECORE`` -> one ``SyncCachecoreClient``.

One client per process, built on first use, because it owns the connection
pool to the gateway. It is rebuilt when ``CACHECORE`` changes under
``override_settings``, so tests can point it at a fresh gateway.
"""

from __future__ import annotations

import threading
from typing import Any

from cachecore import SyncCachecoreClient
from cachecore.contrib import CLIENT_SETTINGS, missing_extra

try:
    from django.conf import settings  # type: ignore[import-untyped]
    from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
    from django.core.signals import setting_changed  # type: ignore[import-untyped]
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise missing_extra("Django", "django", exc) from exc

__all__ = ["SETTING", "SETTINGS_KEYS", "close_client", "get_client", "option"]

#: The name of the Django setting: a dict with the keys below.
SETTING = "CACHECORE"

#: ``CACHECORE`` key -> ``SyncCachecoreClient`` keyword argument.
#: ``GATEWAY_URL`` and ``TOKEN`` fall back to ``CACHECORE_GATEWAY_URL`` / ``CACHECORE_TOKEN``.
#: Django also takes ``INNER_TRANSPORT`` (Flask takes ``inner_transport=`` as an override).
SETTINGS_KEYS: dict[str, str] = {**CLIENT_SETTINGS, "INNER_TRANSPORT": "inner_transport"}

#: Keys that steer this integration rather than the client, with their defaults.
BEHAVIOUR_KEYS: dict[str, Any] = {
    # Invalidate the deps of tracked models after each committed save/delete.
    "AUTO_INVALIDATE": True,
}

_lock = threading.Lock()
_client: SyncCachecoreClient | None = None


def _settings_dict() -> dict[str, Any]:
    value = getattr(settings, SETTING, None)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ImproperlyConfigured(
            f"settings.{SETTING} must be a dict like "
            f'{{"GATEWAY_URL": "https://...", "TOKEN": "cc_live_..."}}, got {type(value).__name__}'
        )
    unknown = sorted(set(value) - set(SETTINGS_KEYS) - set(BEHAVIOUR_KEYS))
    if unknown:
        known = ", ".join(sorted([*SETTINGS_KEYS, *BEHAVIOUR_KEYS]))
        raise ImproperlyConfigured(
            f"settings.{SETTING} has unknown key(s) {', '.join(unknown)}; known keys: {known}"
        )
    return value


def option(name: str) -> Any:
    """A behaviour key of ``settings.CACHECORE`` (e.g. ``AUTO_INVALIDATE``), or its default."""
    return _settings_dict().get(name, BEHAVIOUR_KEYS[name])


def client_options() -> dict[str, Any]:
    """The ``SyncCachecoreClient`` keyword arguments set in ``settings.CACHECORE``."""
    return {
        arg: value
        for key, arg in SETTINGS_KEYS.items()
        if (value := _settings_dict().get(key)) is not None
    }


def get_client() -> SyncCachecoreClient:
    """The process-wide ``SyncCachecoreClient`` configured by ``settings.CACHECORE``.

    Raises ``CachecoreConfigError`` (a ``ValueError``) when the gateway URL or
    token is missing from both the setting and the environment.
    """
    global _client
    client = _client
    if client is not None:
        return client
    with _lock:
        if _client is None:
            _client = SyncCachecoreClient(**client_options())
        return _client


def close_client() -> None:
    """Close the client; the next ``get_client()`` builds a new one from the settings."""
    global _client
    with _lock:
        client, _client = _client, None
    if client is not None:
        client.close()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING:
        close_client()


setting_changed.connect(_on_setting_changed, dispatch_uid="cachecore.contrib.django.settings")
