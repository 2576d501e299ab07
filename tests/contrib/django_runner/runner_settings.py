"""Settings for running the Django integration under Django's own test runner.

``python -m django test runner_checks --settings=runner_settings`` (see
``tests/contrib/test_contrib_django_runner.py``): sqlite, the test app, and the
SDK's client pointed at an in-process reference gateway shared with the tests.
"""

from __future__ import annotations

from cachecore.testing import GatewayConfig, ReferenceGateway, mint_token

SECRET = "django-runner-secret-of-at-least-32-bytes"
TENANT = "tenant-runner"
GATEWAY = ReferenceGateway(GATEWAY_CONFIG := GatewayConfig(secret=SECRET, l2_threshold=None))

SECRET_KEY = "not-secret: tests only"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
INSTALLED_APPS = ["django.contrib.contenttypes", "cachecore.contrib.django", "cc_django_app"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
CACHECORE = {
    "GATEWAY_URL": "http://cachecore.test",
    "TOKEN": mint_token(SECRET, TENANT),
    "INNER_TRANSPORT": GATEWAY.transport(),
}
