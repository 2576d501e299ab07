"""Django settings for the integration tests: sqlite in memory and the test app."""

from __future__ import annotations

import django
from django.conf import settings

from cachecore.testing import mint_token
from shared_constants import GATEWAY_URL, SECRET

TENANT = "tenant-dj"


def configure() -> None:
    """Configure Django once per process (idempotent: later calls do nothing)."""
    if settings.configured:
        return
    settings.configure(
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "cachecore.contrib.django",
            "cc_django_app",
        ],
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        USE_TZ=True,
        CACHECORE={"GATEWAY_URL": GATEWAY_URL, "TOKEN": mint_token(SECRET, TENANT)},
    )
    django.setup()
