"""``_invalidation.attempts``: the invalidation state machine both twins drive, without I/O."""

from __future__ import annotations

import httpx
import pytest

from cachecore import RetryPolicy, _invalidation, _wire
from cachecore.errors import CachecoreConnectionError, CachecoreStatusError

POLICY = RetryPolicy(max_retries=2, base_delay=0.5, max_delay=8.0)


def drive(answers: list[httpx.Response | Exception]) -> tuple[list[object], object]:
    """Run the machine, answering each ``Send`` from ``answers``; its steps and its result."""
    tokens = iter(["t1", "t2", "t3"])
    steps = _invalidation.attempts("doc:1", "v2", lambda: next(tokens), POLICY)
    seen: list[object] = []
    step = next(steps)
    try:
        while True:
            seen.append(step)
            if isinstance(step, _invalidation.Wait):
                step = steps.send(None)
            else:
                step = steps.send(answers.pop(0))
    except StopIteration as done:
        return seen, done.value


def test_one_answer_one_result() -> None:
    seen, result = drive([httpx.Response(200)])
    (send,) = seen
    assert isinstance(send, _invalidation.Send)
    assert send.path == _wire.INVALIDATE_PATH.lstrip("/")
    assert send.body == {"dep_id": "doc:1", "new_hash": "v2"}
    assert send.headers == {_wire.TOKEN_HEADER: "t1", _wire.AUTHORIZATION_HEADER: "Bearer t1"}
    assert (result.ok, result.attempts, result.status_code) == (True, 1, 200)  # type: ignore[attr-defined]


def test_a_retried_failure_waits_and_asks_for_the_token_again() -> None:
    seen, result = drive([httpx.ConnectError("refused"), httpx.Response(503), httpx.Response(204)])
    kinds = [type(step).__name__ for step in seen]
    assert kinds == ["Send", "Wait", "Send", "Wait", "Send"]
    assert [s.headers[_wire.TOKEN_HEADER] for s in seen if isinstance(s, _invalidation.Send)] == [
        "t1",
        "t2",
        "t3",
    ]
    assert all(0 < s.seconds <= 8.0 for s in seen if isinstance(s, _invalidation.Wait))
    assert (result.ok, result.attempts) == (True, 3)  # type: ignore[attr-defined]


def test_the_last_failure_is_the_result() -> None:
    seen, result = drive([httpx.ConnectError("refused")] * 3)
    assert len([s for s in seen if isinstance(s, _invalidation.Send)]) == 3
    assert not result.ok  # type: ignore[attr-defined]
    assert isinstance(result.exception, CachecoreConnectionError)  # type: ignore[attr-defined]


def test_a_final_status_is_not_retried() -> None:
    seen, result = drive([httpx.Response(404, text="no such route")])
    assert len(seen) == 1
    assert isinstance(result.exception, CachecoreStatusError)  # type: ignore[attr-defined]


def test_anything_but_an_answer_or_a_transport_error_is_a_bug() -> None:
    steps = _invalidation.attempts("doc:1", "v2", lambda: "t", POLICY)
    next(steps)
    with pytest.raises(TypeError, match="send a response or an error"):
        steps.send(ValueError("not a transport error"))  # type: ignore[arg-type]
