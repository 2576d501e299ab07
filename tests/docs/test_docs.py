"""Every ```python block of every page in ``docs/`` runs here, against the reference gateway.

A page is run like a notebook: its blocks execute in order in one namespace, so a
later block may use names an earlier one defined, and a block may use top-level
``await`` (compiled with ``ast.PyCF_ALLOW_TOP_LEVEL_AWAIT`` and run on the page's
own event loop). Each page runs in a fresh interpreter, as a user's script
would (a few pages at a time, each as its own tenant of one shared gateway): nothing a page configures (Django settings, logging, registered models)
leaks into another page or into the rest of the test suite, and nothing the suite
configured leaks into a page. A reference gateway is served on loopback, and
each page gets the environment a user would have set:
``CACHECORE_GATEWAY_URL``, ``CACHECORE_TOKEN`` (a freshly minted tenant token),
``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``. Pages run in a temporary working directory.

Run one page by hand: ``python tests/docs/test_docs.py docs/invalidation.md``
(with those variables set).

There is no way to skip a block: a Python example that cannot run here does not
belong in the docs. Other languages (bash, toml, text) are not run; Python written
with another fence name (``py``, ``python3``, ``pycon``) fails, so nothing slips by.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import linecache
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from cachecore.testing import GatewayConfig, ReferenceGateway, mint_token

DOCS = Path(__file__).resolve().parents[2] / "docs"
SECRET = "docs-test-secret"
PAGE_TIMEOUT = 120.0
PARALLEL_PAGES = 4

_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[^\s`{]*)")
_PYTHON = "python"
_PYTHON_ALIASES = frozenset({"py", "python3", "py3", "pycon", "ipython", "pyi"})


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the first code line in the page
    source: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(DOCS.parent)}:{self.line}"


def extract_blocks(page: Path) -> list[Block]:
    """The ```python blocks of ``page``, dedented (blocks may sit in tabs or admonitions)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = _OPEN.match(lines[i])
        if match is None:
            i += 1
            continue
        indent, fence = match["indent"], match["fence"]
        lang = match["lang"].lower().lstrip(".")
        close = re.compile(rf"^{re.escape(indent)}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        start = i + 1
        j = start
        while j < len(lines) and close.match(lines[j]) is None:
            j += 1
        if j == len(lines):
            raise AssertionError(f"{page.name}:{i + 1}: code fence never closed")
        if lang in _PYTHON_ALIASES:
            raise AssertionError(
                f"{page.name}:{i + 1}: write ```python (not ```{lang}) so the block is run"
            )
        if lang == _PYTHON:
            body = "\n".join(
                line[len(indent) :] if line.startswith(indent) else line for line in lines[start:j]
            )
            blocks.append(Block(page, start + 1, textwrap.dedent(body)))
        i = j + 1
    return blocks


def _pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


PAGES_WITH_CODE = [p for p in _pages() if extract_blocks(p)]


def test_docs_exist_and_have_examples() -> None:
    assert _pages(), f"no pages under {DOCS}"
    assert PAGES_WITH_CODE, "no ```python blocks found in docs/"


@pytest.fixture(scope="session")
def docs_gateway() -> ReferenceGateway:
    return ReferenceGateway(GatewayConfig(secret=SECRET))


@pytest.fixture(scope="session")
def docs_gateway_url(docs_gateway: ReferenceGateway) -> Iterator[str]:
    pytest.importorskip("uvicorn", reason="the docs run against a loopback gateway (uvicorn)")
    from cachecore.testing import serve

    with serve(docs_gateway) as url:
        yield url


def user_env(gateway_url: str, page: Path) -> dict[str, str]:
    """The environment variables a user would have set, with a tenant of the page's own.

    One tenant per page keeps pages apart in the shared gateway (tenants never see
    each other's entries), so every page starts from an empty cache and pages can
    run concurrently.
    """
    token = mint_token(SECRET, f"docs-{page.stem}")
    return {
        **os.environ,
        "CACHECORE_GATEWAY_URL": gateway_url,
        "CACHECORE_TOKEN": token,
        "CACHECORE_JWT_SECRET": SECRET,
        "OPENAI_BASE_URL": f"{gateway_url}/v1",
        "OPENAI_API_KEY": token,
    }


def run_in_subprocess(
    page: Path, env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, __file__, str(page)],
        capture_output=True,
        text=True,
        timeout=PAGE_TIMEOUT,
        env=env,
        cwd=cwd,
    )


@pytest.fixture(scope="session")
def page_runs(
    docs_gateway_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[Path, Future[subprocess.CompletedProcess[str]]]]:
    """Every page started at once (a few at a time), each in its own interpreter."""
    with ThreadPoolExecutor(max_workers=PARALLEL_PAGES) as pool:
        yield {
            page: pool.submit(
                run_in_subprocess,
                page,
                user_env(docs_gateway_url, page),
                tmp_path_factory.mktemp(page.stem),
            )
            for page in PAGES_WITH_CODE
        }


def run_page(blocks: list[Block]) -> None:
    """Run ``blocks`` in order in one namespace, awaiting blocks that use top-level await."""
    namespace: dict[str, object] = {"__name__": "__main__"}
    loop = asyncio.new_event_loop()
    try:
        for block in blocks:
            filename = str(block.page)
            # Pad so tracebacks point at the page's own line numbers.
            source = "\n" * (block.line - 1) + block.source
            linecache.cache[filename] = (
                len(source),
                None,
                source.splitlines(keepends=True),
                filename,
            )
            try:
                code = compile(source, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
                if code.co_flags & inspect.CO_COROUTINE:
                    loop.run_until_complete(eval(code, namespace))
                else:
                    exec(code, namespace)
            except BaseException as exc:
                if hasattr(exc, "add_note"):
                    exc.add_note(f"in the docs example at {block.where}")
                raise
    finally:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=lambda p: str(p.relative_to(DOCS)))
def test_page_examples_run(
    page: Path, page_runs: dict[Path, Future[subprocess.CompletedProcess[str]]]
) -> None:
    proc = page_runs[page].result()
    if proc.returncode != 0:
        pytest.fail(
            f"the examples of {page.relative_to(DOCS.parent)} failed "
            f"(exit {proc.returncode}):\n{proc.stderr}\n--- stdout ---\n{proc.stdout}",
            pytrace=False,
        )


README = DOCS.parent / "README.md"


@pytest.mark.parametrize("block", extract_blocks(README), ids=lambda b: f"README.md:{b.line}")
def test_readme_examples_run_as_scripts(
    block: Block, docs_gateway_url: str, tmp_path: Path
) -> None:
    """Each README block on its own, as ``python example.py``: what a newcomer pastes."""
    script = tmp_path / "example.py"
    script.write_text(block.source, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script)],
        env=user_env(docs_gateway_url, Path(f"readme-{block.line}")),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=PAGE_TIMEOUT,
        check=False,
    )
    assert proc.returncode == 0, f"{block.where} failed as a script:\n{proc.stderr}"


def main(argv: list[str]) -> int:
    """Run the examples of the pages named in ``argv``; print the first failure."""
    for name in argv:
        page = Path(name).resolve()
        blocks = extract_blocks(page)
        run_page(blocks)
        print(f"{page.name}: {len(blocks)} blocks ran", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
