"""Frameworks stay optional: ``import cachecore`` loads none, and a missing one names its extra."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_importing_cachecore_imports_no_framework() -> None:
    done = run(
        """
        import sys
        import cachecore, cachecore.contrib
        loaded = [m for m in ("flask", "django", "langchain_core", "langchain_openai", "werkzeug")
                  if m in sys.modules]
        print(",".join(loaded))
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_langchain_helper_module_imports_no_langchain() -> None:
    done = run(
        """
        import sys
        import cachecore.contrib.langchain
        print("langchain_core" in sys.modules)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("hide", "code", "extra"),
    [
        ("flask", "import cachecore.contrib.flask", "flask"),
        ("django", "import cachecore.contrib.django", "django"),
        (
            "langchain_openai",
            "from cachecore.contrib.langchain import chat_openai; chat_openai(cc)",
            "langchain",
        ),
    ],
)
def test_missing_framework_names_the_extra(hide: str, code: str, extra: str) -> None:
    done = run(
        f"""
        import sys
        sys.modules[{hide!r}] = None  # as if not installed
        from cachecore import SyncCachecoreClient
        cc = SyncCachecoreClient(gateway_url="http://cachecore.test", tenant_jwt="t")
        try:
            {code}
        except ImportError as exc:
            print(exc)
        else:
            print("imported")
        """
    )
    assert done.returncode == 0, done.stderr
    assert f"pip install 'cachecore-python[{extra}]'" in done.stdout
