"""The demo's plan: the steps of the adoption ladder, and the row each one measures.

Shared by the demo's runner (``cachecore._demo``) and its walk, written once for
both SDK flavours (``_demo/_async/walk.py``, generated ``_demo/_sync/walk.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openai.types import CompletionUsage

MODEL = "gpt-5.4-mini"
TENANT_A = "acme"
TENANT_B = "globex"


@dataclass(frozen=True)
class Step:
    """One line of the walk: an LLM call (or an invalidation) and the status it must get."""

    rung: int
    label: str
    tenant: str
    expect: str
    prompt: str = ""
    deps: tuple[tuple[str, str], ...] = ()
    bypass: bool = False
    plain: bool = False  # rung 1: the OpenAI SDK alone, no Cachecore transport
    invalidate: tuple[str, str] | None = None  # (dep_id, new_hash)


@dataclass(frozen=True)
class Row:
    """What one step measured."""

    step: Step
    client: str
    status: str
    similarity: float | None
    age: int | None
    latency_ms: float
    tokens: int | None = None  # the answer's usage, prompt + completion; None: no usage


def plan() -> list[Step]:
    """The walk, the same for both SDK flavours (each run has a gateway of its own)."""
    haiku = "Write a haiku about caches"
    ask, paraphrase = "What is the capital of France?", "What's the capital of France?"
    doc, tagged = "doc:contract-123", "Summarise contract #123"
    reworded = "Summarise the contract #123"
    return [
        Step(1, f"plain SDK: {haiku!r}", TENANT_A, "BYPASS", haiku, plain=True),
        Step(2, f"ask {ask!r}", TENANT_A, "MISS", ask),
        Step(2, "same prompt again", TENANT_A, "HIT_L1", ask),
        Step(2, f"paraphrase {paraphrase!r}", TENANT_A, "HIT_L2", paraphrase),
        Step(2, "same prompt, other tenant", TENANT_B, "MISS", ask),
        Step(3, f"{tagged!r}, Dep hash v1", TENANT_A, "MISS", tagged, ((doc, "v1"),)),
        Step(3, "same tagged call again", TENANT_A, "HIT_L1", tagged, ((doc, "v1"),)),
        Step(3, f"paraphrase {reworded!r}", TENANT_A, "HIT_L2", reworded, ((doc, "v1"),)),
        Step(3, f"invalidate({doc!r}, new_hash='v2')", TENANT_A, "ok", invalidate=(doc, "v2")),
        Step(3, "same call after invalidate, Dep hash v2", TENANT_A, "MISS", tagged, ((doc, "v2"),)),
        Step(3, "bypass=True: 'Generate a unique report ID'", TENANT_A, "BYPASS",
             "Generate a unique report ID", bypass=True),
    ]  # fmt: skip


def messages(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def row(
    step: Step, client: str, status: Any, started: float, usage: CompletionUsage | None = None
) -> Row:
    """A row from a ``CacheStatus`` (or a plain string for an invalidation).

    ``usage`` is the answer's ``usage`` (the reference gateway returns it on cached
    answers too): the row counts its prompt and completion tokens.
    """
    latency_ms = (time.perf_counter() - started) * 1000
    tokens = None if usage is None else usage.prompt_tokens + usage.completion_tokens
    if isinstance(status, str):
        return Row(step, client, status, None, None, latency_ms, tokens)
    name = status.status
    return Row(
        step,
        client,
        name,
        status.similarity if name == "HIT_L2" else None,
        status.age_seconds if status.hit else None,
        latency_ms,
        tokens,
    )
