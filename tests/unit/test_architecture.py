"""The package's shape: no import cycle, and docs/architecture.md names every module."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "cachecore"
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


#: Statements whose body may hold an import that runs (now or when called).
BLOCKS = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.With,
    ast.AsyncWith,
    ast.For,
    ast.AsyncFor,
    ast.While,
)


def runtime_imports(path: Path) -> set[str]:
    """The ``cachecore`` modules ``path`` imports, at module level or in a function.

    A function's import is a dependency too, only a later one; an import under
    ``if TYPE_CHECKING:`` never runs and does not count.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.If):
                test = node.test
                if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
                    visit(node.orelse)
                    continue
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                for block in (node.body, node.orelse, node.finalbody):
                    visit(block)
                for handler in node.handlers:
                    visit(handler.body)
            elif isinstance(node, BLOCKS):
                visit(node.body)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("cachecore"))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    target = ".".join([*base, node.module] if node.module else base)
                else:
                    target = node.module or ""
                if not target.startswith("cachecore"):
                    continue
                for alias in node.names:  # `from . import _wire` imports a module
                    candidate = f"{target}.{alias.name}"
                    found.add(candidate if candidate in MODULES else target)

    visit(tree.body)
    return found - {name}


FILES = sorted(PACKAGE.rglob("*.py"))
MODULES = {module_name(path): path for path in FILES}


def test_no_import_cycle() -> None:
    graph = {name: runtime_imports(path) & set(MODULES) for name, path in MODULES.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def walk(node: str, trail: list[str]) -> None:
        state[node] = 1
        for child in sorted(graph[node]):
            if state.get(child) == 1:
                cycles.append([*trail[trail.index(child) :], child])
            elif child not in state:
                walk(child, [*trail, child])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name, [name])
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_architecture_page_names_every_core_module() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    core = [
        path.relative_to(PACKAGE).as_posix()
        for path in FILES
        if path.parent.name in ("cachecore", "_async") and path.name != "__init__.py"
    ]
    missing = [rel for rel in core if f"`{rel}`" not in text]
    assert missing == [], f"docs/architecture.md does not name: {missing}"
