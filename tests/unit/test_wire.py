"""The wire codec and header parsing: property tests over arbitrary input."""

from __future__ import annotations

import base64
import email.utils
import json
import math
import string
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cachecore import CacheStatus, Dep, _wire
from cachecore.errors import CachecoreConfigError

try:
    import httpx2
except ImportError:  # declared by the test extra for 3.11+ only: missing there is a failure
    if sys.version_info >= (3, 11):
        raise
    httpx2 = None  # type: ignore[assignment]

HEADER_CLASSES = [httpx.Headers] if httpx2 is None else [httpx.Headers, httpx2.Headers]

#: Generous enough to find edge cases, quick enough for every run; no deadline on slow CI.
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Printable identifiers: every character a Dep accepts.
identifier = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Zl", "Zp", "Cs")), min_size=1
)
ascii_value = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E))
latin1_value = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f")
)


# -- the deps header codec -------------------------------------------------------


def test_protocol_example() -> None:
    value = "W3siZGVwX2lkIjoiZG9jOmNvbnRyYWN0LTEyMyIsImV4cGVjdGVkX2hhc2giOiJ2MSJ9XQ"
    assert _wire.encode_deps([("doc:contract-123", "v1")]) == value
    assert _wire.decode_deps(value) == [("doc:contract-123", "v1")]


@PROPERTY
@given(st.lists(st.tuples(identifier, identifier), max_size=20))
def test_deps_round_trip(deps: list[tuple[str, str]]) -> None:
    value = _wire.encode_deps(deps)
    assert _wire.decode_deps(value) == deps
    assert "=" not in value
    assert set(value) <= set(string.ascii_letters + string.digits + "-_")
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    assert json.loads(raw) == [{"dep_id": d, "expected_hash": h} for d, h in deps]
    assert b", " not in raw.replace(b'\\"', b"") or any(", " in d + h for d, h in deps)


@PROPERTY
@given(st.lists(identifier, min_size=1, max_size=10))
def test_deps_of_a_context_decode_to_what_was_declared(ids: list[str]) -> None:
    deps = [Dep(i) for i in ids]
    assert _wire.decode_deps(_wire.encode_deps((d.dep_id, d.expected_hash) for d in deps)) == [
        (i, "v1") for i in ids
    ]


@PROPERTY
@given(st.text(max_size=200))
@example("!!!!")
@example("W10")  # "[]"
@example("e30")  # "{}"
@example(base64.urlsafe_b64encode(b'[{"dep_id": ""}]').decode())
@example(base64.urlsafe_b64encode(b'[{"dep_id": 3}]').decode())
@example(base64.urlsafe_b64encode(b"[1]").decode())
@example(base64.urlsafe_b64encode(b"\xff\xfe").decode())
def test_decode_deps_raises_only_value_error(value: str) -> None:
    try:
        deps = _wire.decode_deps(value)
    except ValueError as exc:
        deps, message = [], str(exc)
    else:
        message = _wire.DEPS_HEADER
    assert _wire.DEPS_HEADER in message, "the error names the header"
    assert all(isinstance(d, str) and isinstance(h, str) and d and h for d, h in deps)


def test_decode_defaults_the_hash() -> None:
    value = base64.urlsafe_b64encode(b'[{"dep_id":"a"}]').decode().rstrip("=")
    assert _wire.decode_deps(value) == [("a", "v1")]
    assert _wire.decode_deps("  ") == []


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "must not be empty"),
        ("a\nb", "control character"),
        ("a\x00", "control character"),
        ("a\u2028", "control character"),
        ("a\u200b", "control character"),
        ("a\ud800", "lone surrogate"),
        (3, "must be a string, got int"),
        (None, "must be a string, got NoneType"),
    ],
)
def test_bad_identifiers_say_why(value: object, reason: str) -> None:
    assert reason in (_wire.bad_identifier_reason(value) or "")
    with pytest.raises(CachecoreConfigError, match="invalid Dep: dep_id"):
        Dep(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["table:products", "ü-日本", "👩\u200d💻", "a b", "x" * 500])
def test_printable_identifiers_are_fine(value: str) -> None:
    assert _wire.bad_identifier_reason(value) is None
    assert Dep(value).dep_id == value


def test_dep_call_forms() -> None:
    assert Dep("doc:1") == Dep(dep_id="doc:1", expected_hash="v1")
    assert Dep("x", hash="v2").hash == "v2"
    assert hash(Dep("x")) == hash(Dep("x"))
    assert repr(Dep("x")) == "Dep('x')"
    assert repr(Dep("x", hash="v2")) == "Dep('x', hash='v2')"
    with pytest.raises(CachecoreConfigError, match="expected_hash must not be empty"):
        Dep("x", hash="")
    with pytest.raises(Exception, match="frozen"):
        Dep("x").dep_id = "y"  # type: ignore[misc]


# -- cache status headers ----------------------------------------------------------

HEADER_NAMES = [
    _wire.CACHE_HEADER,
    _wire.SIMILARITY_HEADER,
    _wire.AGE_HEADER,
    _wire.NAMESPACE_HINT_HEADER,
]


def any_case(name: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(
        lambda flips: "".join(c.upper() if f else c.lower() for c, f in zip(name, flips))
    )


random_case = st.sampled_from(HEADER_NAMES).flatmap(any_case)


def cache_headers(values: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, str]]:
    """Some of the cache headers, each once, names in random case."""
    pairs = [st.tuples(any_case(name), values) for name in HEADER_NAMES]
    return st.tuples(*[st.none() | pair for pair in pairs]).map(
        lambda items: dict(item for item in items if item is not None)
    )


class Wrapped:
    """A response-like object: only ``.headers`` (as openai's raw responses expose)."""

    def __init__(self, headers: object) -> None:
        self.headers = headers


def forms(headers: dict[str, str]) -> Iterator[object]:
    yield headers
    for cls in HEADER_CLASSES:
        yield cls(headers)
    yield httpx.Response(200, headers=headers)
    yield Wrapped(headers)
    yield Wrapped(httpx.Headers(headers))


def in_range(status: CacheStatus) -> None:
    assert status.status in (*_wire.KNOWN_STATUSES, "UNKNOWN")
    assert 0.0 <= status.similarity <= 1.0
    assert not math.isnan(status.similarity)
    assert status.age_seconds >= 0


@PROPERTY
@given(cache_headers(ascii_value))
def test_from_headers_never_raises_and_stays_in_range(headers: dict[str, str]) -> None:
    results = {CacheStatus.from_headers(form) for form in forms(headers)}
    assert len(results) == 1, "every header form must parse the same"
    in_range(results.pop())


@PROPERTY
@given(cache_headers(latin1_value))
def test_from_headers_survives_non_ascii_bytes(headers: dict[str, str]) -> None:
    raw = {k: v.encode("latin-1") for k, v in headers.items()}
    for form in (headers, raw, httpx.Headers(raw), httpx.Response(200, headers=raw)):
        in_range(CacheStatus.from_headers(form))


@PROPERTY
@given(st.sampled_from(sorted(_wire.KNOWN_STATUSES)), random_case)
def test_known_statuses_parse_case_insensitively(value: str, name: str) -> None:
    headers = {"x-cache": value.lower() if len(name) % 2 else f"  {value} "}
    assert CacheStatus.from_headers(headers).status == value


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, ("UNKNOWN", 0.0, 0, None)),
        (
            {"X-Cache": "HIT_L2", "X-Cache-Similarity": "0.93", "X-Cache-Age": "12"},
            ("HIT_L2", 0.93, 12, None),
        ),
        (
            {"x-cache": "hit_l1", "x-cachecore-namespace-hint": "abc123def456"},
            ("HIT_L1", 0.0, 0, "abc123def456"),
        ),
        (
            {"X-Cache": "HIT_L3", "X-Cache-Similarity": "nan", "X-Cache-Age": "-4"},
            ("UNKNOWN", 0.0, 0, None),
        ),
        (
            {"X-Cache": "MISS", "X-Cache-Similarity": "1.7", "X-Cache-Age": "3.9"},
            ("MISS", 1.0, 3, None),
        ),
        (
            {"X-Cache": "", "X-Cache-Similarity": "high", "X-Cache-Age": "1e999"},
            ("UNKNOWN", 0.0, 0, None),
        ),
        ({"X-CACHE": "BYPASS", "X-CACHE-SIMILARITY": "-1"}, ("BYPASS", 0.0, 0, None)),
    ],
)
def test_from_headers_examples(headers: dict[str, str], expected: tuple[object, ...]) -> None:
    for form in forms(headers):
        s = CacheStatus.from_headers(form)
        assert (s.status, s.similarity, s.age_seconds, s.namespace_hint) == pytest.approx(expected)


@pytest.mark.parametrize(
    "weird",
    [None, 42, "X-Cache: HIT_L1", [("X-Cache", "HIT_L1")], {"X-Cache": 5}, {"X-Cache": b"HIT_L1"}],
)
def test_from_headers_survives_anything(weird: object) -> None:
    status = CacheStatus.from_headers(weird)
    assert status.status in ("UNKNOWN", "HIT_L1")


def test_hit_property() -> None:
    assert CacheStatus.from_headers({"X-Cache": "HIT_L1_STALE"}).hit
    assert not CacheStatus.from_headers({"X-Cache": "MISS"}).hit


# -- Retry-After -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("-3", 0.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("inf", None),
        ("nan", None),
    ],
)
def test_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert _wire.parse_retry_after(value) == expected


def test_retry_after_http_date() -> None:
    now = 1_445_412_480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert _wire.parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=now) == 30.0
    assert _wire.parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now=now) == 0.0
    future = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 55 < (_wire.parse_retry_after(future) or 0) <= 60


def test_retry_after_minus_zero_date_is_utc_in_any_local_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = 1_445_412_480.0
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert _wire.parse_retry_after("Wed, 21 Oct 2015 07:28:10 -0000", now=now) == 10.0
    finally:
        monkeypatch.undo()
        time.tzset()


@PROPERTY
@given(st.text(max_size=60))
@example("Wed, 21 Oct 99999 07:28:00 GMT")
@example("Wed, 31 Feb 2015 07:28:00 GMT")
@example("1e400")
def test_retry_after_never_raises(value: str) -> None:
    result = _wire.parse_retry_after(value)
    assert result is None or (math.isfinite(result) and result >= 0)


# -- the rest of the codec -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "major"),
    [
        ("3.57.0", 3),
        ("2.54.0", 2),
        ("1.109.1", 1),
        (" 10.0", 10),
        ("", None),
        (None, None),
        ("v2", None),
        ("abc", None),
    ],
)
def test_openai_major_version(value: str | None, major: int | None) -> None:
    assert _wire.openai_major_version(value) == major


def test_header_names_are_exactly_the_protocol() -> None:
    assert _wire.TOKEN_HEADER.lower() == "x-cachecore-token"
    assert _wire.DEPS_HEADER.lower() == "x-cachecore-deps"
    assert _wire.invalidate_body("a", "b") == {"dep_id": "a", "new_hash": "b"}
    assert _wire.MAX_DEPS_HEADER_BYTES == 8192
