"""Integrations with web and LLM frameworks: ``cachecore.contrib.<framework>``.

Each submodule imports its framework only when it is itself imported, so
``import cachecore`` (and ``import cachecore.contrib``) never pulls in Flask,
Django or LangChain. They are optional extras: ``pip install
'cachecore-python[flask]'``, ``[django]`` or ``[langchain]``.

- ``cachecore.contrib.flask``: one ``SyncCachecoreClient`` per Flask app.
- ``cachecore.contrib.django``: a settings-driven client, and models that
  invalidate their deps after each committed save or delete.
- ``cachecore.contrib.langchain``: ``ChatOpenAI`` keyword arguments routed
  through a client's transport.
"""

from __future__ import annotations

__all__: list[str] = []

#: Framework setting (without the framework's prefix) -> ``SyncCachecoreClient``
#: keyword argument: the one table Flask (``CACHECORE_<KEY>`` in ``app.config``) and
#: Django (``<KEY>`` in ``settings.CACHECORE``) read.
CLIENT_SETTINGS: dict[str, str] = {
    "GATEWAY_URL": "gateway_url",
    "TOKEN": "tenant_jwt",
    "TIMEOUT": "timeout",
    "MAX_RETRIES": "max_retries",
    "MAX_CONCURRENCY": "max_concurrency",
    "GATEWAY_ERRORS": "gateway_errors",
    "COLLECT_STATS": "collect_stats",
    "DEBUG": "debug",
}


def missing_extra(framework: str, extra: str, error: ImportError) -> ImportError:
    """An ImportError that names the extra to install, chained to the original one.

    The original message alone ("No module named 'flask'") does not tell users
    that the fix is an extra of this package rather than a separate install.
    """
    message = (
        f"cachecore.contrib.{extra} needs {framework}, which is not installed "
        f"({error}): pip install 'cachecore-python[{extra}]'"
    )
    out = ImportError(message, name=error.name)
    out.__cause__ = error
    return out
