"""``cachecore invalidate`` and ``cachecore token inspect`` against a loopback gateway."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys

import pytest

from cachecore.__main__ import main
from cachecore.testing import Fault, ReferenceGateway, mint_token

SECRET = "cli-secret-of-at-least-32-bytes-long"


@pytest.fixture
def gateway(
    cachecore_gateway: ReferenceGateway, cachecore_server: str
) -> tuple[ReferenceGateway, str]:
    """The pytest plugin's gateway and the loopback URL its ``cachecore_server`` serves."""
    return cachecore_gateway, cachecore_server


@pytest.fixture
def env(gateway: tuple[ReferenceGateway, str], monkeypatch: pytest.MonkeyPatch) -> str:
    gw, url = gateway
    token = gw.mint_token("cli-tenant")
    monkeypatch.setenv("CACHECORE_GATEWAY_URL", url)
    monkeypatch.setenv("CACHECORE_TOKEN", token)
    return token


def test_invalidate_prints_one_line_per_dep_and_exits_0(
    env: str, gateway: tuple[ReferenceGateway, str], capsys: pytest.CaptureFixture[str]
) -> None:
    gw, _ = gateway
    code = main(["invalidate", "table:products", "table:prices", "--new-hash", "2024-03-15"])
    out, err = capsys.readouterr()
    assert code == 0
    lines = out.strip().splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["ok", "table:products"],
        ["ok", "table:prices"],
    ]
    assert gw.dep_version("cli-tenant", "table:prices") == "2024-03-15"
    assert env not in out + err


def test_invalidate_json(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["invalidate", "doc:1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True
    assert doc["results"][0]["dep_id"] == "doc:1"
    assert len(doc["results"][0]["new_hash"]) == 32  # a generated UUID, hex


def test_invalidate_failure_exits_1_with_the_cause(
    env: str, gateway: tuple[ReferenceGateway, str], capsys: pytest.CaptureFixture[str]
) -> None:
    gw, _ = gateway
    gw.add_fault(Fault(400, message="no such thing"), path="/v1/invalidate", times=1)
    code = main(["invalidate", "doc:bad", "--max-retries", "0"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.startswith("FAILED  doc:bad  after 1 attempt(s)")
    assert "400" in out
    assert env not in out + err
    assert main(["invalidate", "doc:bad"]) == 0  # the fault was used up: the retry works


def test_invalidate_gateway_down_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("CACHECORE_TOKEN", mint_token(SECRET, "t"))
    code = main(
        ["invalidate", "doc:1", "--gateway-url", f"http://127.0.0.1:{port}", "--max-retries", "0"]
    )
    assert code == 1
    out, err = capsys.readouterr()
    assert out == "FAILED  doc:1  after 1 attempt(s)\n"  # results on stdout
    assert "cachecore: invalidating 'doc:1' could not reach the gateway" in err  # why, on stderr


@pytest.mark.parametrize(
    ("unset", "expected"),
    [("CACHECORE_TOKEN", "no tenant token"), ("CACHECORE_GATEWAY_URL", "no gateway URL")],
)
def test_invalidate_missing_setting_is_one_line(
    env: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    unset: str,
    expected: str,
) -> None:
    monkeypatch.delenv(unset)
    assert main(["invalidate", "doc:1"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert expected in err
    assert "Traceback" not in err


def test_invalidate_bad_dep_id_is_one_line(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["invalidate", "doc\n1"]) == 2
    err = capsys.readouterr().err
    assert "control character" in err
    assert err.count("\n") == 1


def test_token_inspect_shows_claims_not_the_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    token = mint_token(SECRET, "acme", roles=["reader"], scope="chat")
    monkeypatch.setenv("CACHECORE_TOKEN", token)
    assert main(["token", "inspect", "--json"]) == 0
    out = capsys.readouterr().out
    info = json.loads(out)
    assert info["tenant_id"] == "acme"
    assert info["roles"] == ["reader"]
    assert info["scope"] == "chat"
    assert info["expired"] is False
    assert token not in out
    assert token.split(".")[-1] not in out  # not even the signature


def test_token_inspect_flags_expired_and_reads_stdin() -> None:
    token = mint_token(SECRET, "old", expires_in=-60)
    proc = subprocess.run(
        [sys.executable, "-m", "cachecore", "token", "inspect", "-"],
        input=token + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "expired:    True" in proc.stdout
    assert token not in proc.stdout + proc.stderr


def test_token_inspect_unreadable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "inspect", "not-a-jwt"]) == 2
    err = capsys.readouterr().err
    assert "not a readable tenant token" in err
    assert "not-a-jwt" not in err


def test_invalidate_leaves_the_sdk_logger_as_it_found_it(env: str) -> None:
    import logging

    assert main(["invalidate", "doc:log"]) == 0
    assert logging.getLogger("cachecore").disabled is False


def run_cli(
    *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "cachecore", *args],
        input=stdin,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_token_mint_prints_a_token_the_gateway_accepts(tmp_path: object) -> None:
    from cachecore._auth import read_token
    from cachecore.testing import GatewayConfig, serve

    secret = "mint-secret-for-the-cli-test-32-bytes+"
    proc = run_cli(
        "token", "mint", "--tenant", "acme", "--ttl", "120", "--roles", "admin", "analyst",
        env={"CACHECORE_JWT_SECRET": secret},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    token = proc.stdout.strip()
    assert proc.stdout == token + "\n", "the token alone on stdout"
    info = read_token(token)
    assert info is not None
    assert (info.tenant_id, list(info.roles)) == ("acme", ["admin", "analyst"])
    assert secret not in proc.stdout + proc.stderr
    with serve(ReferenceGateway(GatewayConfig(secret=secret))) as url:
        from cachecore import SyncCachecoreClient

        with SyncCachecoreClient(url, token) as cc:
            assert cc.invalidate("doc:1").ok, "the gateway with that secret accepts it"


def test_token_mint_reads_the_secret_from_a_file_or_stdin(tmp_path: object) -> None:
    from pathlib import Path

    secret = "from-a-file-a-secret-of-32-bytes-or-more"
    secret_file = Path(str(tmp_path)) / "secret"
    secret_file.write_text(secret + "\n", encoding="utf-8")
    by_file = run_cli("token", "mint", "--tenant", "t", "--secret-file", str(secret_file))
    by_stdin = run_cli("token", "mint", "--tenant", "t", "--secret-file", "-", stdin=secret + "\n")
    assert by_file.returncode == by_stdin.returncode == 0, by_file.stderr + by_stdin.stderr
    # Same secret, same claims but the issue time: the signatures verify alike.
    from cachecore import SyncCachecoreClient
    from cachecore.testing import GatewayConfig, serve

    with serve(ReferenceGateway(GatewayConfig(secret=secret))) as url:
        for proc in (by_file, by_stdin):
            with SyncCachecoreClient(url, proc.stdout.strip()) as cc:
                assert cc.invalidate("doc:1").ok


def test_token_mint_refuses_without_a_secret_and_never_takes_one_in_argv() -> None:
    proc = run_cli("token", "mint", "--tenant", "t", env={"CACHECORE_JWT_SECRET": ""})
    assert proc.returncode == 2
    assert "no secret: set CACHECORE_JWT_SECRET or pass --secret-file" in proc.stderr
    assert proc.stdout == ""
    assert run_cli("token", "mint", "--tenant", "t", "--secret", "x").returncode == 2


def test_version() -> None:
    import cachecore

    proc = run_cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"cachecore-python {cachecore.__version__}"


def test_invalidate_reads_deps_from_a_file_or_stdin(
    env: str, gateway: tuple[ReferenceGateway, str], tmp_path: object
) -> None:
    from pathlib import Path

    gw, url = gateway
    listing = "# evicted after the nightly import\ntable:a\n\n  table:b  \n# done\n"
    path = Path(str(tmp_path)) / "deps.txt"
    path.write_text(listing, encoding="utf-8")
    settings = {"CACHECORE_GATEWAY_URL": url, "CACHECORE_TOKEN": env}
    by_file = run_cli("invalidate", "table:c", "--from-file", str(path), env=settings)
    by_stdin = run_cli("invalidate", "--from-file", "-", env=settings, stdin=listing)
    assert by_file.returncode == by_stdin.returncode == 0, by_file.stderr + by_stdin.stderr
    assert [line.split()[1] for line in by_file.stdout.splitlines()] == [
        "table:c",
        "table:a",
        "table:b",
    ]
    assert [line.split()[1] for line in by_stdin.stdout.splitlines()] == ["table:a", "table:b"]
    assert re.fullmatch(r"cachecore: 3 ok, 0 failed in \d+\.\d s\n", by_file.stderr)
    assert gw.dep_version("cli-tenant", "table:b") is not None


def test_invalidate_explains_failures_on_stderr(
    env: str, gateway: tuple[ReferenceGateway, str], capsys: pytest.CaptureFixture[str]
) -> None:
    gw, _ = gateway
    gw.add_fault(Fault(400, message="no such thing"), path="/v1/invalidate", times=1)
    assert main(["invalidate", "doc:bad", "--max-retries", "0"]) == 1
    out, err = capsys.readouterr()
    assert out == "FAILED  doc:bad  after 1 attempt(s) (HTTP 400)\n"
    # Explained once, with what the gateway said rather than its JSON.
    [explained] = [line for line in err.splitlines() if "doc:bad" in line]
    assert explained.startswith("cachecore: invalidating 'doc:bad' failed with HTTP 400")
    assert explained.endswith(": no such thing (injected_fault)"), explained
    assert "{" not in explained
    assert re.search(r"cachecore: 0 ok, 1 failed in \d+\.\d s\n$", err)


def test_invalidate_without_deps_says_how(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["invalidate"]) == 2
    assert "no deps: name them, or pass --from-file" in capsys.readouterr().err


def test_doctor_passes_against_a_live_gateway_and_fails_with_the_url_named(
    env: str, gateway: tuple[ReferenceGateway, str]
) -> None:
    _, url = gateway
    good = run_cli("doctor", env={"CACHECORE_GATEWAY_URL": url, "CACHECORE_TOKEN": env})
    assert good.returncode == 0, good.stdout + good.stderr
    names = [line.split()[1] for line in good.stdout.splitlines()]
    assert names[:4] == ["scheme", "reachable", "token", "expiry"]
    assert all(line.startswith("ok") for line in good.stdout.splitlines())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{s.getsockname()[1]}"
    bad = run_cli("doctor", env={"CACHECORE_GATEWAY_URL": down, "CACHECORE_TOKEN": env})
    assert bad.returncode == 1
    assert f"FAIL  reachable   cannot reach {down}" in bad.stdout
    for proc in (good, bad):
        assert env not in proc.stdout + proc.stderr


def test_a_long_run_on_a_terminal_shows_a_progress_bar(
    env: str, gateway: tuple[ReferenceGateway, str], tmp_path: object
) -> None:
    import os
    import pty
    from pathlib import Path

    from cachecore._cli import PROGRESS_FROM

    _, url = gateway
    deps = Path(str(tmp_path)) / "deps.txt"
    deps.write_text("".join(f"row:{i}\n" for i in range(PROGRESS_FROM + 56)), encoding="utf-8")
    primary, secondary = pty.openpty()  # stderr is a terminal; stdout stays a pipe
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cachecore", "invalidate", "--from-file", str(deps)],
            stdout=subprocess.PIPE,
            stderr=secondary,
            env={**os.environ, "CACHECORE_GATEWAY_URL": url, "CACHECORE_TOKEN": env},
            text=True,
        )
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            chunks.append(chunk)
        stdout, _ = proc.communicate(timeout=120)
    finally:
        os.close(primary)
    terminal = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0, terminal
    assert f"{PROGRESS_FROM + 56}/{PROGRESS_FROM + 56}" in terminal, terminal  # tqdm's counter
    assert "invalidating" in terminal
    assert f"{PROGRESS_FROM + 56} ok, 0 failed in" in terminal
    assert len(stdout.splitlines()) == PROGRESS_FROM + 56, "results stay on stdout"
    assert env not in terminal + stdout


def test_no_progress_bar_when_stderr_is_not_a_terminal(
    env: str, gateway: tuple[ReferenceGateway, str]
) -> None:
    from cachecore._cli import PROGRESS_FROM

    _, url = gateway
    listing = "".join(f"row:{i}\n" for i in range(PROGRESS_FROM))
    proc = run_cli(
        "invalidate", "--from-file", "-", stdin=listing,
        env={"CACHECORE_GATEWAY_URL": url, "CACHECORE_TOKEN": env},
    )  # fmt: skip
    assert proc.returncode == 0
    assert proc.stderr.count("\n") == 1, proc.stderr  # the summary line only
