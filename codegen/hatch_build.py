"""Hatchling build hook: refuse to build from a stale sync twin.

The twins that ship in the wheel (``make_sync.TREES`` entries with ``wheel=True``)
are regenerated and formatted with the ruff pinned in ``[build-system] requires``
(see ``codegen/make_sync.py``) and compared with the committed files.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class StaleTwinCheck(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        script = Path(self.root) / "codegen" / "make_sync.py"
        if not script.exists() or not (Path(self.root) / "src/cachecore/_async").exists():
            return  # building from a wheel-only layout: nothing to check
        # Loaded by path, under a private name: codegen/ is not a package.
        spec = importlib.util.spec_from_file_location("_cachecore_make_sync", script)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        # Only the twins in the wheel; the tests twin is checked by `nox -s lint`.
        problems = module.check([tree for tree in module.TREES if tree.wheel])
        if problems:
            raise RuntimeError(
                "refusing to build: the sync twin is stale; run `python codegen/make_sync.py`.\n"
                + "\n".join(problems)
            )
