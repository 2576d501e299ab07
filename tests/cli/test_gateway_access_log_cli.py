"""``cachecore gateway``: one access line per request on stderr, none with ``--quiet``."""

from __future__ import annotations

import dataclasses
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from cachecore.__main__ import build_parser
from cachecore._wire import CACHE_HEADER, TOKEN_HEADER
from cachecore.testing import mint_token

SECRET = "a-gateway-cli-secret-of-more-than-32-bytes"
ACCESS = "cachecore.testing.access"


@contextmanager
def gateway_process(
    tmp_path: Path, *extra: str, env_secret: bool = True
) -> Iterator[tuple[str, str, list[str]]]:
    """Run ``cachecore gateway --port 0`` until the block ends: (url, its hint, stderr lines).

    The stderr list is filled when the block ends (the process is stopped first).
    """
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": str(src)}
    env.pop("CACHECORE_JWT_SECRET", None)
    if env_secret:
        env["CACHECORE_JWT_SECRET"] = SECRET
    proc = subprocess.Popen(
        [sys.executable, "-m", "cachecore", "gateway", "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    err: list[str] = []
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:")
        hint = proc.stdout.readline().strip() + "\n" + proc.stdout.readline().strip()
        deadline = time.monotonic() + 10
        while True:  # refused until uvicorn listens; the first answer is one request
            try:
                assert httpx.get(url + "/health", timeout=2).status_code == 200
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the gateway did not start"
                time.sleep(0.05)
        yield url, hint, err
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=10)
        err.extend(stderr.splitlines())


def chat_twice(url: str, token: str, requests: int = 2) -> None:
    """``requests`` identical chats: 200 each, the last a ``HIT_L1``."""
    with httpx.Client(base_url=url, timeout=5) as client:
        for _ in range(requests):
            answer = client.post(
                "/v1/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                headers={TOKEN_HEADER: token},
            )
            assert answer.status_code == 200
        assert answer.headers[CACHE_HEADER] == "HIT_L1"


def run_gateway(tmp_path: Path, *extra: str, requests: int) -> tuple[str, str]:
    """Start ``cachecore gateway --port 0``, make ``requests`` + 1 calls, stop it: (token, stderr)."""
    token = mint_token(SECRET, "cli-tenant")
    with gateway_process(tmp_path, *extra) as (url, _, err):
        chat_twice(url, token, requests)
    return token, "\n".join(err) + "\n"


@pytest.mark.parametrize("by_file", [False, True])
def test_the_startup_hint_mints_a_token_the_gateway_accepts(by_file: bool, tmp_path: Path) -> None:
    """The hint names the way the secret was given (env var, or the same --secret-file)."""
    extra: tuple[str, ...] = ()
    path = tmp_path / "it's a secret.txt"  # a space and a quote: the hint must quote them
    if by_file:
        path.write_text(SECRET + "\n")
        # Relative to the gateway's directory: the hint names the file from anywhere.
        extra = ("--secret-file", path.name)
    with gateway_process(tmp_path, *extra, env_secret=not by_file) as (url, hint, _):
        needs, pasted = hint.split("\n")
        # The command has a line of its own, nothing else on it: it runs as pasted in
        # any shell (zsh, by default, takes a "#" comment for arguments).
        assert "#" not in pasted
        assert "$" not in pasted
        command = shlex.split(pasted)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
        env.pop("CACHECORE_JWT_SECRET", None)
        if by_file:
            assert needs == "a tenant token, from the same file:"
            assert f"--secret-file={path}" in command
        else:
            assert needs == "a tenant token, with the same secret in CACHECORE_JWT_SECRET:"
            assert not any(part.startswith("--secret-file") for part in command)
            env["CACHECORE_JWT_SECRET"] = SECRET
        assert command[:3] == ["cachecore", "token", "mint"]
        assert command[-2:] == ["--tenant", "NAME"]
        minted = subprocess.run(
            [sys.executable, "-m", "cachecore", *command[1:-1], "hinted"],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path.parent,  # not where the gateway runs
            check=True,
        )
        chat_twice(url, minted.stdout.strip())


def test_one_access_line_per_request_on_stderr(tmp_path: Path) -> None:
    token, err = run_gateway(tmp_path, requests=2)
    lines = [line for line in err.splitlines() if ACCESS in line]
    assert len(lines) == 3, err
    assert "GET /health tenant=- cache=- status=200 " in lines[0]
    assert "POST /v1/chat/completions tenant=cli-tenant cache=MISS status=200 " in lines[1]
    assert "POST /v1/chat/completions tenant=cli-tenant cache=HIT_L1 status=200 " in lines[2]
    assert all(line.endswith("ms") for line in lines)
    assert token not in err
    assert SECRET not in err


def test_quiet_prints_no_access_line(tmp_path: Path) -> None:
    token, err = run_gateway(tmp_path, "--quiet", requests=2)
    assert ACCESS not in err
    assert "tenant=" not in err
    assert token not in err


def test_help_says_what_the_gateway_is_for(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["gateway", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "single-process gateway for tests and local use, not for production" in out
    for option in ("--max-connections", "--header-timeout", "--idle-timeout", "--quiet"):
        assert option in out


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--max-tenant-mb", "2", "--max-total-mb", "1"], "max_total_bytes"),
    ],
)
def test_bad_cache_bounds_are_one_line_and_exit_2(
    options: list[str],
    named: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cachecore.__main__ import main

    monkeypatch.setenv("CACHECORE_JWT_SECRET", SECRET)
    assert main(["gateway", "--port", "0", *options]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert named in err


def test_cache_bounds_are_parsed(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(
        ["gateway", "--ttl", "30", "--max-tenant-mb", "0.5", "--max-total-mb", "8"]
    )
    assert (args.ttl, args.max_tenant_bytes, args.max_total_bytes) == (30.0, 512 * 1024, 8 << 20)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["gateway", "--max-tenant-mb", "-1"])
    assert "must be a positive number of MiB, got '-1'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--ttl", "0", "must be a positive number of seconds, got '0'"),
        ("--ttl", "inf", "must be a positive number of seconds, got 'inf'"),
        ("--ttl", "soon", "must be a number, got 'soon'"),
        ("--max-prompt-chars", "0", "must be at least 1, got '0'"),
        ("--max-model-chars", "1.5", "must be a whole number, got '1.5'"),
        ("--max-dep-chars", "-3", "must be at least 1, got '-3'"),
        ("--max-deps", "many", "must be a whole number, got 'many'"),
        ("--max-entries", "0", "must be at least 1, got '0'"),
        ("--max-total-mb", "nan", "must be a positive number of MiB, got 'nan'"),
        ("--max-total-mb", "inf", "must be a positive number of MiB, got 'inf'"),
        ("--max-tenant-mb", "1e400", "must be a positive number of MiB, got '1e400'"),
        ("--l2-threshold", "3", "must be in (0, 1], or off, got '3'"),
        ("--l2-threshold", "0", "must be in (0, 1], or off, got '0'"),
        ("--l2-threshold", "nan", "must be in (0, 1], or off, got 'nan'"),
        ("--l2-threshold", "none", "must be a number in (0, 1], or off, got 'none'"),
        ("--max-tenant-mb", "1e-9", "must be at least one byte's worth of MiB, got '1e-9'"),
        ("--max-dep-chars", "8", "must be at least 32 (invalidate()'s default new hash"),
        ("--rate-limit", "-1", "must be 0 (off) or a positive number, got '-1'"),
        ("--rate-limit", "inf", "must be 0 (off) or a positive number, got 'inf'"),
        ("--max-token-lifetime", "0", "must be a positive number of seconds, got '0'"),
        ("--header-timeout", "0", "must be a positive number of seconds, got '0'"),
        ("--idle-timeout", "-1", "must be a positive number of seconds, got '-1'"),
        ("--body-timeout", "nan", "must be a positive number of seconds, got 'nan'"),
        ("--max-connections", "0", "must be at least 1, got '0'"),
    ],
)
def test_bad_option_values_are_usage_errors_naming_the_option(
    option: str, value: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["gateway", option, value])
    assert exit_info.value.code == 2
    assert f"argument {option}: {said}" in capsys.readouterr().err


def test_cache_bounds_off_and_defaults_reach_the_config() -> None:
    from cachecore.__main__ import _gateway_bounds
    from cachecore.testing import GatewayConfig

    base = GatewayConfig(secret=SECRET)
    args = build_parser().parse_args(
        [
            "gateway",
            "--l2-threshold",
            "OFF",
            "--max-total-mb",
            "off",
            "--max-model-chars",
            "1000",
            "--max-dep-chars",
            "2048",
            "--max-deps",
            "128",
            "--max-entries",
            "50",
        ]
    )
    config = dataclasses.replace(base, **_gateway_bounds(args))
    assert config.l2_threshold is None
    assert config.max_total_bytes is None
    assert (config.max_model_chars, config.max_dep_chars, config.max_deps) == (1000, 2048, 128)
    assert config.max_entries == 50
    # Options not given keep GatewayConfig's own defaults.
    untouched = dataclasses.replace(base, **_gateway_bounds(build_parser().parse_args(["gateway"])))
    assert untouched == base


def test_gateway_help_states_gateway_configs_defaults(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--help`` restates each bound's default: it must be GatewayConfig's."""
    from cachecore.testing import GatewayConfig

    config = GatewayConfig(secret=SECRET)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["gateway", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    mib = 1024 * 1024
    expected = {
        "--l2-threshold": config.l2_threshold,
        "--max-entries": config.max_entries,
        "--max-tenant-mb": config.max_tenant_bytes // mib,
        "--max-total-mb": (config.max_total_bytes or 0) // mib,
        "--max-prompt-chars": config.max_prompt_chars,
        "--max-model-chars": config.max_model_chars,
        "--max-dep-chars": config.max_dep_chars,
        "--max-deps": config.max_deps,
    }
    for flag, default in expected.items():
        start = text.index(f" {flag} ") + 1
        end = text.find(" --", start + len(flag))
        help_text = text[start:] if end == -1 else text[start:end]
        assert f"(default {default})" in help_text, help_text


def test_token_commands_never_echo_unrecognized_arguments(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shell that expanded ``$CACHECORE_JWT_SECRET`` into extra words must not print it."""
    from cachecore.__main__ import main

    monkeypatch.setenv("CACHECORE_JWT_SECRET", SECRET)
    for argv in (
        ["token", "mint", "--tenant", "acme", "#", "with", SECRET, "set"],
        ["token", "inspect", "a.b.c", SECRET],
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        captured = capsys.readouterr()
        assert "unrecognized argument(s), not shown" in captured.err
        assert SECRET not in captured.err + captured.out
    # Other commands still name what they did not recognise.
    with pytest.raises(SystemExit):
        main(["invalidate", "--bogus"])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_token_mint_refuses_secret_on_argv_without_repeating_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--secret VALUE`` was taken as ``--secret-file`` and the value printed back."""
    from cachecore.__main__ import main

    value = "my-real-production-secret-0123456789abcdef"
    with pytest.raises(SystemExit) as exit_info:
        main(["token", "mint", "--tenant", "acme", "--secret", value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--secret is not accepted" in err
    assert "CACHECORE_JWT_SECRET" in err
    assert value not in err


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_a_bad_port_is_a_usage_error(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["gateway", "--port", port])
    assert exit_info.value.code == 2
    assert "argument --port" in capsys.readouterr().err
