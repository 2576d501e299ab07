"""The reference gateway: verification, tenant isolation, bounded memory, no 500s."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from hardening_helpers import SECRET, chat_body, figure, make_gateway

from cachecore.__main__ import main
from cachecore._wire import encode_deps
from cachecore.testing import (
    GatewayConfig,
    ReferenceGateway,
    TokenRejected,
    mint_token,
    serve,
    verify_token,
)
from cachecore.testing._http import GatewayRequest


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(
    header: dict[str, Any], claims: dict[str, Any], key: bytes | None, digest: Any = hashlib.sha256
) -> str:
    signing = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    sig = b"" if key is None else hmac.new(key, signing.encode(), digest).digest()
    return f"{signing}.{b64(sig)}"


def claims(**extra: Any) -> dict[str, Any]:
    return {"tenant_id": "acme", "exp": int(time.time()) + 3600, **extra}


def send(
    gw: ReferenceGateway,
    token: str | None,
    content: str = "hello there",
    deps: str | None = None,
    path: str = "/v1/chat/completions",
    body: Any = None,
) -> Any:
    headers = [("content-type", "application/json")]
    if token is not None:
        headers.append(("x-cachecore-token", token))
    if deps is not None:
        headers.append(("x-cachecore-deps", deps))
    raw = json.dumps(chat_body(content) if body is None else body).encode()
    return gw.handle(GatewayRequest.build("POST", path, headers, raw))


# -- token verification -----------------------------------------------------------------


def test_signature_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    good = mint_token(SECRET, "acme")
    verify_token(good, SECRET, leeway=30)
    with pytest.raises(TokenRejected):
        verify_token(good[:-2] + ("AA" if not good.endswith("AA") else "BB"), SECRET, leeway=30)
    assert len(calls) == 2
    assert all(len(a) == len(b) == 32 for a, b in calls)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", None, 0, ["HS256"]])
def test_alg_none_and_missing_alg_rejected(alg: Any) -> None:
    header = {"typ": "JWT"} if alg is None else {"alg": alg, "typ": "JWT"}
    for key in (None, SECRET.encode()):
        token = forge(header, claims(), key)
        with pytest.raises(TokenRejected):
            verify_token(token, SECRET, leeway=30)
        assert send(make_gateway(), token).status == 401


@pytest.mark.parametrize(
    ("alg", "digest"),
    [
        ("HS384", hashlib.sha384),
        ("HS512", hashlib.sha512),
        ("RS256", hashlib.sha256),
        ("ES256", hashlib.sha256),
        ("PS256", hashlib.sha256),
        ("hs256", hashlib.sha256),
    ],
)
def test_algorithm_confusion_rejected(alg: str, digest: Any) -> None:
    # Signed with the shared secret as an HMAC key under another algorithm name.
    token = forge({"alg": alg, "typ": "JWT"}, claims(), SECRET.encode(), digest)
    with pytest.raises(TokenRejected) as info:
        verify_token(token, SECRET, leeway=30)
    assert info.value.code == "unsupported_alg"


def test_tampered_claims_rejected() -> None:
    good = mint_token(SECRET, "acme", prefix=None)
    header, _, sig = good.split(".")
    other = b64(json.dumps(claims(tenant_id="other")).encode())
    with pytest.raises(TokenRejected) as info:
        verify_token(f"{header}.{other}.{sig}", SECRET, leeway=30)
    assert info.value.code == "bad_signature"


def test_clock_skew_leeway_is_bounded() -> None:
    token = mint_token(SECRET, "acme", expires_in=0)
    exp = json.loads(base64.urlsafe_b64decode(token.split(".")[2] + "==="))["exp"]
    verify_token(token, SECRET, leeway=30, now=exp + 29)
    with pytest.raises(TokenRejected):
        verify_token(token, SECRET, leeway=30, now=exp + 31)
    with pytest.raises(ValueError):
        GatewayConfig(secret=SECRET, jwt_leeway=301)
    with pytest.raises(ValueError):
        GatewayConfig(secret=SECRET, jwt_leeway=-1)
    nbf = forge({"alg": "HS256"}, claims(nbf=time.time() + 3600), SECRET.encode())
    with pytest.raises(TokenRejected):
        verify_token(nbf, SECRET, leeway=300)
    for missing in ({"tenant_id": "acme"}, {"exp": time.time() + 60}):
        with pytest.raises(TokenRejected):
            verify_token(forge({"alg": "HS256"}, missing, SECRET.encode()), SECRET, leeway=30)


# -- tenant isolation -------------------------------------------------------------------


def test_tenants_never_share_l1_or_l2_entries(gw: ReferenceGateway) -> None:
    a, b = gw.mint_token("tenant-a"), gw.mint_token("tenant-b")
    b_admin = gw.mint_token("tenant-b", roles=["admin"])
    prompt = "What is the refund policy for enterprise contracts signed in 2024?"
    similar = "What is the refund policy for enterprise contracts signed in 2024 ?"
    assert send(gw, a, prompt).header("x-cache") == "MISS"
    assert send(gw, a, prompt).header("x-cache") == "HIT_L1"
    assert send(gw, a, similar).header("x-cache") == "HIT_L2"
    for token in (b, b_admin):  # another tenant; the same tenant with other roles
        assert send(gw, token, prompt).header("x-cache") == "MISS"
    assert send(gw, b, similar).header("x-cache") == "HIT_L2"  # its own entry, not a's
    hints = {send(gw, t, prompt).header("x-cachecore-namespace-hint") for t in (a, b, b_admin)}
    assert len(hints) == 3


def test_invalidation_scoped_to_callers_tenant(gw: ReferenceGateway) -> None:
    a, b = gw.mint_token("tenant-a"), gw.mint_token("tenant-b")
    deps = encode_deps([("doc:1", "v1")])
    for token in (a, b):
        assert send(gw, token, "summarise doc 1", deps).header("x-cache") == "MISS"
    r = send(gw, b, path="/v1/invalidate", body={"dep_id": "doc:1", "new_hash": "v2"})
    assert r.status == 200
    assert json.loads(r.body)["evicted"] == 1
    assert send(gw, a, "summarise doc 1", deps).header("x-cache") == "HIT_L1"
    assert send(gw, b, "summarise doc 1", deps).header("x-cache") == "MISS"
    assert gw.dep_version("tenant-a", "doc:1") is None
    assert gw.dep_version("tenant-b", "doc:1") == "v2"


# -- bounded memory ---------------------------------------------------------------------


def test_one_tenant_cannot_exhaust_the_cache() -> None:
    gw = make_gateway(max_entries=50, l2_threshold=None)
    quiet, noisy = gw.mint_token("quiet"), gw.mint_token("noisy")
    for i in range(10):
        send(gw, quiet, f"question {i}")
    for i in range(500):
        send(gw, noisy, f"flood {i}")
    for i in range(300):  # invalidating endless fresh dep ids grows nothing either
        send(gw, noisy, path="/v1/invalidate", body={"dep_id": f"d:{i}", "new_hash": "x"})
    stats = gw.stats()
    assert stats.entries == {"quiet": 10, "noisy": 50}
    assert stats.evicted_lru == 450
    assert len(gw._tenants["noisy"].dep_versions) <= 50
    assert all(send(gw, quiet, f"question {i}").header("x-cache") == "HIT_L1" for i in range(10))
    assert len(gw.requests) <= 1000
    figure("gateway.entries_kept_per_tenant", 50)


def test_body_size_capped_in_process_and_over_loopback() -> None:
    gw = make_gateway(max_body_bytes=4096)
    token = gw.mint_token("acme")
    big = "x" * 5000
    assert send(gw, token, big).status == 413
    with httpx.Client(transport=gw.transport(), base_url="http://cachecore.test") as http:
        assert (
            http.post(
                "/v1/chat/completions", json=chat_body(big), headers={"x-cachecore-token": token}
            ).status_code
            == 413
        )
    with serve(gw) as url:
        r = httpx.post(
            url + "/v1/chat/completions",
            content=(b"x" * 1000 for _ in range(100)),
            headers={"x-cachecore-token": token, "content-type": "application/json"},
        )
        assert r.status_code == 413
    assert gw.stats().entries.get("acme", 0) == 0


# -- malformed requests never get a 500 ------------------------------------------------------


NESTED = "[" * 100_000


@pytest.mark.parametrize(
    "case",
    [
        "nested_body",
        "nested_deps",
        "nested_token_payload",
        "nested_token_header",
        "nested_messages",
    ],
)
def test_deeply_nested_json_is_a_4xx_not_a_500(gw: ReferenceGateway, case: str) -> None:
    token = gw.mint_token("acme")
    good_header, good_payload, _ = token.split(".", 1)[1].split(".")
    deep = b64(b"[" * 5000)
    if case == "nested_body":
        r = gw.handle(
            GatewayRequest.build(
                "POST", "/v1/chat/completions", [("x-cachecore-token", token)], NESTED.encode()
            )
        )
    elif case == "nested_deps":
        r = send(gw, token, deps=b64(NESTED.encode()))
    elif case == "nested_token_payload":
        r = send(gw, f"{good_header}.{deep}.x")
    elif case == "nested_token_header":
        r = send(gw, f"{deep}.{good_payload}.x")
    else:
        content: Any = "hi"
        for _ in range(900):
            content = [content]
        r = send(gw, token, body={"model": "m", "messages": [{"role": "user", "content": content}]})
    assert r.status < 500, r.body[:200]
    if case != "nested_messages":  # deep but valid content parts are served
        assert r.status in (400, 401), r.body[:200]


def test_garbage_over_the_socket_never_gets_a_500(gw: ReferenceGateway) -> None:
    payloads = [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"GET / HTTP/1.1\r\nHost: \xff\xff\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"POST /v1/invalidate HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{{{{{",
    ]
    with serve(gw) as url:
        port = int(url.rsplit(":", 1)[1])
        for payload in payloads:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(payload)
                try:
                    answer = sock.recv(200)
                except (TimeoutError, ConnectionResetError):
                    answer = b""
            assert not answer.startswith(b"HTTP/1.1 5"), answer
        assert httpx.get(url + "/health").status_code == 200


# -- secrets and the bound address ------------------------------------------------------

GOOD_SECRET = "a-gateway-secret-of-at-least-32-bytes"
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.mark.parametrize(
    ("secret", "says"),
    [
        ("a", "is 1 bytes"),
        ("x" * 31, "is 31 bytes"),
        (b"x" * 31, "is 31 bytes"),
        ("é" * 15, "is 30 bytes"),  # bytes, not characters
        (" ", "only whitespace"),
        (" \t\n" * 20, "only whitespace"),
        ("", "empty"),
    ],
)
def test_short_or_blank_secret_refused_by_config(secret: str | bytes, says: str) -> None:
    with pytest.raises(ValueError) as info:
        GatewayConfig(secret=secret)
    message = str(info.value)
    assert says in message
    assert 'python -c "import secrets; print(secrets.token_urlsafe(32))"' in message
    if len(secret) > 2:
        assert str(secret) not in message, "the secret is never quoted"


def test_32_byte_secrets_accepted() -> None:
    assert GatewayConfig(secret="x" * 32).secret == "x" * 32
    assert GatewayConfig(secret=b"\x00" * 32).secret == b"\x00" * 32
    assert GatewayConfig(secret="é" * 16).secret == "é" * 16


class TestOverridingThePluginSecret:
    @pytest.fixture
    def cachecore_secret(self) -> str:
        return "too-short"

    def test_a_short_override_gets_the_clear_error(self, request: pytest.FixtureRequest) -> None:
        with pytest.raises(ValueError, match="is 9 bytes; HS256 needs at least 32"):
            request.getfixturevalue("cachecore_gateway")


def test_the_plugin_secret_is_long_enough(cachecore_secret: str, cachecore_token: str) -> None:
    assert len(cachecore_secret.encode()) >= 32
    assert cachecore_secret == SECRET, "tests/shared_constants.py matches the plugin"
    assert verify_token(cachecore_token, cachecore_secret, leeway=0).tenant_id == "tenant-a"


def _mint(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["token", "mint", "--tenant", "t", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("secret", ["sh0rt-s3cr3t", " " * 40, "x" * 31])
def test_cli_refuses_short_secrets(
    secret: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    why = "only whitespace" if secret.isspace() else f"is {len(secret)} bytes"
    monkeypatch.setenv("CACHECORE_JWT_SECRET", secret)
    secret_file = tmp_path / "secret"
    secret_file.write_text(secret + "\n", encoding="utf-8")
    for command in (["token", "mint", "--tenant", "t"], ["gateway", "--port", "0"]):
        for extra in ([], ["--secret-file", str(secret_file)]):
            code = main([*command, *extra])
            out, err = capsys.readouterr()
            assert code == 2, (command, extra)
            assert out == ""
            assert why in err
            assert "token_urlsafe(32)" in err
            assert err.count("\n") == 1, "one line"
            if not secret.isspace():
                assert secret not in err
    monkeypatch.setattr("sys.stdin", io.StringIO(secret + "\n"))
    code, _, err = _mint(["--secret-file", "-"], capsys)
    assert code == 2
    assert why in err


def test_secret_file_with_trailing_newline_works(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CACHECORE_JWT_SECRET", raising=False)
    secret_file = tmp_path / "secret"
    secret_file.write_text(GOOD_SECRET + "\n", encoding="utf-8")
    code, out, _ = _mint(["--secret-file", str(secret_file)], capsys)
    assert code == 0
    assert verify_token(out.strip(), GOOD_SECRET, leeway=0).tenant_id == "t"
    # 31 characters and a newline are 32 bytes only if the newline counted: it does not.
    secret_file.write_text("x" * 31 + "\n", encoding="utf-8")
    code, _, err = _mint(["--secret-file", str(secret_file)], capsys)
    assert (code, "is 31 bytes" in err) == (2, True)
    monkeypatch.setattr("sys.stdin", io.StringIO(GOOD_SECRET + "\r\n"))
    code, out, _ = _mint(["--secret-file", "-"], capsys)
    assert code == 0
    assert verify_token(out.strip(), GOOD_SECRET, leeway=0).tenant_id == "t"


def test_token_mint_refuses_tenants_and_roles_the_gateway_refuses(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CACHECORE_JWT_SECRET", GOOD_SECRET)
    for argv in (
        ["token", "mint", "--tenant", " "],
        ["token", "mint", "--tenant", "a\x00b"],
        ["token", "mint", "--tenant", "t" * 257],
        ["token", "mint", "--tenant", "t", "--roles", " "],
        ["token", "mint", "--tenant", "t", "--roles", *[f"r{i}" for i in range(65)]],
    ):
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert out == ""
        assert "printable" in err


def _start_gateway(*argv: str, secret: str | None = GOOD_SECRET) -> tuple[str, str]:
    """Start ``cachecore gateway`` on port 0, wait for its URL, stop it: (url, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    env.pop("CACHECORE_JWT_SECRET", None)
    if secret is not None:
        env["CACHECORE_JWT_SECRET"] = secret
    proc = subprocess.Popen(
        [sys.executable, "-m", "cachecore", "gateway", "--port", "0", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until it listens (or exits: "")
        assert "listening on" in line, line
        url = line.strip().rsplit(" ", 1)[-1]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    return url, err


def test_non_loopback_host_warns() -> None:
    url, err = _start_gateway("--host", "0.0.0.0")
    assert url.startswith("http://0.0.0.0:")
    assert "warning: listening on 0.0.0.0" in err
    assert "not for production" in err
    _, quiet = _start_gateway("--host", "127.0.0.1")
    assert "warning" not in quiet.lower()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("192.168.1.10", False),
        ("example.com", False),
        ("localhost.example.com", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    from cachecore.__main__ import _is_loopback

    assert _is_loopback(host) is loopback


def test_gateway_secret_flag_warns(capsys: pytest.CaptureFixture[str]) -> None:
    _, err = _start_gateway("--secret", GOOD_SECRET, secret=None)
    assert "--secret shows the secret in ps and shell history" in err
    assert GOOD_SECRET not in err
    _, quiet = _start_gateway(secret=GOOD_SECRET)
    assert "--secret" not in quiet
    # Too short: the warning, then the refusal.
    assert main(["gateway", "--port", "0", "--secret", "a"]) == 2
    err = capsys.readouterr().err
    assert "ps and shell history" in err
    assert "--secret: the secret is 1 bytes" in err


def test_gateway_max_token_lifetime_flag_is_checked_at_parse(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CACHECORE_JWT_SECRET", GOOD_SECRET)
    with pytest.raises(SystemExit) as exit_info:
        main(["gateway", "--port", "0", "--max-token-lifetime", "-5"])
    assert exit_info.value.code == 2
    assert "argument --max-token-lifetime: must be a positive number of seconds, got '-5'" in (
        capsys.readouterr().err
    )
