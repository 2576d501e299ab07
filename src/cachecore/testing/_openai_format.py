"""The OpenAI chat-completions format: checking requests, keying them, streaming answers.

The cache stores one completed ``chat.completion`` object per entry, whether the
caller streamed or not; a streamed answer is rebuilt from it as
``chat.completion.chunk`` SSE events. That is why ``stream`` and
``stream_options`` are left out of the cache key: the same question hits the
same entry in either mode.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any

from cachecore.testing._http import Refused

#: Request fields that change how the answer is delivered, not what it is.
DELIVERY_FIELDS = frozenset({"stream", "stream_options"})

_WORDS = re.compile(r"\S+\s*|\s+")


class BadRequest(Refused):
    """The request cannot be served (a 400); the message names the field and the fix."""


def check_chat_request(body: object) -> dict[str, Any]:
    """Return ``body`` when it is a chat-completions request we can serve, else raise."""
    if not isinstance(body, dict):
        raise BadRequest("invalid_body", "the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("missing_field", "'model' is required and must be a non-empty string")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("missing_field", "'messages' is required and must be a non-empty list")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest("invalid_field", f"messages[{i}] must be an object with a 'role'")
        if not isinstance(message.get("content"), (str, list, type(None))):
            raise BadRequest(
                "invalid_field", f"messages[{i}].content must be a string, a list or null"
            )
    if not isinstance(body.get("stream", False), bool):
        raise BadRequest("invalid_field", "'stream' must be true or false")
    if body.get("n", 1) != 1:
        raise BadRequest("invalid_field", "the reference gateway only serves n=1")
    return body


def wants_stream(body: dict[str, Any]) -> bool:
    return bool(body.get("stream", False))


def cache_key(namespace: str, body: dict[str, Any], deps: str = "[]") -> str:
    """The L1 key: namespace, the request as sorted JSON (delivery fields left out), deps.

    ``deps`` is the declared deps' canonical JSON (``_store.deps_fingerprint``): an
    answer is reused only by requests that depend on the same data.
    """
    canonical = {k: v for k, v in body.items() if k not in DELIVERY_FIELDS}
    text = json.dumps([namespace, canonical, deps], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        return " ".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def prompt_text(body: dict[str, Any]) -> str:
    """What L2 compares: every message's role and text, one per line."""
    return "\n".join(f"{m['role']}: {_content_text(m.get('content'))}" for m in body["messages"])


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body["messages"]):
        if message["role"] == "user":
            return _content_text(message.get("content"))
    return _content_text(body["messages"][-1].get("content"))


def sse_events(completion: dict[str, Any], *, include_usage: bool) -> Iterator[bytes]:
    """A stored completion as ``data: <chunk>`` SSE events, ending with ``data: [DONE]``."""
    base = {
        "id": completion.get("id", "chatcmpl-cached"),
        "object": "chat.completion.chunk",
        "created": completion.get("created", 0),
        "model": completion.get("model", ""),
    }

    def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        chunk = {**base, "choices": choices, **extra}
        return b"data: " + json.dumps(chunk, separators=(",", ":")).encode("utf-8") + b"\n\n"

    for choice in completion.get("choices", []):
        index = choice.get("index", 0)
        message = choice.get("message") or {}
        role = {"role": message.get("role", "assistant"), "content": ""}
        yield event([{"index": index, "delta": role, "finish_reason": None}])
        for piece in _WORDS.findall(message.get("content") or ""):
            yield event([{"index": index, "delta": {"content": piece}, "finish_reason": None}])
        if message.get("tool_calls"):
            calls = [{**call, "index": i} for i, call in enumerate(message["tool_calls"])]
            yield event([{"index": index, "delta": {"tool_calls": calls}, "finish_reason": None}])
        finish = choice.get("finish_reason", "stop")
        yield event([{"index": index, "delta": {}, "finish_reason": finish}])
    if include_usage and completion.get("usage") is not None:
        yield event([], usage=completion["usage"])
    yield b"data: [DONE]\n\n"


def completion_problem(completion: object) -> str | None:
    """Why the gateway cannot cache and serve ``completion`` (any upstream's), or ``None``."""
    if not isinstance(completion, dict):
        return "it is not a JSON object"
    choices = completion.get("choices")
    if not isinstance(choices, list):
        return "'choices' is not a list"
    for i, choice in enumerate(choices):
        if not isinstance(choice, dict):
            return f"choices[{i}] is not an object"
        message = choice.get("message")
        if not isinstance(message, dict):
            return f"choices[{i}].message is not an object"
        if not isinstance(message.get("content"), (str, type(None))):
            return f"choices[{i}].message.content is neither a string nor null"
        calls = message.get("tool_calls")
        if calls is not None and not (
            isinstance(calls, list) and all(isinstance(c, dict) for c in calls)
        ):
            return f"choices[{i}].message.tool_calls is not a list of objects"
    return None


def l2_scope(body: dict[str, Any]) -> str:
    """Everything but the prompt's text, as canonical JSON: L2 compares only requests
    alike in it (parameters, tools, roles, image and other non-text parts)."""
    messages = []
    for message in body["messages"]:
        content = message.get("content")
        if isinstance(content, list):
            content = [
                {"type": "text"} if isinstance(p, dict) and p.get("type") == "text" else p
                for p in content
            ]
        elif isinstance(content, str):
            content = ""
        messages.append({**message, "content": content})
    rest = {k: v for k, v in body.items() if k not in DELIVERY_FIELDS and k != "messages"}
    return json.dumps([rest, messages], sort_keys=True, separators=(",", ":"))


def include_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))
