"""The module ``__getattr__`` that serves the 0.1.0 names with a ``DeprecationWarning``."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any


def deprecated_names(
    module: str, names: Mapping[str, tuple[str, Callable[[], object]]]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``names``: old name -> (replacement, its object).

    The object is looked up when the old name is used, so it may be imported lazily.
    """

    def __getattr__(name: str) -> Any:
        entry = names.get(name)
        if entry is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        replacement, value = entry
        warnings.warn(
            f"{module}.{name} is the 0.1.0 name, deprecated: use {module}.{replacement} "
            "(docs/migration.md)",
            DeprecationWarning,
            stacklevel=2,
        )
        return value()

    return __getattr__
