"""The wheel ships both twins, and the build hook refuses a stale sync twin."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("hatchling", reason="the test extra installs hatchling")


def _copy_tree(dst: Path) -> Path:
    for name in ("pyproject.toml", "README.md", "CHANGELOG.md"):
        shutil.copy(ROOT / name, dst / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("src", "codegen", "tests"):
        shutil.copytree(ROOT / name, dst / name, ignore=ignore)
    return dst


def _build(tree: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(tree),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_wheel_ships_both_twins(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    tree = _copy_tree(tmp_path / "tree")
    proc = _build(tree, tmp_path / "dist")
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("cachecore_python-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in (
        "_async/_client.py",
        "_async/_transport.py",
        "_sync/_client.py",
        "_sync/_transport.py",
        "testing/_async/_transport.py",
        "testing/_sync/_transport.py",
        "testing/_sync/_fixtures.py",
        "py.typed",
    ):
        assert f"cachecore/{module}" in names


def test_build_refuses_a_stale_twin(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    tree = _copy_tree(tmp_path / "tree")
    generated = tree / "src/cachecore/_sync/_client.py"
    generated.write_text(generated.read_text() + "\n# edited by hand\n")
    proc = _build(tree, tmp_path / "dist")
    assert proc.returncode != 0
    assert "sync twin is stale" in proc.stdout + proc.stderr
    assert not list((tmp_path / "dist").glob("*.whl"))
