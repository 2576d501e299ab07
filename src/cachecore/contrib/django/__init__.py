"""Django: a settings-driven client, and models that invalidate their deps on commit.

Settings::

    INSTALLED_APPS = [..., "cachecore.contrib.django"]   # adds a startup check
    CACHECORE = {
        "GATEWAY_URL": "https://api.cachecore.it",   # else $CACHECORE_GATEWAY_URL
        "TOKEN": "cc_live_...",                      # else $CACHECORE_TOKEN; or a callable
        # optional: TIMEOUT, MAX_RETRIES, MAX_CONCURRENCY, GATEWAY_ERRORS,
        # COLLECT_STATS, DEBUG, INNER_TRANSPORT, AUTO_INVALIDATE (default True)
    }

Models::

    from cachecore.contrib.django import track, deps_for, get_client

    @track
    class Article(models.Model): ...

    # read side: tag the LLM call with what it was built from
    with get_client().request_context(deps=deps_for(article)):
        summary = openai_client.chat.completions.create(...)

    # write side: nothing to do. article.save() / article.delete() invalidate
    # table:blog.article and row:blog.article:<pk> after the transaction commits.

Failures are never lost: the SDK logs them at WARNING, and the ``invalidated``
signal carries every ``InvalidateResult``.
"""

from __future__ import annotations

from cachecore.contrib.django._client import SETTING, close_client, get_client
from cachecore.contrib.django._deps import (
    deps_for,
    invalidate_on_commit,
    invalidated,
    row_dep,
    table_dep,
    track,
    tracked_models,
)

__all__ = [
    "SETTING",
    "close_client",
    "deps_for",
    "get_client",
    "invalidate_on_commit",
    "invalidated",
    "row_dep",
    "table_dep",
    "track",
    "tracked_models",
]
