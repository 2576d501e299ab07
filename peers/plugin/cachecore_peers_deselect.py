"""pytest plugin: leaves out, in both runs, the peer tests that cannot run on this machine
or whose outcome is a coin toss plain too.

Loaded with ``-p cachecore_peers_deselect`` by ``peers/run.py`` (this folder is
on ``PYTHONPATH`` for the plain and the wrapped run alike); the suite comes from
``CACHECORE_PEERS_SUITE``. Every rule says why: no test is left out because it
fails *wrapped*. Those are regressions, or entries in ``peers/allowlist.py``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

SUITE_ENV = "CACHECORE_PEERS_SUITE"

#: openai's generated tests under tests/api_resources call a Prism mock server on
#: 127.0.0.1:4010 that serves the OpenAPI spec from a remote URL: no network here.
#: The ones that mock with respx/respx2 instead are kept.
PRISM = "needs the Prism mock server on 127.0.0.1:4010 (its OpenAPI spec is remote)"
SNAPSHOTS = "its inline-snapshot external() files (.inline-snapshot/) are not in the sdist"


@dataclass(frozen=True)
class Rule:
    """Leave out the tests whose node id starts with ``prefix``, for ``reason``.

    ``marker``: only those among them with this pytest marker.
    ``unless_fixture``: keep those among them that request this fixture.
    ``whole_module``: don't even import the module (it cannot be imported here).
    """

    prefix: str
    reason: str
    marker: str | None = None
    unless_fixture: str | None = None
    whole_module: bool = False

    def drops(self, item: pytest.Item) -> bool:
        if not item.nodeid.startswith(self.prefix):
            return False
        if self.marker is not None and item.get_closest_marker(self.marker) is None:
            return False
        return self.unless_fixture is None or self.unless_fixture not in getattr(
            item, "fixturenames", ()
        )


_OPENAI_STREAMING_SNAPSHOTS = tuple(
    Rule(f"tests/lib/chat/test_completions_streaming.py::{name}", SNAPSHOTS)
    for name in (
        "test_parse_nothing",
        "test_parse_pydantic_model",
        "test_parse_pydantic_model_multiple_choices",
        "test_parse_max_tokens_reached",
        "test_parse_pydantic_model_refusal",
        "test_content_logprobs_events",
        "test_refusal_logprobs_events",
        "test_parse_pydantic_tool",
        "test_parse_multiple_pydantic_tools",
        "test_parse_strict_tools",
        "test_non_pydantic_response_format",
        "test_allows_non_strict_tools_but_no_parsing",
        "test_chat_completion_state_helper",
    )
)

RULES: dict[str, tuple[Rule, ...]] = {
    "httpx": (
        # httpx's own marker, "tests which require network connection": they
        # proxy to public hosts.
        Rule("tests/", "marked network: needs the internet", marker="network"),
        # httpx#3686 (fix proposed in httpx#3777): after the write timeout, the request
        # body's ByteStream.__aiter__ async generator is left unexhausted; trio warns
        # when it is garbage collected, and httpx's filterwarnings=error makes that a
        # failure of whichever test the cyclic GC happens to run in. Plain, alone:
        # 6 failures in 10 runs of tests/test_timeouts.py; a full plain run passed it
        # while the wrapped run failed it. A coin toss, in both runs.
        Rule(
            "tests/test_timeouts.py::test_write_timeout[trio]",
            "fails at random, plain too: httpx#3686 (trio's async-generator ResourceWarning)",
        ),
    ),
    "openai2": (
        Rule("tests/api_resources/", PRISM, unless_fixture="respx_mock"),
        *_OPENAI_STREAMING_SNAPSHOTS,
    ),
    "openai3": (
        Rule("tests/api_resources/", PRISM, unless_fixture="respx2_mock"),
        Rule("tests/lib/test_fine_tuning_positional_arguments.py", PRISM),
        *_OPENAI_STREAMING_SNAPSHOTS,
        Rule(
            "tests/lib/test_microphone.py",
            "needs sounddevice and numpy (PortAudio): the voice_helpers extra",
            whole_module=True,
        ),
        Rule(
            "tests/test_uv_workflows.py",
            "reads the repository's .github/ workflows and uv setup, not in the sdist",
        ),
    ),
}


def _rules(config: pytest.Config) -> tuple[Rule, ...]:
    suite = os.environ.get(SUITE_ENV, "")
    if suite not in RULES:
        raise pytest.UsageError(f"{SUITE_ENV}={suite!r}: expected one of {', '.join(RULES)}")
    return RULES[suite]


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    root = config.rootpath
    for rule in _rules(config):
        if rule.whole_module and collection_path == root / rule.prefix:
            return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rules = _rules(config)
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        (dropped if any(rule.drops(item) for rule in rules) else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
