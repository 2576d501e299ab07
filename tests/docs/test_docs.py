"""Every ```python block of ``README.md`` and ``docs/`` runs here, alone, against the reference gateway.

Each block runs **on its own, in a fresh interpreter**, as a newcomer would paste it
into ``example.py`` and run ``python example.py``: nothing an earlier block on the
page defined, imported or configured is there. A block therefore carries its own
imports and setup. The block runs as ``__main__`` with the temporary working
directory first on ``sys.path`` (as a script's directory would be), and tracebacks
point at the page's own lines.

Blocks run a few at a time against one shared reference gateway served on
loopback, each as its own tenant (a freshly minted token per block), so no block
sees another's cache entries and every block starts from an empty cache. Each gets
the environment a user would have set: ``CACHECORE_GATEWAY_URL``,
``CACHECORE_TOKEN``, ``CACHECORE_JWT_SECRET``, ``OPENAI_BASE_URL`` and
``OPENAI_API_KEY``, and runs in a temporary working directory.

One marker, an HTML comment on the line just before the fence (invisible in the
rendered docs), changes how a block runs: ``<!-- notebook -->`` makes it a
notebook cell. It runs alone too, but inside a running asyncio event loop with
top-level ``await`` allowed (as Jupyter runs a cell), so it must use top-level
``await``, and it must not call ``asyncio.run``.

Any other comment on that line is refused, so a misspelt marker cannot slip by.
There is no way to skip a block and no way to continue the block before it: a
Python example that cannot run on its own does not belong in the docs (a "try it"
part goes under ``if __name__ == "__main__":`` in the same block). Other languages (bash, toml, text) are not run; Python written
with another fence name (``py``, ``python3``, ``pycon``) fails, so nothing slips by.

Run blocks by hand (with the variables above set):
``python tests/docs/test_docs.py docs/errors.md:55`` runs the block whose code
starts on line 55; ``python tests/docs/test_docs.py docs/errors.md`` runs every
block of the page, each in its own interpreter. This part of the module imports
only the standard library, so a block's interpreter starts with nothing else loaded.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import linecache
import re
import subprocess
import sys
import textwrap
import types
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
BLOCK_TIMEOUT = 120.0

_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[^\s`{]*)")
_COMMENT = re.compile(r"^[ \t]*<!--(?P<body>.*?)-->[ \t]*$")
_MARKER = re.compile(r"^notebook$")
_PYTHON = "python"
_PYTHON_ALIASES = frozenset({"py", "python3", "py3", "pycon", "ipython", "pyi"})

SCRIPT, NOTEBOOK = "script", "notebook"


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the first code line in the page
    source: str
    kind: str = SCRIPT  # script, or notebook (marked)

    @property
    def where(self) -> str:
        page = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page
        return f"{page}:{self.line}"


def _marker(page: Path, lines: list[str], fence_index: int) -> str:
    """The kind of block the comment on the line before the fence declares."""
    if fence_index == 0:
        return SCRIPT
    comment = _COMMENT.match(lines[fence_index - 1])
    if comment is None:
        return SCRIPT
    if _MARKER.match(comment["body"].strip()) is None:
        raise AssertionError(
            f"{page.name}:{fence_index}: the only comment allowed before a ```python fence"
            f" is <!-- notebook -->, not <!--{comment['body']}--> (every block runs on its"
            " own: put a continuation in the block it continues)"
        )
    return NOTEBOOK


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
            kind = _marker(page, lines, i)
            body = "\n".join(
                line[len(indent) :] if line.startswith(indent) else line for line in lines[start:j]
            )
            blocks.append(Block(page, start + 1, textwrap.dedent(body), kind))
        i = j + 1
    return blocks


def _compile(block: Block) -> types.CodeType:
    filename = str(block.page)
    # Pad so tracebacks point at the page's own line numbers.
    source = "\n" * (block.line - 1) + block.source
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if block.kind != SCRIPT else 0
    return compile(source, filename, "exec", flags=flags, dont_inherit=True)


def run_alone(block: Block, cwd: Path) -> None:
    """Run ``block`` as one fresh program.

    The code runs as ``__main__`` with ``cwd`` first on ``sys.path``, as
    ``python example.py`` would. A notebook cell runs inside a running asyncio
    loop, with top-level ``await`` allowed.
    """
    main = types.ModuleType("__main__")
    main.__file__ = str(cwd / "example.py")
    sys.modules["__main__"] = main
    sys.argv = [main.__file__]
    sys.path[0] = str(cwd)
    namespace = main.__dict__
    code = _compile(block)
    notebook = block.kind == NOTEBOOK
    if notebook and not code.co_flags & inspect.CO_COROUTINE:
        raise AssertionError(
            f"{block.where} is marked <!-- notebook --> but uses no top-level await: "
            "drop the marker, it runs as a script"
        )

    async def cell() -> None:
        await eval(code, namespace)

    try:
        if notebook:
            asyncio.run(cell())
        else:
            exec(code, namespace)
    except BaseException as exc:
        if hasattr(exc, "add_note"):
            exc.add_note(f"in the docs example at {block.where}")
        raise


def pages() -> list[Path]:
    """README.md and every page under docs/."""
    return [README, *sorted(DOCS.rglob("*.md"))]


def _split_target(target: str) -> tuple[Path, int | None]:
    name, sep, line = target.rpartition(":")
    if sep and line.isdigit():
        return Path(name).resolve(), int(line)
    return Path(target).resolve(), None


def main(argv: list[str]) -> int:
    """``PAGE.md:LINE`` runs that block here; ``PAGE.md`` runs each of its blocks alone."""
    failed = 0
    for target in argv:
        page, line = _split_target(target)
        blocks = extract_blocks(page)
        if line is not None:
            run_alone(next(b for b in blocks if b.line == line), Path.cwd())
            continue
        for block in blocks:
            proc = subprocess.run(
                [sys.executable, __file__, f"{page}:{block.line}"],
                timeout=BLOCK_TIMEOUT,
                check=False,
            )
            failed += proc.returncode != 0
            print(f"{block.where}: {'ok' if proc.returncode == 0 else 'FAILED'}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


# The tests. Below this line the module may import more than the standard library.

import os  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from concurrent.futures import Future, ThreadPoolExecutor  # noqa: E402

import pytest  # noqa: E402

from cachecore.testing import GatewayConfig, ReferenceGateway, mint_token  # noqa: E402

SECRET = "docs-test-secret-of-at-least-32-bytes"
PARALLEL_BLOCKS = 4

BLOCKS = [block for page in pages() for block in extract_blocks(page)]


def _block_id(block: Block) -> str:
    return str(block.page.relative_to(DOCS if block.page.is_relative_to(DOCS) else ROOT)) + (
        f":{block.line}"
    )


def test_docs_exist_and_have_examples() -> None:
    assert len(pages()) > 1, f"no pages under {DOCS}"
    assert BLOCKS, "no ```python blocks found in README.md and docs/"


@pytest.fixture(scope="session")
def docs_gateway() -> ReferenceGateway:
    return ReferenceGateway(GatewayConfig(secret=SECRET))


@pytest.fixture(scope="session")
def docs_gateway_url(docs_gateway: ReferenceGateway) -> Iterator[str]:
    pytest.importorskip("uvicorn", reason="the docs run against a loopback gateway (uvicorn)")
    from cachecore.testing import serve

    with serve(docs_gateway) as url:
        yield url


def user_env(gateway_url: str, tenant: str) -> dict[str, str]:
    """The environment variables a user would have set, with a tenant of the block's own.

    One tenant per block keeps blocks apart in the shared gateway (tenants never see
    each other's entries), so every block starts from an empty cache and blocks can
    run concurrently.
    """
    token = mint_token(SECRET, tenant)
    return {
        **os.environ,
        "CACHECORE_GATEWAY_URL": gateway_url,
        "CACHECORE_TOKEN": token,
        "CACHECORE_JWT_SECRET": SECRET,
        "OPENAI_BASE_URL": f"{gateway_url}/v1",
        "OPENAI_API_KEY": token,
    }


def run_in_subprocess(
    block: Block, env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, __file__, f"{block.page}:{block.line}"],
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
        env=env,
        cwd=cwd,
        check=False,
    )


@pytest.fixture(scope="session")
def block_runs(
    request: pytest.FixtureRequest,
    docs_gateway_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[Block, Future[subprocess.CompletedProcess[str]]]]:
    """Every selected block started at once (a few at a time), each in its own interpreter."""
    selected = {
        item.callspec.params["block"]
        for item in request.session.items
        if "block" in getattr(getattr(item, "callspec", None), "params", {})
    }
    with ThreadPoolExecutor(max_workers=PARALLEL_BLOCKS) as pool:
        yield {
            block: pool.submit(
                run_in_subprocess,
                block,
                user_env(docs_gateway_url, f"docs-{block.page.stem}-{block.line}"),
                tmp_path_factory.mktemp(f"{block.page.stem}-{block.line}"),
            )
            for block in BLOCKS
            if block in selected
        }


@pytest.mark.parametrize("block", BLOCKS, ids=_block_id)
def test_block_runs_alone(
    block: Block, block_runs: dict[Block, Future[subprocess.CompletedProcess[str]]]
) -> None:
    proc = block_runs[block].result()
    if proc.returncode != 0:
        how = {SCRIPT: "as a script", NOTEBOOK: "as a notebook cell"}
        pytest.fail(
            f"{block.where} failed on its own, {how[block.kind]} "
            f"(exit {proc.returncode}):\n{proc.stderr}\n--- stdout ---\n{proc.stdout}",
            pytrace=False,
        )
