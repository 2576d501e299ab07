"""Constants the test helper modules share (a uniquely named module, not conftest).

Importable as ``shared_constants`` from every test: pytest puts ``tests/`` on
``sys.path`` for ``tests/conftest.py``.
"""

from __future__ import annotations

from cachecore.testing import IN_PROCESS_URL

#: The HS256 secret the tests' reference gateways sign and check tokens with; the
#: same as the pytest plugin's ``cachecore_secret``, so its tokens work on them too.
SECRET = "cachecore-test-secret-of-at-least-32-bytes"
#: The base URL the reference gateway's in-process transports are used with.
GATEWAY_URL = IN_PROCESS_URL
