"""pytest plugin: after each peer test, waits for the background threads it left
behind that a later test's mock would otherwise count.

Loaded with ``-p cachecore_peers_settle`` by ``peers/run.py`` in the plain and the
wrapped run alike, so it changes nothing in the comparison; it only takes a race
between two of the peer's own tests off the table.

google-auth (2.61 in openai 3's lock) looks up a service account's Regional Access
Boundary in a daemon thread after handing out a token, with a real
``requests.Session.request``. In openai 3.57's ``tests/lib/test_vertex_provider.py``,
``test_explicit_service_account_credentials_receive_cloud_platform_scope`` starts
that thread, and the next test, ``test_google_auth_preserves_transport_timeout_phases``,
patches ``requests.Session.request`` and asserts it was called once. When the thread
is scheduled late (a busy 2-core CI machine), its request lands on the mock:
``assert 2 == 1``. A CI run failed that way wrapped and passed it plain; holding
the thread back until the mock is in place fails it plain, every time. The thread
never touches httpx or httpx2, so nothing of ours is involved.

Threads are found by their class name with ``threading.enumerate()``: nothing of
google-auth is imported or patched.
"""

from __future__ import annotations

import sys
import threading

import pytest

#: Classes of the background threads to wait for, and why.
SETTLE = {
    "_RegionalAccessBoundaryRefreshThread": "google-auth's Regional Access Boundary lookup",
}

#: At most this long per thread (the lookup takes about 30 ms here: no network, DNS fails).
SETTLE_SECONDS = 10.0


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    for thread in threading.enumerate():
        what = SETTLE.get(type(thread).__name__)
        if what is None:
            continue
        thread.join(SETTLE_SECONDS)
        if thread.is_alive():
            # Not a warning: peers turn warnings into errors (filterwarnings=error).
            print(
                f"\ncachecore_peers_settle: {what} ({thread.name}) still running "
                f"{SETTLE_SECONDS:.0f} s after {item.nodeid}",
                file=sys.stderr,
                flush=True,
            )
