"""Hatchling build hook: refuse to build from a stale sync twin."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class StaleTwinCheck(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        script = Path(self.root) / "codegen" / "unasync.py"
        if not script.exists() or not (Path(self.root) / "src/cachecore/_async").exists():
            return  # building from a wheel-only layout: nothing to check
        spec = importlib.util.spec_from_file_location("_cachecore_codegen", script)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        problems = module.check()
        # Only the package twin ships in the wheel; the tests twin is checked by `nox -s lint`.
        problems = [p for p in problems if p.startswith("src/")]
        if problems:
            raise RuntimeError(
                "refusing to build: the sync twin is stale; run `python codegen/unasync.py`.\n"
                + "\n".join(problems)
            )
