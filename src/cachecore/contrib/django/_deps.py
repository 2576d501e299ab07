"""Models that say which cache deps they feed, invalidated once their changes commit.

``@track`` on a model registers it; every save or delete of one of its rows
then schedules, with ``transaction.on_commit``, the invalidation of
``table:<app_label>.<model>`` and ``row:<app_label>.<model>:<pk>``. Waiting for
the commit matters twice over: an invalidation sent before the commit lets a
concurrent request re-cache the *old* data, and one sent for a transaction that
rolls back evicts answers that were still right.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar, overload

from cachecore import InvalidateResult
from cachecore.contrib import missing_extra
from cachecore.contrib.django._client import get_client, option
from cachecore.errors import CachecoreError

try:
    from django.db import models, transaction  # type: ignore[import-untyped]
    from django.db.models.signals import post_delete, post_save  # type: ignore[import-untyped]
    from django.dispatch import Signal  # type: ignore[import-untyped]
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise missing_extra("Django", "django", exc) from exc

__all__ = [
    "deps_for",
    "invalidate_on_commit",
    "invalidated",
    "row_dep",
    "table_dep",
    "track",
    "tracked_models",
]

log = logging.getLogger("cachecore.contrib.django")

M = TypeVar("M", bound=type)

#: Sent after each automatic (or ``invalidate_on_commit``) invalidation, with
#: ``sender`` (the model class, or ``None``), ``dep_ids`` (tuple of str),
#: ``results`` (list of ``InvalidateResult``, one per dep, ``ok`` False on failure),
#: ``action`` (``"save"``, ``"delete"`` or ``"manual"``) and ``using`` (the database alias).
#: Failures are also logged at WARNING; connect here to alert, retry or queue them.
invalidated = Signal()


@dataclass(frozen=True)
class _Tracking:
    table: bool
    rows: bool
    extra: Callable[[Any], Iterable[str]] | None


_registry: dict[type, _Tracking] = {}


def _label(model: Any) -> str:
    meta = model._meta
    if meta.abstract:
        raise TypeError(
            f"{meta.label} is abstract: table_dep/row_dep need a concrete model or an instance"
        )
    return str(meta.concrete_model._meta.label_lower)


def _abstract(model: Any) -> bool:
    return bool(model._meta.abstract)


def table_dep(model: Any) -> str:
    """``table:<app_label>.<model>`` for a model class or instance (proxies use their concrete model)."""
    return f"table:{_label(model)}"


def row_dep(model: Any, pk: Any = None) -> str:
    """``row:<app_label>.<model>:<pk>`` for an instance, or for a model class and a pk."""
    if pk is None:
        if isinstance(model, type):
            raise TypeError("row_dep(Model, pk): pass the pk, or pass an instance")
        pk = model.pk
        if pk is None:
            raise ValueError(f"row_dep({model!r}): the instance has no primary key yet")
    return f"row:{_label(model)}:{pk}"


def deps_for(instance: Any) -> list[str]:
    """The dep ids a tracked model instance feeds, in a stable order without duplicates.

    Use the same ids on the read side::

        with cc.request_context(deps=deps_for(article)): ...

    Every tracked class in the instance's MRO contributes: an abstract tracked
    base names the concrete model; a tracked parent in multi-table inheritance
    names itself, since Django sends no signal for the parent's row.
    """
    cls = type(instance)
    out: dict[str, None] = {}
    for klass in cls.__mro__:
        spec = _registry.get(klass)
        if spec is None:
            continue
        target = cls if _abstract(klass) else klass
        if spec.table:
            out[table_dep(target)] = None
        if spec.rows and instance.pk is not None:
            out[row_dep(target, instance.pk)] = None
        if spec.extra is not None:
            out.update(dict.fromkeys(spec.extra(instance)))
    return list(out)


def tracked_models() -> list[type]:
    """The model classes registered with ``track``, in registration order."""
    return list(_registry)


@overload
def track(model: M, /) -> M: ...
@overload
def track(
    *, table: bool = True, rows: bool = True, extra: Callable[[Any], Iterable[str]] | None = None
) -> Callable[[M], M]: ...
def track(
    model: M | None = None,
    /,
    *,
    table: bool = True,
    rows: bool = True,
    extra: Callable[[Any], Iterable[str]] | None = None,
) -> M | Callable[[M], M]:
    """Invalidate a model's deps after every committed save and delete.

    ``@track`` declares ``table:<app_label>.<model>`` and ``row:<app_label>.<model>:<pk>``;
    ``@track(rows=False)`` only the table; ``extra=lambda obj: [f"author:{obj.author_id}"]``
    adds deps of its own. ``track(User)`` works for models you do not own.
    Signals do not fire for ``QuerySet.update``, ``bulk_create`` or
    ``bulk_update``: call ``invalidate_on_commit`` after those.
    """

    def register(cls: M) -> M:
        if not (isinstance(cls, type) and issubclass(cls, models.Model)):
            raise TypeError(f"track() takes a Django model class, got {cls!r}")
        if not (table or rows or extra):
            raise ValueError("track() with table=False, rows=False and no extra declares no deps")
        _registry[cls] = _Tracking(table, rows, extra)
        _connect()
        return cls

    return register(model) if model is not None else register


def invalidate_on_commit(
    dep_ids: Sequence[str], *, using: str | None = None, sender: type | None = None
) -> None:
    """Invalidate ``dep_ids`` once the current transaction on ``using`` commits.

    Outside a transaction it runs at once; if the transaction rolls back it never
    runs. The outcome is sent through the ``invalidated`` signal.
    """
    ids = tuple(dict.fromkeys(dep_ids))
    if ids:
        callback = partial(_invalidate_now, ids, sender, "manual", using)
        transaction.on_commit(callback, using=using)


def _schedule(instance: Any, using: str, action: str) -> None:
    if not option("AUTO_INVALIDATE"):
        return
    ids = tuple(deps_for(instance))  # now: after a delete Django clears the pk
    if ids:
        callback = partial(_invalidate_now, ids, type(instance), action, using)
        transaction.on_commit(callback, using=using)


def _invalidate_now(
    dep_ids: tuple[str, ...], sender: type | None, action: str, using: str | None
) -> None:
    """Run after the commit: never raises, since the data is committed either way."""
    try:
        results = get_client().invalidate_many(list(dep_ids))
    except Exception as exc:  # configuration or a bug: the gateway path never raises
        error = exc if isinstance(exc, CachecoreError) else CachecoreError(str(exc))
        if error is not exc:
            error.__cause__ = exc
        log.warning("cachecore: could not invalidate %s after commit: %s", ", ".join(dep_ids), exc)
        results = [
            InvalidateResult(dep_id=d, ok=False, new_hash="", error=str(error), exception=error)
            for d in dep_ids
        ]
    for receiver, outcome in invalidated.send_robust(
        sender=sender, dep_ids=dep_ids, results=results, action=action, using=using
    ):
        if isinstance(outcome, Exception):
            log.error(
                "cachecore: receiver %r of the invalidated signal failed",
                receiver,
                exc_info=outcome,
            )


def _on_save(sender: type, instance: Any, using: str, **kwargs: Any) -> None:
    _schedule(instance, using, "save")


def _on_delete(sender: type, instance: Any, using: str, **kwargs: Any) -> None:
    _schedule(instance, using, "delete")


def _connect() -> None:
    """Connect the two receivers once, for every model: ``deps_for`` filters by registry."""
    post_save.connect(_on_save, weak=False, dispatch_uid="cachecore.contrib.django.post_save")
    post_delete.connect(_on_delete, weak=False, dispatch_uid="cachecore.contrib.django.post_delete")
