"""``codegen/make_sync.py --check`` catches every kind of drift, on a copy of the tree."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
#: A few test twins are enough to exercise the tests tree (and keep the check quick);
#: test_openai_sdk.py is the one that uses the AsyncOpenAI rule, test_http_clients.py
#: the aread/aiter_bytes ones, test_e2e_openai.py the DefaultAsyncHttpxClient one.
TEST_FILES = [
    "__init__.py",
    "_helpers.py",
    "test_client.py",
    "test_openai_sdk.py",
    "test_http_clients.py",
    "test_e2e_openai.py",
]


def load_codegen() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "cachecore_codegen", REPO / "codegen" / "make_sync.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def codegen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The codegen module, pointed at a copy of the repository's twin trees."""
    module = load_codegen()
    for tree in module.TREES:
        for rel in (tree.source, tree.target):
            if rel.startswith("tests/"):
                (tmp_path / rel).mkdir(parents=True)
                for name in TEST_FILES:
                    shutil.copy(REPO / rel / name, tmp_path / rel / name)
            else:
                ignore = shutil.ignore_patterns("__pycache__")
                shutil.copytree(REPO / rel, tmp_path / rel, ignore=ignore)
    monkeypatch.setattr(module, "ROOT", tmp_path)
    return module


def test_the_repository_twin_is_fresh() -> None:
    assert load_codegen().check() == []


def test_a_clean_copy_passes(codegen: ModuleType) -> None:
    assert codegen.check() == []
    assert codegen.main(["--check"]) == 0


def test_a_changed_line_fails(codegen: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    path = codegen.ROOT / "src/cachecore/_sync/_client.py"
    text = path.read_text()
    path.write_text(text.replace("def invalidate(", "def invalidate_renamed(", 1))
    problems = codegen.check()
    assert len(problems) == 1
    assert "src/cachecore/_sync/_client.py: differs" in problems[0]
    assert "(2 changed lines;" in problems[0]  # one line out, one line in
    assert "+    def invalidate_renamed(" in problems[0]
    assert codegen.main(["--check"]) == 1
    assert "The sync twin is stale" in capsys.readouterr().err


def test_a_different_line_count_fails(codegen: ModuleType) -> None:
    path = codegen.ROOT / "tests/_sync/test_openai_sdk.py"
    path.write_text(path.read_text() + "\n# hand edit\n")
    (problem,) = codegen.check()
    assert "tests/_sync/test_openai_sdk.py: differs" in problem
    lines = len(path.read_text().splitlines())
    assert f"{lines} lines committed vs {lines - 2} generated" in problem


def test_an_edit_to_the_async_source_makes_the_twin_stale(codegen: ModuleType) -> None:
    path = codegen.ROOT / "src/cachecore/_async/_transport.py"
    path.write_text(path.read_text() + "\n\ndef added() -> None:\n    pass\n")
    (problem,) = codegen.check()
    assert "src/cachecore/_sync/_transport.py: differs" in problem


def test_a_missing_file_fails(codegen: ModuleType) -> None:
    (codegen.ROOT / "tests/_sync/test_client.py").unlink()
    (problem,) = codegen.check()
    assert problem == "tests/_sync/test_client.py: missing (not generated yet)"


def test_a_stale_extra_file_fails(codegen: ModuleType) -> None:
    (codegen.ROOT / "src/cachecore/_sync/_leftover.py").write_text("x = 1\n")
    (problem,) = codegen.check()
    assert (
        problem == "src/cachecore/_sync/_leftover.py: stale extra file (its async source is gone)"
    )


def test_an_unused_rule_fails(codegen: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(codegen.REPLACEMENTS, "AsyncNothingUsesThis", "NothingUsesThis")
    (problem,) = codegen.check()
    assert "rule 'AsyncNothingUsesThis' -> 'NothingUsesThis' is never used" in problem


def test_every_rule_is_used_today() -> None:
    assert load_codegen().unused_rules() == []


def test_write_repairs_every_drift(codegen: ModuleType) -> None:
    root = codegen.ROOT
    (root / "tests/_sync/test_client.py").unlink()
    (root / "src/cachecore/_sync/_leftover.py").write_text("x = 1\n")
    client = root / "src/cachecore/_sync/_client.py"
    client.write_text(client.read_text() + "# drift\n")
    changed = codegen.write()
    assert sorted(changed) == [
        "removed src/cachecore/_sync/_leftover.py",
        "wrote src/cachecore/_sync/_client.py",
        "wrote tests/_sync/test_client.py",
    ]
    assert codegen.check() == []
    assert not (root / "src/cachecore/_sync/_leftover.py").exists()


def test_generated_files_say_where_to_edit(codegen: ModuleType) -> None:
    for path in (codegen.ROOT / "src/cachecore/_sync").glob("*.py"):
        head = path.read_text().splitlines()[:2]
        assert (
            head[0]
            == f"# Generated by codegen/make_sync.py from src/cachecore/_async/{path.name}: do not edit."
        )
        assert "Edit the async source" in head[1]


def test_one_ruff_version_everywhere() -> None:
    """The formatter is pinned once per place that runs the codegen, all to RUFF_VERSION."""
    pin = f'"ruff=={load_codegen().RUFF_VERSION}"'
    pyproject = (REPO / "pyproject.toml").read_text()
    build = pyproject.split("[build-system]", 1)[1].split("\n[", 1)[0]
    assert pin in build
    extras = pyproject.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    for extra in ("test", "lint"):
        body = extras.split(f"\n{extra} = [", 1)[1].split("]", 1)[0]
        assert pin in body, extra
    assert pyproject.count('"ruff') == 3  # no other, looser, requirement
    noxfile = (REPO / "noxfile.py").read_text()
    assert noxfile.count(pin) == 2  # the floors and codegen sessions


def test_another_ruff_is_a_clear_error(
    codegen: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(codegen, "RUFF_VERSION", "0.0.1")
    with pytest.raises(RuntimeError, match=r"with ruff 0\.0\.1 .*pip install 'ruff==0\.0\.1'"):
        codegen.check()


def test_the_twin_is_compared_as_ruff_formats_it(codegen: ModuleType) -> None:
    # A long call that ruff splits over several lines: unformatted, it is drift.
    path = codegen.ROOT / "src/cachecore/_sync/_client.py"
    text = path.read_text()
    assert "\n\n\n" in text
    path.write_text(text.replace("\n\n\n", "\n\n", 1))
    (problem,) = codegen.check()
    assert "src/cachecore/_sync/_client.py: differs" in problem


def test_prose_is_rewritten_for_the_sync_twin(codegen: ModuleType) -> None:
    rules = {**codegen.REPLACEMENTS}
    text = (
        '"""Use ``async with cc:`` then ``await cc.aclose()``; '
        'async for chunk in r.aiter_bytes(); AsyncPerLoop, AsyncIterator, tests/_async."""'
    )
    assert codegen._prose(text, rules) == (
        '"""Use ``with cc:`` then ``cc.close()``; '
        'for chunk in r.iter_bytes(); SyncPerLoop, Iterator, tests/_async."""'
    )
    for path in (codegen.ROOT / "src/cachecore/_sync").glob("*.py"):
        text = path.read_text()
        for word in (r"\bawait ", r"\basync with\b", r"\basync for\b", r"\baclose\b"):
            assert not re.search(word, text), (path.name, word)


def test_one_table_declares_every_generated_tree() -> None:
    module = load_codegen()
    targets = [tree.target for tree in module.TREES]
    assert len(set(targets)) == len(targets)
    for tree in module.TREES:
        assert tree.target == tree.source.replace("_async", "_sync")
        assert tree.wheel == tree.source.startswith("src/")
        assert (REPO / tree.source).is_dir()
        assert (REPO / tree.target).is_dir()


def test_the_core_trees_import_neither_openai_nor_the_demo() -> None:
    """The demo's walk is a tree of its own: the core twins never import the demo, and
    import openai (optional) only where ``cc.openai()`` is called, never at import."""
    import ast

    def module_level(statements: list[ast.stmt]) -> list[ast.stmt]:
        found: list[ast.stmt] = []
        for node in statements:
            if isinstance(node, ast.If):
                if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                    found += module_level(node.body)
                found += module_level(node.orelse)
            elif isinstance(node, ast.Try):
                found += module_level(node.body)
            else:
                found.append(node)
        return found

    def names_of(node: ast.AST) -> list[str]:
        if isinstance(node, ast.Import):
            return [alias.name for alias in node.names]
        if isinstance(node, ast.ImportFrom):
            return [node.module or ""] + [alias.name for alias in node.names]
        return []

    for tree in ("src/cachecore/_async", "src/cachecore/_sync"):
        for path in (REPO / tree).rglob("*.py"):
            parsed = ast.parse(path.read_text())
            for node in ast.walk(parsed):
                for name in names_of(node):
                    assert "_demo" not in name, (path, name)
            for node in module_level(parsed.body):
                for name in names_of(node):
                    assert not name.startswith("openai"), (path, name)
